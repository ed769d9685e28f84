import { define, need, valueOf } from '../Check.js'
import { toArg } from '../scenario/context.js'
import { viewOf } from '../scenario/protocol.js'
import { fmt } from './read.js'

/** No funds lost: the share price at the window's end is at least `minBps` of its value before the baseline. */
export const sharePriceFloor = define({
  name: 'sharePriceFloor',
  target: 'fork',
  summary: 'sharePrice() ≥ minBps of its value before the baseline (no funds lost)',
  params: {
    type: 'object',
    additionalProperties: false,
    required: ['minBps'],
    properties: { minBps: { type: 'number', minimum: 0, maximum: 10_000, description: 'Floor as a share of the baseline share price.' } },
  },
  needs: ['sharePrice'],
  prepare: (body: { minBps: number }, ctx) => {
    const view = viewOf(need(ctx.protocol.sharePrice, 'sharePrice'))
    const args = view.args.map((a, i) => toArg(a, ctx.resolve, `protocol.sharePrice.args[${i}]`))
    return { params: { ...body, key: view.key }, reads: [{ kind: 'view', to: ctx.resolve(ctx.protocol.vault, 'protocol.vault'), fn: view.fn, args }] }
  },
  evaluate(series, _window, body) {
    const now = BigInt(valueOf<bigint | number>(series.reads[0]))
    const start = series.start[body.key] as bigint
    const floor = (start * BigInt(Math.round(body.minBps * 100))) / 1_000_000n
    return { ok: now >= floor, observed: `sharePrice ${fmt(now)}`, expected: `≥ ${fmt(floor)} (${body.minBps} bps of ${fmt(start)} at baseline)` }
  },
})
