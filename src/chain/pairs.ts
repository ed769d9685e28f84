import type { Address, Hex } from 'viem'
import { InfraError } from '../errors.js'
import type { Rpc } from '../targets/rpc.js'
import { extract, findStorageField, readField, type StorageField, writeField, writeFields } from './slots.js'
import { calldata, moveBps, tryWord } from './views.js'

/** Where a V2-style pair keeps one reserve and the matching token balance. */
type Side = { reserve: StorageField; balance: StorageField; token: Address }

async function side(rpc: Rpc, pair: Address, index: 0 | 1): Promise<Side> {
  const token = await tryWord(rpc, pair, `token${index}() returns (address)`)
  if (token === undefined)
    throw new InfraError('The target is not a Uniswap-V2-style pair: `token0()` / `token1()` did not answer.', {
      context: { Contract: pair },
    })
  const tokenAddress = `0x${token.toString(16).padStart(40, '0')}` as Address
  const reserve = await findStorageField(rpc, { to: pair, data: calldata('getReserves()'), outputWord: index, label: `getReserves()[${index}]` })
  const balance = await findStorageField(rpc, {
    to: tokenAddress,
    data: calldata('balanceOf(address)', [pair]),
    outputWord: 0,
    label: `token${index}.balanceOf(pair)`,
  })
  return { reserve, balance, token: tokenAddress }
}

/** A change to a pair that can be undone by its delta, so later legitimate trades survive. */
export type PairShift = { undo(): Promise<void>; describe(): Promise<string> }

async function addToField(rpc: Rpc, field: StorageField, delta: bigint) {
  const now = await readField(rpc, field)
  await writeField(rpc, field, now + delta < 0n ? 0n : now + delta)
}

/** Throws when a field read back after a write is not what was written. */
function expectWritten(got: bigint, expected: bigint, label: string) {
  if (got !== expected) throw new InfraError(`The write to ${label} did not take.`, { context: { Expected: expected.toString(), Got: got.toString() } })
}

async function verify(rpc: Rpc, field: StorageField, expected: bigint, label: string) {
  expectWritten(await readField(rpc, field), expected, label)
}

/** Moves the pair's token0 price by `bps` by changing reserve1 and token1's balance together. */
export async function shiftPairToken1(rpc: Rpc, pair: Address, bps: number, direction: 'up' | 'down'): Promise<PairShift> {
  const s = await side(rpc, pair, 1)
  const before = await readField(rpc, s.reserve)
  const delta = moveBps(before, bps, direction) - before
  await addToField(rpc, s.reserve, delta)
  await addToField(rpc, s.balance, delta)
  await verify(rpc, s.reserve, before + delta, 'getReserves()[1]')
  return {
    undo: async () => {
      await addToField(rpc, s.reserve, -delta)
      await addToField(rpc, s.balance, -delta)
    },
    describe: async () => `pair reserve1 ${before} → ${await readField(rpc, s.reserve)} (spot token0→token1 ${direction} ${bps} bps)`,
  }
}

/** A pair walk's state: its two fields, the sum of its shifts, and the reserve its last shift wrote. */
export type PairWalker = {
  /** reserve1 and token1.balanceOf(pair), the fields a shift writes. */
  readonly fields: readonly [StorageField, StorageField]
  /** The values a shift writes, from the fields' current values; `verify` must follow the write. */
  plan(current: readonly bigint[], bps: number, direction: 'up' | 'down'): [bigint, bigint]
  /** Reads reserve1 back: the last planned write took. */
  verify(): Promise<void>
  /**
   * `verify` as a read for the caller's own batch (after the write, before anything else moves
   * the chain): the call to send, and the check of its answer (throws as `verify` does). None
   * when no shift is planned.
   */
  verifyRead(): { call: { method: string; params: unknown[] }; check(answer: unknown): void } | undefined
  shift(bps: number, direction: 'up' | 'down'): Promise<void>
  undo(): Promise<void>
}

/**
 * Repeated shifts of one pair's token1 price (the stress walk): the pair's storage is found once,
 * and each shift is three round trips (one batch reads reserve1 and token1's balance, one writes
 * both, one reads reserve1 back) instead of the ~25 of a `shiftPairToken1`; fewer still when its
 * caller puts `plan` inside its own batches. `undo` takes the sum of every shift back out, so
 * trades between shifts survive, as with `shiftPairToken1`.
 */
export async function pairWalker(rpc: Rpc, pair: Address): Promise<PairWalker> {
  const s = await side(rpc, pair, 1)
  let net = 0n
  let expected: bigint | undefined
  const walker: PairWalker = {
    fields: [s.reserve, s.balance],
    plan([reserve, balance], bps, direction) {
      const before = reserve as bigint
      const delta = moveBps(before, bps, direction) - before
      net += delta
      expected = before + delta < 0n ? 0n : before + delta
      const b = (balance as bigint) + delta
      return [expected, b < 0n ? 0n : b]
    },
    async verify() {
      if (expected !== undefined) await verify(rpc, s.reserve, expected, 'getReserves()[1]')
      expected = undefined
    },
    verifyRead() {
      if (expected === undefined) return undefined
      const want = expected
      expected = undefined
      return {
        call: { method: 'eth_getStorageAt', params: [s.reserve.address, s.reserve.slot, 'latest'] },
        check(answer) {
          if (answer instanceof Error) throw answer
          expectWritten(extract(BigInt(answer as Hex), s.reserve.offsetBits, s.reserve.widthBits), want, 'getReserves()[1]')
        },
      }
    },
    async shift(bps, direction) {
      await writeFields(rpc, walker.fields, (_, current) => walker.plan(current, bps, direction))
      await walker.verify()
    },
    async undo() {
      if (net === 0n) return
      await addToField(rpc, s.reserve, -net)
      await addToField(rpc, s.balance, -net)
      net = 0n
    },
  }
  return walker
}

/** Cuts both reserves and both balances by `cutBps`: the same price, thinner liquidity. */
export async function thinPair(rpc: Rpc, pair: Address, cutBps: number): Promise<PairShift> {
  const sides = [await side(rpc, pair, 0), await side(rpc, pair, 1)]
  const deltas: bigint[] = []
  for (const s of sides) {
    const before = await readField(rpc, s.reserve)
    const delta = -((before * BigInt(Math.round(cutBps))) / 10_000n)
    deltas.push(delta)
    await addToField(rpc, s.reserve, delta)
    await addToField(rpc, s.balance, delta)
    await verify(rpc, s.reserve, before + delta, 'a pair reserve')
  }
  return {
    undo: async () => {
      for (const [i, s] of sides.entries()) {
        await addToField(rpc, s.reserve, -(deltas[i] as bigint))
        await addToField(rpc, s.balance, -(deltas[i] as bigint))
      }
    },
    describe: async () => {
      const reserves = await Promise.all(sides.map((s) => readField(rpc, s.reserve)))
      return `pair reserves cut by ${cutBps} bps to ${reserves.join(' / ')}`
    },
  }
}

export async function isPair(rpc: Rpc, address: Address): Promise<boolean> {
  return (await tryWord(rpc, address, 'getReserves() returns (uint112,uint112,uint32)')) !== undefined
}
