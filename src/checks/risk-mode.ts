import { withReturns } from '../scenario/protocol.js'
import { readUint } from './read.js'
import { need } from './share-price-floor.js'
import type { CheckFn } from './types.js'

/** The protocol's risk mode at the end of the phase (e.g. 1 = ONLY_UNWIND). */
export const riskMode: CheckFn<'riskMode'> = async (ctx, body) => {
  const vault = ctx.resolve(ctx.protocol.vault, 'protocol.vault')
  const mode = await readUint(ctx.rpc, vault, withReturns(need(ctx.protocol.riskMode, 'riskMode')))
  return { ok: mode === BigInt(body.equals), observed: `riskMode ${mode}`, expected: `riskMode ${body.equals}` }
}
