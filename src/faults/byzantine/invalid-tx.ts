import { byzantineSwitch } from './common.js'

/**
 * Proposals that include a transaction that cannot execute (a transfer from an account with no
 * funds): re-execution by the honest validators must refuse them. On an Engine API devnet the
 * proposer's engine link appends it to its getPayload answers (transactionsRoot and block hash
 * recomputed).
 */
export const invalidTx = byzantineSwitch('byzantine.invalid-tx', 'invalidTx', 'A proposer includes a transaction that cannot execute.', 'invalid-tx')
