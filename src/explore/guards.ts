import { type AbiEvent, type Address, getAddress, type Hex, toEventSelector, toFunctionSelector } from 'viem'
import { findStorageField, insert, wordAt } from '../chain/slots.js'
import { calldata, moveBps } from '../chain/views.js'
import { artifact } from '../contracts.js'
import { bountyEventOf } from '../scenario/protocol.js'
import type { BountyEvent, Guards } from '../scenario/types.js'
import { call, getBlock, getStorageAt } from '../targets/chain.js'
import type { Rpc } from '../targets/rpc.js'
import { decodeEventLog, numberToHex, parseAbiItem } from '../util/evm.js'
import type { Dependency } from './trace.js'

/**
 * Guard discovery by perturbation: the entry is traced once healthy, then again with one input
 * moved at a time — the price source's answer (a state override of its storage field, up and
 * down in bps), the feed's age (`blockOverrides.time`), the keeper's gas price (the call's
 * `gasPrice`) — and each axis is bisected for the point where the entry's outcome changes. The
 * outcome of a risk axis is what the entry emits and whether it reverts (its own events, in
 * order: a risk-mode switch adds one); of the gas axis, the bounty the protocol's bounty event
 * reports (it stops rising where the bounty's gas price is capped). Nothing is written to the
 * fork: every probe is one `debug_traceCall`.
 */
export type Axis = 'price-down' | 'price-up' | 'feed-age' | 'gas-price'
export const axes: readonly Axis[] = ['price-down', 'price-up', 'feed-age', 'gas-price']

/** What one axis's search found. */
export type FoundGuard = {
  axis: Axis
  /** `bps` of feed move, `s` of feed age, `gwei` of gas price. */
  unit: 'bps' | 's' | 'gwei'
  /**
   * Risk axes: the largest move (age) whose outcome is the healthy one (the guard's allowance:
   * one unit more flips it). Gas: the least gas price from which the bounty no longer rises (the
   * cap). Undefined when nothing flipped within `range`.
   */
  threshold: number | undefined
  /** The searched range, in `unit`. */
  range: readonly [number, number]
  /** The search's resolution, in `unit` (1 bps, 1 s, 1 wei = 1e-9 gwei). */
  resolution: number
  /** What changed past the threshold (`emits RiskModeChanged`, `reverts: …`, `bounty stops at 0.0042`), or why nothing was searched. */
  outcome: string
  calls: number
  /** The feed age at the state searched (s): the rows' `staleS` is a level minus this. */
  baseAgeS?: number
  /** Price axes: where the feed's healthy answer sits from the price it is compared with (bps, signed): the rows' feed moves are shifted by it. */
  offsetBps?: number
}

export type Discovery = { guards: FoundGuard[]; calls: number; durationMs: number; budget: number }

/**
 * The search's limits: the ranges (the feed moved up to 50 % either way, aged up to 30 days, the
 * gas price from 1 to 10,000 gwei; each widened to twice a declared guard that lies beyond it),
 * and the call budget for the whole discovery. A bisection over 10,000 gwei to 1 wei takes 44
 * calls, over 30 days to 1 s 22, over 5,000 bps 13: about 100 in all, well within the budget.
 */
export const discoveryLimits = { priceMaxBps: 5_000, ageMaxS: 2_592_000, gasMinGwei: 1, gasMaxGwei: 10_000, calls: 200 } as const

type Frame = { error?: string; revertReason?: string; output?: string; logs?: { address: string; topics: Hex[]; data: Hex }[] }

/**
 * Runs the discovery on the fork's current state (healthy: before any fault). `feed` is the
 * dependency that answers `latestRoundData()` (the price source; no price or age axis without
 * one); `bountyEvent` is the protocol's (no gas axis without it).
 */
