import { num } from '../../Fault.js'
import { dependencyFault } from './common.js'

/** Chosen functions burn `gas` before running normally: an expensive or griefing dependency. */
export const gas = dependencyFault<{ selectors: `0x${string}`[]; gas: bigint }>({
  type: 'dependency.gas',
  summary: 'Make chosen selectors burn `gas` units before running normally.',
  extraSchema: { gas: { type: 'integer', minimum: 1, maximum: 30_000_000 } },
  parseExtra: (raw, where) => ({ gas: BigInt(num(raw, 'gas', where, { min: 1, max: 30_000_000, integer: true })) }),
  rule: (_ctx, params) => ({ mode: 'gas', gas: params.gas }),
})
