import type { Address, Hex } from 'viem'
import { getAddress, keccak256, toHex } from '../util/evm.js'
import { trueOrOptions } from '../scenario/schema-parts.js'
import { define } from '../Check.js'
import { inWindow } from '../probes/fork.js'
import type { Receipt } from '../targets/chain.js'

/**
 * `true`: an ERC-3156 lender (`protocol.lender`: address and token), principal back at least.
 * `{ kind: erc3156, feeBps }`: each loan in a cycle repaid with its fee. `{ kind: v2, feeBps }`:
 * `protocol.lender.address` is a V2-style pair lending by flash swap, repaid in either token:
 * each swap out of it in a cycle must leave the fee-adjusted product of its balances at least
 * the product of its reserves before (Uniswap V2's rule; fee default 30 bps).
 */
type Body = true | { kind?: 'erc3156' | 'v2'; feeBps?: number }
type Prepared = { kind: 'erc3156' | 'v2'; feeBps: number; lender: Address; token: Address; legacy: boolean }

const TRANSFER = keccak256(toHex('Transfer(address,address,uint256)'))
const SYNC = keccak256(toHex('Sync(uint112,uint112)'))
const BURN = keccak256(toHex('Burn(address,uint256,uint256,address)'))
const topicAddress = (topic: Hex | undefined) => (topic ? getAddress(`0x${topic.slice(26)}`) : undefined)
const word = (data: Hex, i: number) => BigInt(`0x${data.slice(2 + i * 64, 2 + (i + 1) * 64) || '0'}`)

/**
 * Safety: the flash lender is repaid. Across each successful keeper cycle the lender's balance of
 * the lent token does not fall (read around the cycle), and, read from the cycle's own Transfer
 * logs, each loan comes back with its fee: an ERC-3156 lender gets at least `amount × (1 +
 * feeBps)` back in the same transaction; a V2 pair's flash swap may be repaid in either token,
 * and each swap must keep `(b0 − in0·fee)(b1 − in1·fee) ≥ r0·r1` (reserves before from the pair's
 * Sync events and the transfers around them). So the check also fails against a lender that does
 * not enforce repayment itself.
 */
export const flashRepaid = define({
  name: 'flashRepaid',
  target: 'fork',
  summary: "the flash lender is repaid with its fee in every cycle() (ERC-3156, or a V2 pair's flash swap repaid in either token)",
  params: trueOrOptions({
    kind: { enum: ['erc3156', 'v2'], description: 'erc3156 (default): a lender of `protocol.lender.token`; v2: `protocol.lender.address` is a V2-style pair.' },
    feeBps: { type: 'number', minimum: 0, maximum: 10_000, description: 'The fee each loan must bring back, in bps (default: 0 for erc3156, 30 for v2).' },
  }),
  needs: ['lender'],
  prepare: (body: Body, ctx) => {
    if (!ctx.protocol.lender) throw new Error('this check needs `protocol.lender`')
    const kind = body === true ? 'erc3156' : (body.kind ?? 'erc3156')
    const feeBps = body === true ? 0 : (body.feeBps ?? (kind === 'v2' ? 30 : 0))
    const lender = ctx.resolve(ctx.protocol.lender.address, 'protocol.lender.address')
    const token = ctx.resolve(ctx.protocol.lender.token, 'protocol.lender.token')
    return {
      params: { kind, feeBps, lender, token, legacy: body === true } satisfies Prepared,
      // Which of the pair's tokens is token0: its Sync events list reserves in that order.
      reads: kind === 'v2' ? [{ kind: 'view' as const, to: lender, fn: 'token0() returns (address)', args: [] }] : [],
    }
  },
  evaluate(series, window, p: Prepared) {
    const expected =
      p.kind === 'v2'
        ? `each flash swap out of the pair repaid in either token, fee ${p.feeBps} bps included ((b0 − in0·fee)(b1 − in1·fee) ≥ r0·r1)`
        : p.legacy
          ? 'lender balance never falls across a cycle'
          : `each loan repaid with a ${p.feeBps} bps fee in its cycle; lender balance never falls`
    const token0Read = series.reads[0]
    const token0 = p.kind === 'v2' && token0Read?.ok ? getAddress(String(token0Read.value)) : undefined
    if (p.kind === 'v2' && !token0) return { ok: false, observed: "the pair's token0() was not readable", expected }
    let checked = 0
    let loans = 0
    for (const step of inWindow(series, window)) {
      if (step.type !== 'cycle' || !step.receipt || !step.ok) continue
      checked++
      const before = step.before?.lenderBalance
      const after = step.after?.lenderBalance
      if (p.kind === 'erc3156') {
        if (before === undefined || after === undefined) throw new Error(`${step.label}: the lender balance was not readable around the cycle`)
        const loan = erc3156Loans(step.receipt, p.lender, p.token)
        if (loan.lent > 0n) {
          loans++
          const owed = loan.lent + ceilBps(loan.lent, p.feeBps)
          if (loan.repaid < owed) return { ok: false, observed: `${step.label}: lent ${loan.lent}, repaid ${loan.repaid} (owed ${owed} with the ${p.feeBps} bps fee)`, expected }
        }
        if (after < before) return { ok: false, observed: `${step.label}: lender balance ${before} → ${after}`, expected }
        continue
      }
      const bad = v2Swaps(step.receipt, p.lender, token0 as Address, p.feeBps)
      loans += bad.swaps
      if (bad.problem) return { ok: false, observed: `${step.label}: ${bad.problem}`, expected }
    }
    if (p.legacy && loans === 0) return { ok: true, observed: `${checked} successful cycles, lender never poorer`, expected }
    return { ok: true, observed: `${checked} successful cycles, ${loans} ${p.kind === 'v2' ? 'swaps out of the pair' : 'loans'} repaid with the fee`, expected }
  },
})