export async function discoverGuards(
  rpc: Rpc,
  options: { from: Address; to: Address; entry: string; gas: bigint; dependencies: readonly Dependency[]; bountyEvent: BountyEvent | undefined; declared: Guards | undefined; signals?: readonly string[] },
): Promise<Discovery> {
  const t0 = performance.now()
  const budget = discoveryLimits.calls
  let calls = 0
  const tx = { from: options.from, to: options.to, data: toFunctionSelector(`function ${options.entry}`), gas: numberToHex(options.gas) }
  const trace = async (o: { gasPriceWei?: bigint; timeS?: bigint; state?: Record<string, { stateDiff: Record<string, Hex> }> } = {}): Promise<Frame> => {
    if (calls >= budget) throw new BudgetSpent()
    calls++
    return rpc.request<Frame>('debug_traceCall', [
      { ...tx, ...(o.gasPriceWei !== undefined ? { gasPrice: numberToHex(o.gasPriceWei) } : {}) },
      'latest',
      {
        tracer: 'callTracer',
        // The entry's own events are in the top frame; its sub-calls are not needed here.
        tracerConfig: { withLog: true, onlyTopCall: true },
        ...(o.timeS !== undefined ? { blockOverrides: { time: numberToHex(o.timeS) } } : {}),
        ...(o.state ? { stateOverrides: o.state } : {}),
      },
    ])
  }
  const vault = getAddress(options.to)
  const names = eventNames([...(options.signals ?? []), ...(options.bountyEvent ? [bountyEventOf(options.bountyEvent).event] : [])])
  const fingerprint = (f: Frame) =>
    f.error ? `reverts: ${f.revertReason ?? f.error}` : (f.logs ?? []).filter((l) => getAddress(l.address) === vault).map((l) => names.get(l.topics[0] ?? '0x') ?? l.topics[0]).join(',')
  const healthy = fingerprint(await trace())
  /** How the outcome at a flipped point differs from the healthy one, in words. */
  const change = (now: string) => {
    if (now.startsWith('reverts')) return now
    const before = healthy.split(',')
    const added = now.split(',').filter((e) => !before.includes(e))
    return added.length > 0 ? `emits ${[...new Set(added)].join(', ')}` : `emits ${now || 'nothing'} (healthy: ${healthy})`
  }
  const guards: FoundGuard[] = []
  const feed = options.dependencies.find((d) => d.signature === 'latestRoundData()')?.address
  const declared = options.declared

  /**
   * The largest x in [lo, hi] (integers) whose outcome is `same`, given that lo's is and hi's is
   * not: a bisection, ⌈log2(hi − lo)⌉ calls.
   */
  const bisect = async (lo: bigint, hi: bigint, same: (x: bigint) => Promise<boolean>) => {
    while (hi - lo > 1n) {
      const mid = (lo + hi) / 2n
      if (await same(mid)) lo = mid
      else hi = mid
    }
    return lo
  }
  const axis = async (name: Axis, unit: FoundGuard['unit'], range: readonly [number, number], resolution: number, search: () => Promise<Omit<FoundGuard, 'axis' | 'unit' | 'range' | 'resolution' | 'calls'>>) => {
    const before = calls
    try {
      guards.push({ axis: name, unit, range, resolution, ...(await search()), calls: calls - before })
    } catch (error) {
      if (!(error instanceof BudgetSpent)) throw error
      guards.push({ axis: name, unit, range, resolution, threshold: undefined, outcome: `the call budget (${budget}) was spent before this axis finished`, calls: calls - before })
    }
  }

  // The price source's answer set x bps above or below the price it is compared with (a state
  // override of the field behind latestRoundData().answer): the TWAP the entry reads (`consult()`)
  // when it reads one, else the feed's own healthy answer.
  const priceMax = Math.min(9_999, Math.max(discoveryLimits.priceMaxBps, 2 * (declared?.deviationBps ?? 0)))
  const answer = feed ? await findStorageField(rpc, { to: feed, data: calldata('latestRoundData()'), outputWord: 1, label: 'latestRoundData().answer' }) : undefined
  const twap = options.dependencies.find((d) => d.signature === 'consult()')
  const price = feed && answer ? await priceOf(rpc, feed, twap?.address) : undefined
  for (const direction of ['down', 'up'] as const)
    await axis(`price-${direction}`, 'bps', [0, priceMax], 1, async () => {
      if (!feed || !answer || !price) return { threshold: undefined, outcome: 'no guard found: the entry reads no price feed (no dependency answers latestRoundData())' }
      const raw = BigInt(await getStorageAt(rpc, answer.address, answer.slot))
      const at = async (bps: bigint) => {
        // Rounded away from the reference, so the feed is at least `bps` from it.
        const moved = direction === 'up' ? ceilDiv(price.reference * (10_000n + bps), 10_000n * price.scale) : (price.reference * (10_000n - bps)) / (10_000n * price.scale)
        return fingerprint(await trace({ state: { [feed]: { stateDiff: { [answer.slot]: numberToHex(insert(raw, answer.offsetBits, answer.widthBits, moved), { size: 32 }) } } } }))
      }
      const top = await at(BigInt(priceMax))
      if (top === healthy) return { threshold: undefined, outcome: `no guard found within [0, ${priceMax}] bps: the outcome with the feed ${priceMax} bps ${direction === 'up' ? 'over' : 'under'} ${price.against} is the healthy one`, offsetBps: price.offsetBps }
      const found = await bisect(0n, BigInt(priceMax), async (x) => (await at(x)) === healthy)
      return { threshold: Number(found), outcome: `${change(await at(found + 1n))} with the feed ${found + 1n} bps ${direction === 'up' ? 'over' : 'under'} ${price.against}`, offsetBps: price.offsetBps }
    })

  // The feed's age: the block time moved past its updatedAt.
  const ageMax = Math.max(discoveryLimits.ageMaxS, 2 * (declared?.heartbeatS ?? 0))
  await axis('feed-age', 's', [0, ageMax], 1, async () => {
    if (!feed) return { threshold: undefined, outcome: 'no guard found: the entry reads no price feed (no dependency answers latestRoundData())' }
    const updatedAt = wordAt(await call(rpc, { to: feed, data: calldata('latestRoundData()') }), 3)
    const now = BigInt((await getBlock(rpc)).timestamp)
    const baseAgeS = Number(now > updatedAt ? now - updatedAt : 0n)
    const at = async (age: bigint) => fingerprint(await trace({ timeS: updatedAt + age }))
    const top = await at(BigInt(ageMax))
    if (top === healthy) return { threshold: undefined, outcome: `no guard found within [0, ${ageMax}] s: the outcome at a feed ${ageMax} s old is the healthy one`, baseAgeS }
    const found = await bisect(BigInt(baseAgeS), BigInt(ageMax), async (x) => (await at(x)) === healthy)
    return { threshold: Number(found), outcome: change(await at(found + 1n)), baseAgeS }
  })

  // The keeper's gas price: where the bounty stops rising (its gas price capped).
  const gasMax = Math.max(discoveryLimits.gasMaxGwei, 2 * (declared?.maxGasPriceGwei ?? 0))
  await axis('gas-price', 'gwei', [discoveryLimits.gasMinGwei, gasMax], 1e-9, async () => {
    if (!options.bountyEvent) return { threshold: undefined, outcome: 'the protocol names no bounty event: no bounty to watch' }
    const { event, amount } = bountyEventOf(options.bountyEvent)
    const item = parseAbiItem(`event ${event}`) as AbiEvent
    const topic = toEventSelector(item)
    const bounty = async (wei: bigint) => {
      const frame = await trace({ gasPriceWei: wei })
      const log = (frame.logs ?? []).find((l) => getAddress(l.address) === vault && l.topics[0] === topic)
      if (frame.error || !log) return undefined
      return (decodeEventLog(item, log).args as Record<string, unknown>)[amount] as bigint | undefined
    }
    const gwei = 1_000_000_000n
    const lo = BigInt(discoveryLimits.gasMinGwei) * gwei
    const hi = BigInt(gasMax) * gwei
    // The bounty at twice the range's top is what a capped bounty pays; a bounty that still rises there is not capped within the range.
    const capped = await bounty(2n * hi)
    if (capped === undefined) return { threshold: undefined, outcome: `no ${item.name} event from the entry at ${2 * gasMax} gwei` }
    if ((await bounty(hi)) !== capped) return { threshold: undefined, outcome: `no guard found within [${discoveryLimits.gasMinGwei}, ${gasMax}] gwei: the bounty still rises at ${gasMax} gwei` }
    if ((await bounty(lo)) === capped) return { threshold: undefined, outcome: `no guard found within [${discoveryLimits.gasMinGwei}, ${gasMax}] gwei: the bounty does not change with the gas price` }
    const below = await bisect(lo, hi, async (x) => (await bounty(x)) !== capped)
    const cap = below + 1n
    return { threshold: Number(cap) / 1e9, outcome: `the bounty stops rising at ${Number(cap) / 1e9} gwei (${capped} wei of the asset from there on)` }
  })
  return { guards, calls, durationMs: Math.round(performance.now() - t0), budget }
}

