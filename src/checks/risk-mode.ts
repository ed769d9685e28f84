import { define, need, valueOf } from '../Check.js'
import { withReturns } from '../scenario/protocol.js'

/** The protocol's risk mode at the end of the window (e.g. 1 = ONLY_UNWIND). */
export const riskMode = define({
  name: 'riskMode',
  target: 'fork',
  summary: 'riskMode() equals a value (e.g. 1 = ONLY_UNWIND)',
  params: { type: 'object', additionalProperties: false, required: ['equals'], properties: { equals: { type: 'integer', minimum: 0, maximum: 255, description: 'A uint8 risk mode.' } } },
  prepare: (body: { equals: number }, ctx) => ({
    params: body,
    reads: [{ kind: 'view', to: ctx.resolve(ctx.protocol.vault, 'protocol.vault'), fn: withReturns(need(ctx.protocol.riskMode, 'riskMode')), args: [] }],
  }),
  evaluate(series, _window, body) {
    const mode = BigInt(valueOf<bigint | number>(series.reads[0]))
    return { ok: mode === BigInt(body.equals), observed: `riskMode ${mode}`, expected: `riskMode ${body.equals}` }
  },
})
