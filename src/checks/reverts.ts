import { define, valueOf } from '../Check.js'
import { calldata } from '../chain/views.js'
import { toArg } from '../scenario/context.js'
import { addressOrName, args, signature, text } from '../scenario/schema-parts.js'
import type { ViewRef } from '../scenario/types.js'

export type RevertsParams = ViewRef & { from?: string; reason?: string }

/** A call, simulated with eth_call at the window's end (nothing is sent), reverts — e.g. deposits are paused. */
export const reverts = define({
  name: 'reverts',
  target: 'fork',
  summary: 'a call reverts (simulated), optionally with a reason',
  params: {
    type: 'object',
    additionalProperties: false,
    required: ['to', 'fn'],
    properties: { to: addressOrName, fn: signature, args, from: addressOrName, reason: text },
  },
  prepare: (body: RevertsParams, ctx) => {
    const to = ctx.resolve(body.to, 'reverts.to')
    const values = (body.args ?? []).map((a, i) => toArg(a, ctx.resolve, `reverts.args[${i}]`))
    const from = body.from ? ctx.resolve(body.from, 'reverts.from') : undefined
    return { params: body, reads: [{ kind: 'simulate', to, data: calldata(body.fn, values), ...(from ? { from } : {}) }] }
  },
  evaluate(series, _window, body) {
    const reason = valueOf<string | undefined>(series.reads[0])
    const expected = `${body.fn.split(' ')[0]} reverts${body.reason ? ` with "${body.reason}"` : ''}`
    if (reason === undefined) return { ok: false, observed: `${body.fn.split(' ')[0]} succeeds`, expected }
    return { ok: body.reason === undefined || reason.includes(body.reason), observed: `reverts: ${reason}`, expected }
  },
})