/**
 * The price the feed is compared with, in the feed's units × `scale`: the TWAP's `consult()`
 * (18 decimals; the feed's answer has `decimals()`), else the feed's own answer (scale 1).
 * `offsetBps`: where the feed's healthy answer sits from it (the rows' feed moves are relative to
 * the answer, so they are shifted by it).
 */
async function priceOf(rpc: Rpc, feed: Address, twap: Address | undefined): Promise<{ reference: bigint; scale: bigint; against: string; offsetBps: number }> {
  const own = wordAt(await call(rpc, { to: feed, data: calldata('latestRoundData()') }), 1)
  if (!twap) return { reference: own, scale: 1n, against: "the feed's healthy answer", offsetBps: 0 }
  const decimals = wordAt(await call(rpc, { to: feed, data: calldata('decimals()') }), 0)
  const reference = wordAt(await call(rpc, { to: twap, data: calldata('consult()') }), 0)
  const scale = 10n ** (18n - decimals)
  return { reference, scale, against: 'the TWAP (consult())', offsetBps: Number(((own * scale - reference) * 1_000_000n) / reference) / 100 }
}

const ceilDiv = (a: bigint, b: bigint) => (a + b - 1n) / b

/** topic0 → event name, from the reference contracts' ABIs and the protocol's own events (its signals, its bounty event; a topic not known is printed raw). */
function eventNames(own: readonly string[]): Map<string, string> {
  const out = new Map<string, string>()
  for (const item of artifact('ReferenceVault').abi) if (item.type === 'event') out.set(toEventSelector(item as AbiEvent), (item as AbiEvent).name)
  for (const signature of own) {
    const item = parseAbiItem(`event ${signature}`) as AbiEvent
    out.set(toEventSelector(item), item.name)
  }
  return out
}

class BudgetSpent extends Error {}
