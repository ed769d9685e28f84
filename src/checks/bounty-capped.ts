import { define, valueOf } from '../Check.js'
import { inWindow } from '../probes/fork.js'
import { bountyEventOf } from '../scenario/protocol.js'
import { argProblem, type Value, valueSchema } from '../scenario/values.js'
import { trueOrOptions } from '../scenario/schema-parts.js'
import { fmt } from './read.js'

export type BountyCappedBody =
  | true
  | {
      /** Also bound each bounty by what the keeper paid for gas: ≤ gasUsed × effectiveGasPrice × price × this. */
      maxGasMultiple?: number
      /** The gas token's price in the bounty's token, 1e18-scaled (a view, e.g. a TWAP's `consult()`); default 1e18 (paid in the gas token). */
      gasTokenPrice?: Value
      /** Also bound each bounty by a share of the protocol's assets: ≤ assets × this / 10,000. */
      maxAssetsBps?: number
      /** The assets `maxAssetsBps` is a share of; default `totalAssets()` on the vault. Read at the window's end. */
      assets?: Value
      /** Judge the protocol's own cap too (default true); false for a protocol with no cap to read, judged by the bounds alone. */
      protocolCap?: boolean
    }

type Prepared = { body: Exclude<BountyCappedBody, true>; capFrom: string; priceAt?: number; assetsAt?: number }

/**
 * Safety: every keeper bounty paid in the window is at most the cap the protocol applied to it —
 * the bounty event's cap field when the event carries one (`protocol.bountyEvent.cap`), else
 * `protocol.bountyCap` read right after the paying transaction (a cap that moves inside the call,
 * as a TWAP refresh moves the reference vault's, is judged as the call left it, not as it was
 * before). Optionally bounded independently of the protocol's own cap: by the gas the keeper
 * paid (`maxGasMultiple`, priced by `gasTokenPrice`) and by a share of the assets (`maxAssetsBps`).
 */
export const bountyCapped = define({
  name: 'bountyCapped',
  target: 'fork',
  summary: "every keeper bounty ≤ the protocol's applied cap (event field or bountyCap() after the call), optionally ≤ a gas multiple or a share of assets",
  params: trueOrOptions({
    maxGasMultiple: { type: 'number', exclusiveMinimum: 0, maximum: 1_000_000 },
    gasTokenPrice: valueSchema(),
    maxAssetsBps: { type: 'number', exclusiveMinimum: 0, maximum: 10_000 },
    assets: valueSchema(),
    protocolCap: { type: 'boolean' },
  }),
  validate: (body: BountyCappedBody, field) => {
    if (body === true) return undefined
    for (const key of ['gasTokenPrice', 'assets'] as const) {
      const v = body[key]
      const problem = v === undefined ? undefined : argProblem(v, { type: 'uint256' }, `${field}.${key}`)
      if (problem) return problem
    }
    if (body.protocolCap === false && body.maxGasMultiple === undefined && body.maxAssetsBps === undefined)
      return { message: `\`${field}\` with \`protocolCap: false\` needs a bound of its own: \`maxGasMultiple\` or \`maxAssetsBps\`.`, field }
    return undefined
  },
  needs: (body: BountyCappedBody) => (body !== true && body.protocolCap === false ? ['bountyEvent'] : ['bountyEvent', ['bountyEvent.cap', 'bountyCap']]),
  prepare: (body: BountyCappedBody, ctx) => {
    const b = body === true ? {} : body
    const event = ctx.protocol.bountyEvent ? bountyEventOf(ctx.protocol.bountyEvent) : undefined
    const capFrom = event?.cap ? `the ${event.event.split('(')[0]} event's \`${event.cap}\`` : 'bountyCap() after the call'
    const reads = []
    const prepared: Prepared = { body: b, capFrom }
    if (b.maxGasMultiple !== undefined && b.gasTokenPrice !== undefined) {
      prepared.priceAt = reads.length
      reads.push({ kind: 'value' as const, value: b.gasTokenPrice, field: 'bountyCapped.gasTokenPrice' })
    }
    if (b.maxAssetsBps !== undefined) {
      prepared.assetsAt = reads.length
      reads.push({ kind: 'value' as const, value: b.assets ?? { view: 'totalAssets() returns (uint256)', on: ctx.protocol.vault }, field: 'bountyCapped.assets' })
    }
    return { params: prepared, reads }
  },
  evaluate(series, window, { body, capFrom, priceAt, assetsAt }) {
    const judgeCap = body.protocolCap !== false
    const expected = [
      judgeCap ? `every bounty ≤ its cap (${capFrom})` : '',
      body.maxGasMultiple !== undefined ? `≤ ${body.maxGasMultiple} × the gas paid` : '',
      body.maxAssetsBps !== undefined ? `≤ ${body.maxAssetsBps} bps of assets` : '',
    ]
      .filter(Boolean)
      .join(' and ')
    const price = priceAt === undefined ? 10n ** 18n : BigInt(valueOf<bigint>(series.reads[priceAt]))
    const assets = assetsAt === undefined ? undefined : BigInt(valueOf<bigint>(series.reads[assetsAt]))
    let paid = 0
    const worst: Record<'cap' | 'gas' | 'assets', { amount: bigint; bound: bigint; label: string } | undefined> = { cap: undefined, gas: undefined, assets: undefined }
    const consider = (k: keyof typeof worst, amount: bigint, bound: bigint, label: string) => {
      const w = worst[k]
      if (!w || amount - bound > w.amount - w.bound) worst[k] = { amount, bound, label }
    }
    for (const step of inWindow(series, window)) {
      for (const [j, amount] of (step.bounties ?? []).entries()) {
        paid++
        if (judgeCap) {
          const cap = step.bountyCaps?.[j] ?? step.after?.bountyCap
          if (cap === undefined) throw new Error(`${step.label}: the cap was not readable (${capFrom})`)
          consider('cap', amount, cap, step.label)
        }
        if (body.maxGasMultiple !== undefined && step.receipt) {
          const gasPaid = BigInt(step.receipt.gasUsed) * BigInt(step.receipt.effectiveGasPrice)
          consider('gas', amount, (gasPaid * price * BigInt(Math.round(body.maxGasMultiple * 1_000))) / 10n ** 18n / 1_000n, step.label)
        }
        if (assets !== undefined && body.maxAssetsBps !== undefined) consider('assets', amount, (assets * BigInt(Math.round(body.maxAssetsBps * 100))) / 1_000_000n, step.label)
      }
    }
    if (paid === 0) return { ok: true, observed: 'no bounty paid in this phase', expected }
    const parts: string[] = []
    let ok = true
    for (const [k, name] of [['cap', 'cap'], ['gas', 'gas bound'], ['assets', 'assets bound']] as const) {
      const w = worst[k]
      if (!w) continue
      ok &&= w.amount <= w.bound
      parts.push(k === 'cap' ? `largest over cap: ${fmt(w.amount)} vs cap ${fmt(w.bound)}` : `largest over ${name}: ${fmt(w.amount)} vs ${fmt(w.bound)} (${w.label})`)
    }
    return { ok, observed: `${paid} bounties; ${parts.join('; ')}`, expected }
  },
})
