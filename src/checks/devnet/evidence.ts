import { define } from '../../Check.js'
import { validatorId } from './series.js'

/** Equivocation is caught and pinned on the right validator — and on nobody else. */
export const evidence = define({
  name: 'evidence',
  target: 'devnet',
  summary: 'equivocation evidence names the given validator, and nobody else',
  params: { type: 'object', additionalProperties: false, required: ['validator'], properties: { validator: validatorId } },
  evaluate(series, window, body: { validator: number }) {
    const honestEvidence = series.probe.evidence.filter((e) => series.honest.includes(e.node))
    const named = new Set(honestEvidence.map((e) => e.validator))
    const others = [...named].sort((a, b) => a - b).filter((v) => v !== body.validator)
    return {
      ok: named.has(body.validator) && others.length === 0,
      observed: `evidence names validator(s) ${[...named].sort((a, b) => a - b).join(', ') || 'none'} (${honestEvidence.length} records)`,
      expected: `evidence against validator ${body.validator} only`,
    }
  },
})
