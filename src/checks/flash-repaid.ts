import type { CheckFn } from './types.js'

/**
 * Safety: the flash lender never ends a keeper cycle poorer — its balance of the lent token
 * after each cycle is at least what it was before (loan plus fee repaid in the same transaction).
 */
export const flashRepaid: CheckFn<'flashRepaid'> = async (ctx, _body, phase) => {
  if (!ctx.protocol.lender) throw new Error('this check needs `protocol.lender`')
  let checked = 0
  for (const step of phase.steps) {
    if (step.type !== 'cycle' || !step.receipt || !step.ok) continue
    const before = step.pre?.lenderBalance
    const after = step.post?.lenderBalance
    if (before === undefined || after === undefined) throw new Error(`${step.label}: the lender balance was not readable around the cycle`)
    checked++
    if (after < before)
      return { ok: false, observed: `${step.label}: lender balance ${before} → ${after}`, expected: 'lender balance never falls across a cycle' }
  }
  return { ok: true, observed: `${checked} successful cycles, lender never poorer`, expected: 'lender balance never falls across a cycle' }
}
