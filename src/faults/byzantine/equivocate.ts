import { byzantineSwitch } from './common.js'

/** Two different proposals for the same height and round, to different peers: the honest validators must record the evidence and commit one of them at most. */
export const equivocate = byzantineSwitch('byzantine.equivocate', 'equivocate', 'A proposer sends two different proposals for the same height and round, to different peers.')
