import { define } from '../../Check.js'
import { limits } from '../../scenario/schema-parts.js'
import { heightAt, validatorId } from './series.js'

/** Liveness: a recovered validator reaches the others' height within `withinMs` of the revert. */
export const catchUp = define({
  name: 'catchUp',
  target: 'devnet',
  summary: "a recovered validator reaches the others' height within withinMs of the revert",
  params: { type: 'object', additionalProperties: false, required: ['node', 'withinMs'], properties: { node: validatorId, withinMs: { type: 'integer', minimum: 0, maximum: limits.phaseMs } } },
  evaluate(series, window, body: { node: number; withinMs: number }) {
    const at = window.revertedAt ?? window.from
    const others = series.honest.filter((n) => n !== body.node)
    const target = heightAt(series.probe, at, others)
    const sample = series.probe.samples.find((s) => s.t >= at && (s.heights[body.node] ?? -1) >= target)
    const catchUpMs = sample ? sample.t - at : null
    return {
      ok: catchUpMs !== null && catchUpMs <= body.withinMs,
      observed: catchUpMs === null ? `validator ${body.node} did not reach height ${target}` : `validator ${body.node} reached height ${target} ${catchUpMs} ms after heal`,
      expected: `≤ ${body.withinMs} ms`,
      metrics: { catchUpMs },
    }
  },
})
