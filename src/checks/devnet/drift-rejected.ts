import { define } from '../../Check.js'
import { validatorId } from './series.js'

/**
 * Safety, for a validator whose clock is off by more than the drift bound: the others refuse
 * its proposals for timestamp drift (at least one refusal in the window: the skew was seen),
 * and none of them commits a block it proposed in the window (after one slot of grace for a
 * proposal made before the skew). At least `minRefusals` refusals (default 1: the skew was seen;
 * 0 for a window that may hold none of its turns, as a search's short fault windows do).
 */
export const driftRejected = define({
  name: 'driftRejected',
  target: 'devnet',
  summary: "the validator's proposals are refused for timestamp drift, and none of its blocks commits",
  params: { type: 'object', additionalProperties: false, required: ['proposer'], description: "The validator's proposals are refused for timestamp drift by the others, and none of its blocks commits (clock-skew drills).", properties: { proposer: validatorId, minRefusals: { type: 'integer', minimum: 0, maximum: 1000, description: 'Refusals needed (default 1); 0 where the window may hold none of its turns.' } } },
  evaluate(series, window, body: { proposer: number; minRefusals?: number }) {
    const others = series.honest.filter((n) => n !== body.proposer)
    const inWindow = (t: number) => t >= window.from && t <= window.to
    const refused = series.probe.rejections.filter(
      (r) => others.includes(r.node) && r.proposer === body.proposer && r.field === 'timestamp' && /from the local clock/.test(r.reason) && inWindow(r.at - series.probe.epochStartMs),
    )
    const committed = series.probe.blocks.filter((b) => others.includes(b.node) && b.proposer === body.proposer && b.t >= window.from + series.slotMs && b.t <= window.to)
    const heights = [...new Set(committed.map((b) => b.height))]
    return {
      ok: refused.length >= (body.minRefusals ?? 1) && committed.length === 0,
      observed:
        `${refused.length} refusals of validator ${body.proposer}'s proposals for timestamp drift (by ${[...new Set(refused.map((r) => r.node))].join(', ') || 'nobody'})` +
        `${refused[0] ? `, e.g. "${refused[0].reason}"` : ''}; ${heights.length} of its blocks committed${heights.length ? ` (heights ${heights.slice(0, 5).join(', ')})` : ''}`,
      expected: 'its proposals refused for timestamp drift, none of its blocks committed',
    }
  },
})
