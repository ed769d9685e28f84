import type { Address } from 'viem'
import { InfraError } from '../errors.js'
import { findStorageField, readField, type StorageField, writeField } from './slots.js'
import { calldata, tryWord } from './views.js'
import type { Rpc } from '../targets/rpc.js'

/** The pair's cumulative prices, moved as if its spot price had been off for a while. */
export type CumulativeShift = { undo(): Promise<void>; describe(): Promise<string> }

/**
 * Moves a V2-style pair's `price0CumulativeLast` / `price1CumulativeLast` as if the spot price of
 * token0 had been `bps` away (`direction`) for the last `seconds` before `blockTimestampLast`:
 * cum0 changes by spot0 × bps/10 000 × seconds, cum1 by the matching change of 1/spot0 (this
 * pair's units: reserve ratios × 1e18). Reserves and `blockTimestampLast` stay as they are, so
 * every cumulative-based TWAP that reads across that window sees the moved average while spot
 * and timestamps stay consistent. Needs `seconds` ≤ the pair's age in cumulative terms (a
 * cumulative never goes below zero). Revert takes the delta back out (later accumulation kept).
 */
export async function shiftCumulative(rpc: Rpc, pair: Address, bps: number, direction: 'up' | 'down', seconds: number): Promise<CumulativeShift> {
  const reserves = [await tryWord(rpc, pair, 'getReserves() returns (uint112,uint112,uint32)', [], 0), await tryWord(rpc, pair, 'getReserves() returns (uint112,uint112,uint32)', [], 1)]
  const [r0, r1] = reserves
  if (!r0 || !r1) throw new InfraError('The pair has no reserves to derive a price from.', { context: { Pair: pair } })
  const fields: StorageField[] = []
  for (const i of [0, 1] as const)
    fields.push(await findStorageField(rpc, { to: pair, data: calldata(`price${i}CumulativeLast()`), outputWord: 0, label: `price${i}CumulativeLast()` }))
  const sign = direction === 'up' ? 1n : -1n
  const spot0 = (r1 * 10n ** 18n) / r0
  const moved0 = (spot0 * BigInt(10_000 + Number(sign) * Math.round(bps))) / 10_000n
  const spot1 = (r0 * 10n ** 18n) / r1
  const moved1 = moved0 === 0n ? spot1 : 10n ** 36n / moved0
  const deltas = [(moved0 - spot0) * BigInt(seconds), (moved1 - spot1) * BigInt(seconds)]
  const before = await Promise.all(fields.map((f) => readField(rpc, f)))
  for (const [i, f] of fields.entries()) {
    const next = (before[i] as bigint) + (deltas[i] as bigint)
    if (next < 0n)
      throw new InfraError(`price${i}CumulativeLast is ${before[i]}: too small to move back ${seconds} s of a ${bps} bps ${direction} price.`, { context: { Pair: pair }, hint: 'Use fewer `cumulativeS`.' })
  }
  for (const [i, f] of fields.entries()) await writeField(rpc, f, (before[i] as bigint) + (deltas[i] as bigint))
  for (const [i, f] of fields.entries())
    if ((await readField(rpc, f)) !== (before[i] as bigint) + (deltas[i] as bigint)) throw new InfraError(`The write to price${i}CumulativeLast did not take.`, { context: { Pair: pair } })
  return {
    async undo() {
      for (const [i, f] of fields.entries()) await writeField(rpc, f, (await readField(rpc, f)) - (deltas[i] as bigint))
    },
    async describe() {
      const now = await Promise.all(fields.map((f) => readField(rpc, f)))
      return `price0CumulativeLast ${before[0]} → ${now[0]}, price1CumulativeLast ${before[1]} → ${now[1]} (as if spot token0→token1 were ${direction} ${bps} bps for the last ${seconds} s; reserves and blockTimestampLast unchanged)`
    },
  }
}
