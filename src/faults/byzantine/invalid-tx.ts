import { byzantineSwitch } from './common.js'

/** Proposals that include a transaction that cannot execute: re-execution by the honest validators must refuse them. */
export const invalidTx = byzantineSwitch('byzantine.invalid-tx', 'invalidTx', 'A proposer includes a transaction that cannot execute.')
