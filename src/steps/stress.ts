import type { Hex } from 'viem'
import { pairWalker } from '../chain/pairs.js'
import { extract, fieldWrites, findStorageField, readField, type StorageField, writeField } from '../chain/slots.js'
import { numberToHex } from '../util/evm.js'
import { calldata, tryWord } from '../chain/views.js'
import { InputError } from '../errors.js'
import { addressOrName } from '../scenario/schema-parts.js'
import { define } from '../Step.js'
import { increaseTime } from '../targets/chain.js'
import { RpcError } from '../targets/rpc.js'
import { keeperCall } from './tx.js'

/** A seeded random walk: each cycle moves by up to ±`stepBps`, never beyond ±`maxBps` of the start. */
export type Walk = { target: string; stepBps: number; maxBps: number }

export type StressBody = {
  /** Keeper cycles; at most 1,000,000. */
  cycles: number
  from?: string
  /** Seconds the chain's clock moves before each cycle; default 12. */
  intervalS?: number
  walk?: { pair?: Walk; feed?: Walk }
}

const walkSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['target', 'stepBps', 'maxBps'],
  properties: {
    target: addressOrName,
    stepBps: { type: 'number', exclusiveMinimum: 0, maximum: 1_000 },
    maxBps: { type: 'number', exclusiveMinimum: 0, maximum: 5_000 },
  },
}

/**
 * Repeated-cycle stress: N keeper cycles with seeded random walks of the pair's price and the
 * feed's answer between them (each walk stays within ±maxBps of where it started, and is
 * undone at the end). Stop conditions are checked every 25 cycles.
 */
