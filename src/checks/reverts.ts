import { toArg } from '../scenario/context.js'
import { calldata } from '../faults/views.js'
import { revertReason } from './read.js'
import type { CheckFn } from './types.js'

/** A call (simulated with eth_call, nothing is sent) reverts — e.g. deposits are paused. */
export const reverts: CheckFn<'reverts'> = async (ctx, body) => {
  const to = ctx.resolve(body.to, 'reverts.to')
  const args = (body.args ?? []).map((a, i) => toArg(a, ctx.resolve, `reverts.args[${i}]`))
  const from = body.from ? ctx.resolve(body.from, 'reverts.from') : undefined
  const reason = await revertReason(ctx.rpc, { to, data: calldata(body.fn, args), ...(from ? { from } : {}) })
  const expected = `${body.fn.split(' ')[0]} reverts${body.reason ? ` with "${body.reason}"` : ''}`
  if (reason === undefined) return { ok: false, observed: `${body.fn.split(' ')[0]} succeeds`, expected }
  return { ok: body.reason === undefined || reason.includes(body.reason), observed: `reverts: ${reason}`, expected }
}
