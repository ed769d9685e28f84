import { define } from '../../Check.js'

/**
 * Safety: no honest validator (one no fault of the scenario makes byzantine) is named in the
 * equivocation evidence honest validators recorded — two proposals or two votes signed for one
 * height and round — at any time. A double-signing restart or a validator that votes twice in a
 * round is caught here even when nothing forks.
 */
export const honestNotAccused = define({
  name: 'honestNotAccused',
  target: 'devnet',
  summary: 'no honest validator is named in the equivocation evidence (double proposals or votes) honest validators recorded, at any time',
  params: { const: true },
  evaluate(series) {
    const recorded = series.probe.evidence.filter((e) => series.honest.includes(e.node))
    const accused = recorded.filter((e) => series.honest.includes(e.validator))
    const first = accused[0]
    return {
      ok: accused.length === 0,
      observed: first
        ? `${accused.length} evidence records against honest validator(s) ${[...new Set(accused.map((e) => e.validator))].join(', ')}; first: validator ${first.validator} at height ${first.height} round ${first.round} (${first.type}), recorded by validator ${first.node}`
        : `${recorded.length} evidence records, none against an honest validator (honest: ${series.honest.join(', ')})`,
      expected: 'no evidence against an honest validator',
    }
  },
})
