import { define } from '../../Check.js'

/** Safety: every honest validator holds the same block at every height it reports, at all times. */
export const noFork = define({
  name: 'noFork',
  target: 'devnet',
  summary: 'every honest validator holds the same block at every height (no fork)',
  params: { const: true },
  evaluate(series, window) {
    const byHeight = new Map<number, Map<string, number[]>>()
    for (const b of series.probe.blocks) {
      if (!series.honest.includes(b.node)) continue
      const hashes = byHeight.get(b.height) ?? new Map()
      hashes.set(b.hash, [...(hashes.get(b.hash) ?? []), b.node])
      byHeight.set(b.height, hashes)
    }
    const forks = [...byHeight].filter(([, hashes]) => hashes.size > 1)
    const first = forks[0]
    return {
      ok: forks.length === 0,
      observed: first
        ? `${forks.length} heights with conflicting blocks; height ${first[0]}: ${[...first[1]].map(([h, nodes]) => `${h.slice(0, 10)}… on ${nodes.join(',')}`).join(' vs ')}`
        : `${byHeight.size} heights, one block each across honest validators`,
      expected: 'one block per height on every honest validator',
    }
  },
})
