import { define, need, valueOf } from '../Check.js'
import { withReturns } from '../scenario/protocol.js'
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
  prepare: (body: { minBps: number }, ctx) => {
    const fn = withReturns(need(ctx.protocol.sharePrice, 'sharePrice'))
    return { params: { ...body, fn }, reads: [{ kind: 'view', to: ctx.resolve(ctx.protocol.vault, 'protocol.vault'), fn, args: [] }] }
  },
  evaluate(series, _window, body) {
    const now = BigInt(valueOf<bigint | number>(series.reads[0]))
    const start = series.start[body.fn] as bigint
    const floor = (start * BigInt(Math.round(body.minBps * 100))) / 1_000_000n
    return { ok: now >= floor, observed: `sharePrice ${fmt(now)}`, expected: `≥ ${fmt(floor)} (${body.minBps} bps of ${fmt(start)} at baseline)` }
  },
})
