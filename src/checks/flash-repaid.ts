import { define } from '../Check.js'
import { inWindow } from '../probes/fork.js'

const expected = 'lender balance never falls across a cycle'

/**
 * Safety: the flash lender never ends a keeper cycle poorer — its balance of the lent token
 * after each cycle (read by the probe around it) is at least what it was before (loan plus fee
 * repaid in the same transaction).
 */
export const flashRepaid = define({
  name: 'flashRepaid',
  target: 'fork',
  summary: "the flash lender's token balance never falls across a cycle()",
  params: { const: true },
  needs: ['lender'],
  prepare: (body: true, ctx) => {
    if (!ctx.protocol.lender) throw new Error('this check needs `protocol.lender`')
    return { params: body, reads: [] }
  },
  evaluate(series, window) {
    let checked = 0
    for (const step of inWindow(series, window)) {
      if (step.type !== 'cycle' || !step.receipt || !step.ok) continue
      const before = step.before?.lenderBalance
      const after = step.after?.lenderBalance
      if (before === undefined || after === undefined) throw new Error(`${step.label}: the lender balance was not readable around the cycle`)
      checked++
      if (after < before) return { ok: false, observed: `${step.label}: lender balance ${before} → ${after}`, expected }
    }
    return { ok: true, observed: `${checked} successful cycles, lender never poorer`, expected }
  },
})
