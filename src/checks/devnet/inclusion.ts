import { define } from '../../Check.js'
import { limits } from '../../scenario/schema-parts.js'

/** Liveness: honest transactions sent while the faults ran were included with a p99 latency of at most `maxMs`. */
export const inclusion = define({
  name: 'inclusion',
  target: 'devnet',
  summary: 'honest transactions sent during inject are included with p99 ≤ maxMs',
  params: { type: 'object', additionalProperties: false, required: ['maxMs'], properties: { maxMs: { type: 'integer', minimum: 1, maximum: limits.phaseMs } } },
  evaluate(series, _window, body: { maxMs: number }) {
    const sorted = [...series.inclusionMs].sort((a, b) => a - b)
    const p99 = sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]
    return {
      ok: sorted.length > 0 && (p99 as number) <= body.maxMs,
      observed: sorted.length ? `honest tx inclusion p99 ${Math.round(p99 as number)} ms (n = ${sorted.length})` : 'no honest transaction was included',
      expected: `p99 ≤ ${body.maxMs} ms`,
    }
  },
})
