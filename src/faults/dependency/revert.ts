import * as P from '../../Params.js'
import { dependencyFault } from './common.js'

/** Chosen functions of a deployed contract revert with `reason`; the rest keep working. */
export const revert = dependencyFault({
  type: 'dependency.revert',
  summary: 'Make chosen selectors of a deployed contract revert with `reason` (≤ 32 bytes); other functions and storage keep working.',
  params: {
    // Printable ASCII: one character is one byte, so 32 characters fill the shim's bytes32 reason.
    reason: P.string({ maxLength: 32, pattern: { regex: '^[ -~]*$', expected: 'printable ASCII text' }, default: 'forkchaos: dependency.revert' }),
  },
  rule: (_ctx, params) => ({ mode: 'revert', reason: params.reason }),
})
