import { define, need, valueOf } from '../Check.js'
import { toArg } from '../scenario/context.js'
import { viewOf } from '../scenario/protocol.js'

/** The protocol's risk mode at the end of the window (e.g. 1 = ONLY_UNWIND). */
export const riskMode = define({
  name: 'riskMode',
  target: 'fork',
  summary: 'riskMode() equals a value (e.g. 1 = ONLY_UNWIND)',
  params: { type: 'object', additionalProperties: false, required: ['equals'], properties: { equals: { type: 'integer', minimum: 0, maximum: 255, description: 'A uint8 risk mode.' } } },
  needs: ['riskMode'],
  prepare: (body: { equals: number }, ctx) => {
    const view = viewOf(need(ctx.protocol.riskMode, 'riskMode'))
    const args = view.args.map((a, i) => toArg(a, ctx.resolve, `protocol.riskMode.args[${i}]`))
    return { params: body, reads: [{ kind: 'view', to: ctx.resolve(ctx.protocol.vault, 'protocol.vault'), fn: view.fn, args }] }
  },
  evaluate(series, _window, body) {
    const mode = BigInt(valueOf<bigint | number>(series.reads[0]))
    return { ok: mode === BigInt(body.equals), observed: `riskMode ${mode}`, expected: `riskMode ${body.equals}` }
  },
})
