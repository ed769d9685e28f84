import { define } from '../../Check.js'

/**
 * Safety (durability): no validator ever reports a lower height than it reported before, a
 * crash-restart included — a committed block is never forgotten. A validator restarted from its
 * store resumes at least where it stopped; one that lost its store comes back lower.
 */
export const keepsCommitted = define({
  name: 'keepsCommitted',
  target: 'devnet',
  summary: 'no validator ever reports a lower height than before, crash-restarts included: a committed block is never forgotten',
  params: { const: true },
  evaluate(series, window) {
    const best = new Map<number, { height: number; t: number }>()
    const drops: { node: number; from: number; to: number; t: number }[] = []
    for (const s of series.probe.samples) {
      if (s.t > window.to) break
      s.heights.forEach((h, node) => {
        if (h === null) return
        const before = best.get(node)
        if (before && h < before.height) drops.push({ node, from: before.height, to: h, t: s.t })
        if (!before || h > before.height) best.set(node, { height: h, t: s.t })
      })
    }
    const inWindow = drops.filter((d) => d.t >= window.from)
    const first = inWindow[0]
    return {
      ok: inWindow.length === 0,
      observed: first
        ? `validator ${first.node} went back from height ${first.from} to ${first.to} at ${first.t} ms (${inWindow.length} samples lower than before)`
        : `no validator reported a lower height than before (${best.size} validators sampled)`,
      expected: 'every validator resumes at least at the height it had committed',
    }
  },
})
