import { byzantineSwitch } from './common.js'

/** Proposals built on the grandparent: an attempt to reorg a committed block, which the honest validators must refuse. */
export const staleParent = byzantineSwitch('byzantine.stale-parent', 'staleParent', 'A proposer builds on the grandparent: an attempt to reorg a committed block.')
