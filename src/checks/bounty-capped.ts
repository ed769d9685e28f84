import { type AbiEvent, decodeEventLog, type Hex, parseAbiItem, toEventSelector } from 'viem'
import { fmt } from './read.js'
import { need } from './share-price-floor.js'
import type { CheckFn } from './types.js'

/**
 * Safety: every keeper bounty paid in the phase is at most the protocol's own cap
 * (`protocol.bountyCap`, read right before the paying transaction, as the vault reads it).
 */
export const bountyCapped: CheckFn<'bountyCapped'> = async (ctx, _body, phase) => {
  const vault = ctx.resolve(ctx.protocol.vault, 'protocol.vault')
  const event = parseAbiItem(`event ${need(ctx.protocol.bountyEvent, 'bountyEvent')}`) as AbiEvent
  const topic = toEventSelector(event)
  need(ctx.protocol.bountyCap, 'bountyCap')
  let paid = 0
  let worst: { amount: bigint; cap: bigint } | undefined
  for (const step of phase.steps) {
    for (const log of step.receipt?.logs ?? []) {
      if (log.address.toLowerCase() !== vault.toLowerCase() || log.topics[0] !== topic) continue
      const { args } = decodeEventLog({ abi: [event], data: log.data, topics: log.topics as [Hex, ...Hex[]] })
      const amount = (args as Record<string, bigint>).amount as bigint
      const cap = step.pre?.bountyCap
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
}
