import { define, need } from '../Check.js'
import { inWindow } from '../probes/fork.js'
import { fmt } from './read.js'

/**
 * Safety: every keeper bounty paid in the window is at most the protocol's own cap
 * (`protocol.bountyCap`, read by the probe right before the paying transaction, as the vault
 * reads it; the amounts are the probe's decoded `protocol.bountyEvent`s).
 */
export const bountyCapped = define({
  name: 'bountyCapped',
  target: 'fork',
  summary: 'every keeper bounty event ≤ bountyCap()',
  params: { const: true },
  prepare: (body: true, ctx) => {
    need(ctx.protocol.bountyEvent, 'bountyEvent')
    need(ctx.protocol.bountyCap, 'bountyCap')
    return { params: body, reads: [] }
  },
  evaluate(series, window) {
    let paid = 0
    let worst: { amount: bigint; cap: bigint } | undefined
    for (const step of inWindow(series, window)) {
      for (const amount of step.bounties ?? []) {
        const cap = step.before?.bountyCap
        if (cap === undefined) throw new Error(`${step.label}: bountyCap() was not readable before the cycle`)
        paid++
        if (!worst || amount - cap > worst.amount - worst.cap) worst = { amount, cap }
      }
    }
    if (!worst) return { ok: true, observed: 'no bounty paid in this phase', expected: 'every bounty ≤ bountyCap()' }
    return {
      ok: worst.amount <= worst.cap,
      observed: `${paid} bounties; largest over cap: ${fmt(worst.amount)} vs cap ${fmt(worst.cap)}`,
      expected: 'every bounty ≤ bountyCap()',
    }
  },
})
