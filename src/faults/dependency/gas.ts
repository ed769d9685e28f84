import * as P from '../../Params.js'
import { dependencyFault } from './common.js'

/** Chosen functions burn `gas` before running normally: an expensive or griefing dependency. */
export const gas = dependencyFault({
  type: 'dependency.gas',
  summary: 'Make chosen selectors burn `gas` units before running normally.',
  params: { gas: P.map(P.integer({ min: 1, max: 30_000_000, description: 'Gas burned before the call runs.' }), BigInt) },
  rule: (_ctx, params) => ({ mode: 'gas', gas: params.gas }),
})
