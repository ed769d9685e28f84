import { define } from '../Check.js'
import { inWindow } from '../probes/fork.js'
import { text } from '../scenario/schema-parts.js'

export type KeeperLoadParams = { step?: string; maxAmplification?: number; minAmplification?: number; minRequestsPerCycle?: number; minSuccessRate?: number; minStaleReads?: number }

/**
 * The load a keeper put on its endpoint and what it got done: amplification (requests sent per
 * cycle its schedule offered: a rate, which is what a retry budget bounds), requests per cycle it
 * reached (how hard one cycle was retried: a storm's shape, which a starved keeper still shows),
 * and the share of reached cycles that succeeded.
 */
export const keeperLoad = define({
  name: 'keeperLoad',
  target: 'fork',
  summary: "a keeper step's amplification (requests per scheduled cycle), requests per reached cycle and success rate within bounds",
  params: {
    type: 'object',
    additionalProperties: false,
    properties: {
      step: { ...text, description: "The keeper step's label; default every keeper step in the phase." },
      maxAmplification: { type: 'number', minimum: 0, maximum: 1_000_000, description: 'Requests per cycle the schedule offered, at most.' },
      minAmplification: { type: 'number', minimum: 0, maximum: 1_000_000, description: 'Requests per cycle the schedule offered, at least.' },
      minRequestsPerCycle: { type: 'number', minimum: 0, maximum: 1_000_000, description: 'Requests per cycle the keeper reached, at least (a retry storm).' },
      minSuccessRate: { type: 'number', minimum: 0, maximum: 1 },
      minStaleReads: { type: 'integer', minimum: 0, maximum: 100_000, description: 'The keeper noticed a stale node this many times.' },
    },
  },
  evaluate(series, window, body: KeeperLoadParams) {
    const steps = inWindow(series, window).filter((s) => s.type === 'keeper' && s.load && (!body.step || s.label === body.step))
    const expected = [
      body.maxAmplification !== undefined ? `amplification ≤ ${body.maxAmplification}` : '',
      body.minAmplification !== undefined ? `amplification ≥ ${body.minAmplification}` : '',
      body.minRequestsPerCycle !== undefined ? `requests per reached cycle ≥ ${body.minRequestsPerCycle}` : '',
      body.minSuccessRate !== undefined ? `success rate ≥ ${body.minSuccessRate}` : '',
      body.minStaleReads !== undefined ? `stale head reads ≥ ${body.minStaleReads}` : '',
    ]
      .filter(Boolean)
      .join(' and ')
    if (steps.length === 0) return { ok: false, observed: `no keeper step${body.step ? ` labelled ${body.step}` : ''} ran in this phase`, expected }
    for (const s of steps) {
      const l = s.load as NonNullable<typeof s.load>
      const rate = l.offered ? l.succeeded / l.offered : 0
      const observed = `${s.label}: ${l.requests} requests for ${l.scheduled} scheduled cycles (×${l.amplification}, ${l.effectivePerS}/s), ${l.offered} reached (${l.requestsPerCycle} requests each), ${l.succeeded} succeeded (${Math.round(rate * 100)} %), ${l.timeouts} timeouts, ${l.errors} errors, ${l.staleReads} stale head reads`
      const ok =
        (body.maxAmplification === undefined || l.amplification <= body.maxAmplification) &&
        (body.minAmplification === undefined || l.amplification >= body.minAmplification) &&
        (body.minRequestsPerCycle === undefined || l.requestsPerCycle >= body.minRequestsPerCycle) &&
        (body.minSuccessRate === undefined || rate >= body.minSuccessRate) &&
        (body.minStaleReads === undefined || l.staleReads >= body.minStaleReads)
      if (!ok || steps.length === 1) return { ok, observed, expected }
    }
    return { ok: true, observed: `${steps.length} keeper steps within bounds`, expected }
  },
})
