import { byzantineSwitch } from './common.js'

/**
 * Proposals built on the grandparent: an attempt to reorg a committed block, which the honest
 * validators must refuse. On an Engine API devnet the proposer's engine link rewrites its
 * getPayload answers onto the grandparent (parentHash and number, block hash recomputed).
 */
export const staleParent = byzantineSwitch('byzantine.stale-parent', 'staleParent', 'A proposer builds on the grandparent: an attempt to reorg a committed block.', 'stale-parent')
