import { optionalStr } from '../../Fault.js'
import { dependencyFault } from './common.js'

/** Chosen functions of a deployed contract revert with `reason`; the rest keep working. */
export const revert = dependencyFault<{ selectors: `0x${string}`[]; reason: string }>({
  type: 'dependency.revert',
  summary: 'Make chosen selectors of a deployed contract revert with `reason` (≤ 32 bytes); other functions and storage keep working.',
  extraSchema: { reason: { type: 'string', maxLength: 32, default: 'forkchaos: dependency.revert' } },
  parseExtra: (raw, where) => ({ reason: optionalStr(raw, 'reason', where) ?? 'forkchaos: dependency.revert' }),
  rule: (_ctx, params) => ({ mode: 'revert', reason: params.reason }),
})
