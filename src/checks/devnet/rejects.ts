import { define } from '../../Check.js'
import { validatorId } from './series.js'

/**
 * Safety: the byzantine proposer's bad blocks are rejected within one slot: honest validators
 * record the rejection (naming the proposer and the layer), none of them commits a block that
 * proposer built during the window, and the height still commits within one slot. At least
 * `minRejections` rejections (default 1: the drill saw the fault; 0 for a window that may hold
 * none of the proposer's turns, as a search's short fault windows do).
 */
export const rejects = define({
  name: 'rejects',
  target: 'devnet',
  summary: "the proposer's bad blocks are rejected within one slot, none committed, the height still commits",
  params: { type: 'object', additionalProperties: false, required: ['proposer'], properties: { proposer: validatorId, minRejections: { type: 'integer', minimum: 0, maximum: 1000, description: 'Rejections needed (default 1); 0 where the window may hold none of its turns.' } } },
  evaluate(series, window, body: { proposer: number; minRejections?: number }) {
    const rejections = series.probe.rejections.filter((r) => series.honest.includes(r.node) && r.proposer === body.proposer)
    // A block it built (its fee recipient) and proposed: not an honest block it re-proposed from
    // another's lock, nor its own block from before the fault that another re-proposed (under
    // load both happened, each seen once per honest node), nor its own honest block built before
    // the fault and committed just after it (its timestamp, floored to seconds, is before the
    // window: on ethereumjs at a 3 s slot one was seen 0.5 s into the window). Counted by height.
    const windowStartS = Math.floor((series.probe.epochStartMs + window.from) / 1_000)
    const badHeights = new Set(
      series.probe.blocks
        .filter((b) => series.honest.includes(b.node) && b.proposer === body.proposer && (b.builder ?? b.proposer) === body.proposer && b.t >= window.from && b.t <= window.to)
        .filter((b) => b.timestampS === undefined || b.timestampS >= windowStartS)
        .map((b) => b.height),
    )
    const committedBad = [...badHeights]
    const latency = rejections.length ? Math.max(...rejections.map((r) => r.latencyMs)) : null
    // The height a bad proposal was for must still commit within one slot of its rejection
    // (probe samples every 100 ms, so allow one sample of slack), plus as long as that rejection
    // took: the next round's block must be re-executed by every peer too (on Anvil a few ms; on
    // an Engine API client a few hundred, which one slot of waiting alone leaves no room for).
    // A rejection in the window's last slot is judged only if its height committed by then: the
    // window closed before its deadline (a drill's last rejection often lands there).
    let worstCommitDelay = 0
    let late = false
    for (const r of rejections) {
      const committed = series.probe.firstCommitAt(r.height)
      const rejectedAt = r.at - series.probe.epochStartMs
      const allowedMs = series.slotMs + 100 + Math.min(r.latencyMs, series.slotMs)
      if (committed === undefined && rejectedAt + allowedMs > window.to) continue
      const delay = committed === undefined ? Number.POSITIVE_INFINITY : committed - rejectedAt
      worstCommitDelay = Math.max(worstCommitDelay, delay)
      if (delay > allowedMs) late = true
    }
    const layers = [...new Set(rejections.map((r) => `${r.layer}${r.field ? `/${r.field}` : ''}`))].join(', ')
    // Engine API devnets: what the honest execution clients themselves answered.
    const elStatuses = new Map<string, number>()
    for (const r of rejections) if (r.engine) elStatuses.set(r.engine.status, (elStatuses.get(r.engine.status) ?? 0) + 1)
    const elAnswers = elStatuses.size ? `; their ELs answered ${[...elStatuses].map(([st, k]) => `${st} ×${k}`).join(', ')}` : ''
    return {
      ok: rejections.length >= (body.minRejections ?? 1) && committedBad.length === 0 && (latency === null || latency <= series.slotMs) && !late,
      observed:
        `${rejections.length} rejections of validator ${body.proposer}'s proposals (${layers || 'none'}${elAnswers}), worst latency ${latency ?? '—'} ms, ` +
        `height committed ${Number.isFinite(worstCommitDelay) ? `${Math.round(worstCommitDelay)} ms` : 'never'} after the rejection at worst; ` +
        `${committedBad.length} blocks by validator ${body.proposer} committed by honest validators${committedBad.length ? ` (heights ${committedBad.sort((a, b) => a - b).join(', ')})` : ''}`,
      expected: `${body.minRejections === 0 ? '' : `at least ${body.minRejections ?? 1} rejection(s); `}every bad proposal rejected within ${series.slotMs} ms, none committed, the height committed within one slot (plus the rejection's own re-execution time)`,
      metrics: { rejectionLatencyMs: latency },
    }
  },
})
