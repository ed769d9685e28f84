import type { Address } from 'viem'
import { define, type Evidence, requireTarget, seenIn } from '../../Fault.js'
import * as P from '../../Params.js'
import { call } from '../../targets/chain.js'
import { findStorageField, readField, type StorageField, wordAt, writeField } from '../../chain/slots.js'
import { calldata, moveBps, tryWord } from '../../chain/views.js'
import { shiftPairToken1, type PairShift } from '../../chain/pairs.js'

type Params = { bps: number; direction: 'up' | 'down'; staleS: number }
type State =
  | { kind: 'feed'; feed: Address; answer: { field: StorageField; before: bigint; injected: bigint }; updatedAt?: { field: StorageField; before: bigint; injected: bigint } }
  | { kind: 'pair'; shift: PairShift }

/**
 * Moves a price source away from the TWAP that a protocol compares it with. The target is a
 * Chainlink-style feed (its `latestRoundData` answer moves by `bps`; with `staleS` its
 * `updatedAt` is pushed that many seconds into the past) or a Uniswap-V2-style pair (its spot
 * price token0→token1 moves by `bps`: reserve1 and the pair's token1 balance change together,
 * so the pair stays consistent). Storage fields are discovered, never hard-coded.
 */
export const divergence = define<Params, State>({
  type: 'oracle.divergence',
  summary: 'Move a Chainlink-style feed answer (and make it stale) or a V2 pair\'s spot price away from the TWAP by `bps`.',
  target: 'fork',
  params: P.object({
    bps: P.number({ min: 0, max: 9_999, description: 'Move in basis points.' }),
    direction: P.oneOf(['up', 'down'], { default: 'down' }),
    staleS: P.integer({ min: 0, max: 315_360_000, default: 0, description: 'Feeds only: age `updatedAt` by this many seconds.' }),
  }),
  async apply(ctx, target, params) {
    const address = ctx.resolve(requireTarget(target, 'oracle.divergence'), 'target')
    if ((await tryWord(ctx.rpc, address, 'latestRoundData() returns (uint80,int256,uint256,uint256,uint80)', [], 1)) !== undefined) {
      const view = (word: number, label: string) => ({ to: address, data: calldata('latestRoundData()'), outputWord: word, label })
      const answerField = await findStorageField(ctx.rpc, view(1, 'latestRoundData().answer'))
      const answerBefore = await readField(ctx.rpc, answerField)
      const answerInjected = moveBps(answerBefore, params.bps, params.direction)
      const state: State = { kind: 'feed', feed: address, answer: { field: answerField, before: answerBefore, injected: answerInjected } }
      if (params.staleS > 0) {
        const field = await findStorageField(ctx.rpc, view(3, 'latestRoundData().updatedAt'))
        const before = await readField(ctx.rpc, field)
        const injected = before > BigInt(params.staleS) ? before - BigInt(params.staleS) : 0n
        state.updatedAt = { field, before, injected }
        await writeField(ctx.rpc, field, injected)
      }
      await writeField(ctx.rpc, answerField, answerInjected)
      return state
    }
    return { kind: 'pair', shift: await shiftPairToken1(ctx.rpc, address, params.bps, params.direction) }
  },
  async revert(ctx, state) {
    if (state.kind === 'pair') return state.shift.undo()
    // Put the feed back only where it still holds what we wrote: a real update since wins.
    for (const f of [state.answer, state.updatedAt]) {
      if (f && (await readField(ctx.rpc, f.field)) === f.injected) await writeField(ctx.rpc, f.field, f.before)
    }
  },
  async detect(ctx, state, observations): Promise<Evidence> {
    if (state.kind === 'pair') return { took: await state.shift.describe(), seen: seenIn(observations) }
    const out = await call(ctx.rpc, { to: state.feed, data: calldata('latestRoundData()') })
    const answer = wordAt(out, 1)
    return {
      took: `latestRoundData().answer ${state.answer.before} → ${state.answer.injected} (reads ${answer} now)${state.updatedAt ? `; updatedAt aged to ${state.updatedAt.injected}` : ''}`,
      seen: seenIn(observations),
    }
  },
})
