import { define } from '../../Check.js'
import { limits } from '../../scenario/schema-parts.js'
import { catchUp as judge } from './checks.js'
import { contextOf, validatorId } from './series.js'

/** Liveness: a recovered validator reaches the others' height within `withinMs` of the revert (measured: `catchUpMs`). */
export const catchUp = define({
  name: 'catchUp',
  target: 'devnet',
  summary: "a recovered validator reaches the others' height within withinMs of the revert",
  params: { type: 'object', additionalProperties: false, required: ['node', 'withinMs'], properties: { node: validatorId, withinMs: { type: 'integer', minimum: 0, maximum: limits.phaseMs } } },
  evaluate(series, window, body: { node: number; withinMs: number }) {
    const { catchUpMs, ...outcome } = judge(contextOf(series, window), body)
    return { ...outcome, metrics: { catchUpMs } }
  },
})