const ceilBps = (amount: bigint, bps: number) => (amount * BigInt(Math.round(bps * 100)) + 999_999n) / 1_000_000n

/** What the lender sent out of and got back of `token` in one transaction, from its Transfer logs. */
function erc3156Loans(receipt: Receipt, lender: Address, token: Address): { lent: bigint; repaid: bigint } {
  let lent = 0n
  let repaid = 0n
  for (const log of receipt.logs) {
    if (log.topics[0] !== TRANSFER || getAddress(log.address) !== token) continue
    const from = topicAddress(log.topics[1])
    const to = topicAddress(log.topics[2])
    if (from === to) continue
    if (from === lender) lent += word(log.data, 0)
    if (to === lender) repaid += word(log.data, 0)
  }
  return { lent, repaid }
}

/**
 * Walks one transaction's logs: the pair's transfers in and out accumulate until its Sync (the
 * balances after); reserves before are balances − in + out. A segment that sent tokens out
 * (a swap or flash swap; not a Burn, which returns liquidity) must keep the fee-adjusted product.
 */
function v2Swaps(receipt: Receipt, pair: Address, token0: Address, feeBps: number): { swaps: number; problem?: string } {
  let inOut = { in0: 0n, in1: 0n, out0: 0n, out1: 0n }
  let burn = false
  let swaps = 0
  const fee = BigInt(Math.round(feeBps * 100))
  for (const log of receipt.logs) {
    const emitter = getAddress(log.address)
    if (emitter === pair && log.topics[0] === BURN) burn = true
    if (log.topics[0] === TRANSFER && emitter !== pair) {
      const from = topicAddress(log.topics[1])
      const to = topicAddress(log.topics[2])
      const zero = emitter === token0
      if (to === pair && from !== pair) inOut = zero ? { ...inOut, in0: inOut.in0 + word(log.data, 0) } : { ...inOut, in1: inOut.in1 + word(log.data, 0) }
      if (from === pair && to !== pair) inOut = zero ? { ...inOut, out0: inOut.out0 + word(log.data, 0) } : { ...inOut, out1: inOut.out1 + word(log.data, 0) }
    }
    if (emitter !== pair || log.topics[0] !== SYNC) continue
    const b0 = word(log.data, 0)
    const b1 = word(log.data, 1)
    const { in0, in1, out0, out1 } = inOut
    inOut = { in0: 0n, in1: 0n, out0: 0n, out1: 0n }
    const wasBurn = burn
    burn = false
    if (wasBurn || (out0 === 0n && out1 === 0n)) continue
    swaps++
    const r0 = b0 - in0 + out0
    const r1 = b1 - in1 + out1
    // Uniswap V2's rule in basis points: (b0·10⁶ − in0·fee)(b1·10⁶ − in1·fee) ≥ r0·r1·10¹², fee in millionths.
    const left = (b0 * 1_000_000n - in0 * fee) * (b1 * 1_000_000n - in1 * fee)
    if (left < r0 * r1 * 10n ** 12n)
      return { swaps, problem: `a swap out of the pair took ${out0} token0 / ${out1} token1 and brought back ${in0} / ${in1}: reserves ${r0} / ${r1} → ${b0} / ${b1}, short of the ${feeBps} bps fee-adjusted product` }
  }
  return { swaps }
}