export const stress = define<'stress', StressBody>({
  kind: 'stress',
  summary: '`cycles` keeper cycles with seeded random walks of a pair\'s price and a feed\'s answer between them',
  target: ['fork'],
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['cycles'],
    properties: {
      cycles: { type: 'integer', minimum: 1, maximum: 1_000_000 },
      from: addressOrName,
      intervalS: { type: 'integer', minimum: 0, maximum: 86_400 },
      walk: {
        type: 'object',
        additionalProperties: false,
        properties: { pair: walkSchema, feed: walkSchema },
      },
    },
  },
  names: (s, where) => [
    ...(s.walk?.pair ? [[s.walk.pair.target, `${where}.stress.walk.pair.target`] as [string, string]] : []),
    ...(s.walk?.feed ? [[s.walk.feed.target, `${where}.stress.walk.feed.target`] as [string, string]] : []),
  ],
  async run(ctx, s, env) {
    const where = env.where
    const prng = ctx.prng.fork(`${where}.stress`)
    const from = ctx.resolve(s.from ?? 'keeper', `${where}.stress.from`)
    const feed = s.walk?.feed
    const feedAddress = feed ? ctx.resolve(feed.target, `${where}.stress.walk.feed.target`) : undefined
    // A target that answers no `latestRoundData()` (known only now when its ABI was not reachable at load): refused before anything moves.
    if (feedAddress && (await tryWord(ctx.rpc, feedAddress, 'latestRoundData() returns (uint80,int256,uint256,uint256,uint80)', [], 1)) === undefined)
      throw new InputError(`\`${where}.stress.walk.feed.target\` \`${feed?.target}\` (${feedAddress}) does not answer \`latestRoundData()\`: a stress walk moves a Chainlink-style feed's answer. For a V2 pair use \`walk.pair\`; for any other price view, \`oracle.divergence\` with \`params.fn\`.`)
    const feedField = feedAddress
      ? await findStorageField(ctx.rpc, { to: feedAddress, data: calldata('latestRoundData()'), outputWord: 1, label: 'latestRoundData().answer' })
      : undefined
    const feedStart = feedField ? await readField(ctx.rpc, feedField) : 0n
    const updatedField = feedAddress
      ? await findStorageField(ctx.rpc, { to: feedAddress, data: calldata('latestRoundData()'), outputWord: 3, label: 'latestRoundData().updatedAt' })
      : undefined
    // The pair's storage is found once; each cycle's shift is then three round trips.
    const pair = s.walk?.pair ? await pairWalker(ctx.rpc, ctx.resolve(s.walk.pair.target, `${where}.stress.walk.pair.target`)) : undefined
    let pairBps = 0
    let feedBps = 0
    const walk = (current: number, w: { stepBps: number; maxBps: number }) =>
      Math.max(-w.maxBps, Math.min(w.maxBps, current + (prng.next() * 2 - 1) * w.stepBps))
    // What a cycle's walk reads before it writes: the latest block (an answer's `updatedAt` is its
    // time) and every field a walk may write. The answers come from the batch of the previous
    // cycle's views after its transaction (reads of the same state: nothing writes between but
    // the faults' `beforeStep`, which holds the base fee) or, on the first cycle and after a stop
    // check, from a batch of their own.
    const walkFields: StorageField[] = [...(pair ? pair.fields : []), ...(feedField && updatedField ? [feedField, updatedField] : [])]
    const walkReads = walkFields.length ? [{ method: 'eth_getBlockByNumber', params: ['latest', false] }, ...walkFields.map((f) => ({ method: 'eth_getStorageAt', params: [f.address, f.slot, 'latest'] }))] : []
    let prefetched: unknown[] | undefined
    try {
      for (let i = 0; i < s.cycles; i++) {
        await env.beforeStep()
        // One batch reads what this cycle writes, one writes it with the clock's move: the pair's
        // shift and the feed's answer together.
        const fields: StorageField[] = []
        const values: bigint[] = []
        let pairMove: { bps: number; direction: 'up' | 'down' } | undefined
        if (s.walk?.pair && pair) {
          const next = walk(pairBps, s.walk.pair)
          const delta = next - pairBps
          if (Math.abs(delta) >= 0.5) {
            pairMove = { bps: Math.abs(delta), direction: delta > 0 ? 'up' : 'down' }
            pairBps = next
          }
        }
        let answer: bigint | undefined
        if (feedField && feed && updatedField) {
          feedBps = walk(feedBps, feed)
          answer = (feedStart * BigInt(Math.round(10_000 + feedBps) * 100)) / 1_000_000n
        }
        const interval = s.intervalS ?? 12
        const clock = interval > 0 ? [{ method: 'evm_increaseTime', params: [numberToHex(interval)] }] : []
        const reads = prefetched
        prefetched = undefined
        if (!pairMove && answer === undefined) {
          if (clock.length) await increaseTime(ctx.rpc, interval)
        } else {
          const got = reads ?? (await ctx.rpc.batch(walkReads))
          const failed = got.find((r) => r instanceof RpcError)
          if (failed) throw failed
          const raws = walkFields.map((_, j) => BigInt(got[1 + j] as Hex))
          const current = walkFields.map((f, j) => extract(raws[j] as bigint, f.offsetBits, f.widthBits))
          const at = (f: StorageField) => walkFields.indexOf(f)
          if (pairMove && pair) {
            fields.push(...pair.fields)
            values.push(...pair.plan(pair.fields.map((f) => current[at(f)] as bigint), pairMove.bps, pairMove.direction))
          }
          if (answer !== undefined && feedField && updatedField) {
            // An oracle that keeps publishing: the answer moves and stays fresh (updatedAt = the latest block's time).
            fields.push(feedField, updatedField)
            values.push(answer, BigInt((got[0] as { timestamp: Hex }).timestamp))
          }
          // The clock's move and the storage writes touch different things: their order cannot matter.
          const written = await ctx.rpc.batch([...clock, ...fieldWrites(fields, fields.map((f) => raws[at(f)] as bigint), values)])
          const refused = written.find((r) => r instanceof RpcError)
          if (refused) throw refused
        }
        // Where the walks stand for this cycle (bps from their start), for report.html's stress chart.
        // The pair's read-back goes in the batch of the views before the cycle (reads both, after the
        // write); the next cycle's walk reads in the batch of the views after it, unless a stop check
        // (which may run a user module that moves the chain) comes between.
        const stopsAfter = (i + 1) % 25 === 0
        const next = walkReads.length && i + 1 < s.cycles && !stopsAfter ? { calls: walkReads } : undefined
        env.record({ ...(await keeperCall(ctx, from, undefined, `stress#${i + 1}`, env.phase, pair?.verifyRead(), next)), walk: { pairBps: Math.round(pairBps * 10) / 10, feedBps: Math.round(feedBps * 10) / 10 } })
        prefetched = (next as { answers?: unknown[] } | undefined)?.answers
        if (stopsAfter) {
          env.progress(i + 1, s.cycles)
          await env.stopCheck()
        }
      }
    } finally {
      await pair?.undo()
      if (feedField) await writeField(ctx.rpc, feedField, feedStart)
    }
  },
})
