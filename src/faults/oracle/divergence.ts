import type { Address } from 'viem'
import { InputError } from '../../errors.js'
import { define, type Evidence, requireTarget, seenIn } from '../../Fault.js'
import * as P from '../../Params.js'
import { call } from '../../targets/chain.js'
import { removeRules } from '../../chain/shim.js'
import { findStorageField, readField, type StorageField, wordAt, writeField } from '../../chain/slots.js'
import { calldata, moveBps, tryWord } from '../../chain/views.js'
import { isPair, shiftPairToken1, type PairShift } from '../../chain/pairs.js'
import { type CumulativeShift, shiftCumulative } from '../../chain/cumulative.js'
import { type PriceView, parsePriceView, rewriteRule, shiftView, type ViewShift } from '../../chain/shim-view.js'

type Params = {
  bps: number | undefined
  direction: 'up' | 'down'
  staleS: number | undefined
  fn: string | undefined
  word: number | undefined
  value: bigint | undefined
  cumulativeS: number | undefined
  /** `fn` parsed at load (selector, the word's type). */
  view: PriceView | undefined
}
type State =
  | { kind: 'feed'; feed: Address; answer: { field: StorageField; before: bigint; injected: bigint }; updatedAt?: { field: StorageField; before: bigint; injected: bigint } }
  | { kind: 'pair'; shift: PairShift }
  | { kind: 'cumulative'; shift: CumulativeShift }
  | { kind: 'view'; view: PriceView; shift: ViewShift }

const base = P.object({
  bps: P.optional(P.number({ min: 0, max: 9_999, description: 'Move in basis points (required unless `value` replaces the word).' })),
  direction: P.oneOf(['up', 'down'], { default: 'down' }),
  staleS: P.optional(P.integer({ min: 0, max: 315_360_000, description: 'Chainlink-style feeds only: age `updatedAt` by this many seconds.' })),
  fn: P.optional(P.string({ maxLength: 1_000, description: 'Any view, by signature with its return types (`consult() returns (uint256)`): its answer is rewritten through the selector shim, which calls the original code.' })),
  word: P.optional(P.integer({ min: 0, max: 31, description: 'With `fn`: the index of the returned word to rewrite (default 0).' })),
  value: P.optional(P.string({ maxLength: 80, pattern: { regex: '^(-?\\d+|0x[0-9a-fA-F]{1,64})$', expected: 'a whole number (decimal or 0x hex)' }, description: 'With `fn`: replace the word with this value instead of scaling it by `bps`.' })),
  cumulativeS: P.optional(P.integer({ min: 1, max: 31_536_000, description: 'V2 pairs only: move price0/price1CumulativeLast as if the spot price had been off by `bps` for this many seconds (TWAP manipulation); reserves stay.' })),
}, { exactlyOne: ['bps', 'value'] })

/** A param given where it has no effect is refused, with the reason: never a silent no-op. */
const paramsSpec: P.Spec<Params> = {
  ...base,
  rules: [...(base.rules ?? []), '`word` and `value` only with `fn`; `staleS` not with `fn` or `cumulativeS`; `fn` returns static words'],
  parse(raw, at) {
    const p = base.parse(raw, at)
    const refuse = (key: string, why: string) => {
      throw new P.ParamsError(`\`${P.name([...at.path, key])}\` is refused: it ${why}.`, [...at.path, key])
    }
    if (p.fn === undefined) {
      if (p.word !== undefined) refuse('word', 'picks the returned word of `fn`, which is not given')
      if (p.value !== undefined) refuse('value', 'replaces a returned word of `fn`, which is not given')
    } else {
      if (p.staleS !== undefined) refuse('staleS', 'ages a Chainlink-style feed\'s `updatedAt`; with `fn` the fault rewrites one returned word (give the `updatedAt` word as `word` with a `value`)')
      if (p.cumulativeS !== undefined) refuse('cumulativeS', 'moves a V2 pair\'s cumulative prices, not a view given by `fn`')
    }
    if (p.cumulativeS !== undefined && p.staleS !== undefined) refuse('staleS', 'ages a Chainlink-style feed; `cumulativeS` is for a V2 pair')
    let view: PriceView | undefined
    if (p.fn !== undefined) {
      const parsed = parsePriceView(p.fn, p.word ?? 0, p.value === undefined)
      if ('problem' in parsed) refuse(parsed.field, parsed.problem)
      view = parsed as PriceView
    }
    return { ...p, value: p.value === undefined ? undefined : BigInt(p.value), view } as Params
  },
}

/** What the price source is, from the functions it has: a feed answers `latestRoundData()`, a V2 pair `getReserves()`. */
const sourceKindOf = (functions: readonly string[]): 'feed' | 'pair' | undefined =>
  functions.includes('latestRoundData()') ? 'feed' : functions.includes('getReserves()') ? 'pair' : undefined

/** A param that has no effect on a source of this kind, and why: refused at load where the kind is known, else at apply. */
function kindRefusal(params: Params, kind: 'feed' | 'pair'): { key: 'staleS' | 'cumulativeS'; why: string } | undefined {
  if (params.view) return undefined
  if (kind === 'feed' && params.cumulativeS !== undefined) return { key: 'cumulativeS', why: 'is a Chainlink-style feed (it answers `latestRoundData()`): `cumulativeS` moves a V2 pair\'s cumulative prices' }
  if (kind === 'pair' && params.staleS !== undefined) return { key: 'staleS', why: 'is a V2-style pair, which has no `updatedAt` to age (its time is `blockTimestampLast`, which a swap sets)' }
  return undefined
}

/**
 * Moves a price source away from the TWAP that a protocol compares it with. The target is a
 * Chainlink-style feed (its `latestRoundData` answer moves by `bps`; with `staleS` its
 * `updatedAt` is pushed that many seconds into the past), a Uniswap-V2-style pair (its spot
 * price token0→token1 moves by `bps`: reserve1 and the pair's token1 balance change together,
 * so the pair stays consistent; with `cumulativeS` its cumulative prices move instead, for a
 * TWAP read across them), or any contract with `fn`: that view's answer word `word` is scaled
 * by `bps` or replaced by `value` through the selector shim, which calls the original code.
 * Storage fields are discovered, never hard-coded. A param that would do nothing on the
 * target found is refused (`staleS` on a pair), before anything is written.
 */
export const divergence = define<Params, State>({
  type: 'oracle.divergence',
  summary: "Move a Chainlink-style feed answer (and make it stale), a V2 pair's spot or cumulative price, or any view's returned word (`fn`, through the selector shim) away by `bps`.",
  target: 'fork',
  params: paramsSpec,
  // Known at load when the target's ABI is reachable (the embedded `feed` and `pair`, a project's
  // artifacts). A bare address, or a `contracts:` entry without an ABI, is only known once the
  // chain is read: then `apply` refuses it, before anything is written.
  targetProblem(params, target) {
    const kind = target.functions && sourceKindOf(target.functions)
    const refusal = kind && kindRefusal(params, kind)
    return refusal ? { key: refusal.key, why: `the target \`${target.name}\` ${refusal.why}` } : undefined
  },
  async apply(ctx, target, params) {
    const address = ctx.resolve(requireTarget(target, 'oracle.divergence'), 'target')
    if (params.view) {
      const change = params.value !== undefined ? { value: params.value } : { bps: params.bps ?? 0, direction: params.direction }
      return { kind: 'view', view: params.view, shift: await shiftView(ctx.rpc, address, params.view, rewriteRule(params.view, change)) }
    }
    const isFeed = (await tryWord(ctx.rpc, address, 'latestRoundData() returns (uint80,int256,uint256,uint256,uint80)', [], 1)) !== undefined
    if (isFeed) {
      const refusal = kindRefusal(params, 'feed')
      if (refusal) throw refused(refusal.key, address, refusal.why)
      const view = (word: number, label: string) => ({ to: address, data: calldata('latestRoundData()'), outputWord: word, label })
      const answerField = await findStorageField(ctx.rpc, view(1, 'latestRoundData().answer'))
      const answerBefore = await readField(ctx.rpc, answerField)
      const answerInjected = moveBps(answerBefore, params.bps ?? 0, params.direction)
      const state: State = { kind: 'feed', feed: address, answer: { field: answerField, before: answerBefore, injected: answerInjected } }
      if (params.staleS !== undefined && params.staleS > 0) {
        const field = await findStorageField(ctx.rpc, view(3, 'latestRoundData().updatedAt'))
        const before = await readField(ctx.rpc, field)
        const injected = before > BigInt(params.staleS) ? before - BigInt(params.staleS) : 0n
        state.updatedAt = { field, before, injected }
        await writeField(ctx.rpc, field, injected)
      }
      await writeField(ctx.rpc, answerField, answerInjected)
      return state
    }
    if (!(await isPair(ctx.rpc, address)))
      throw new InputError(`The \`oracle.divergence\` target ${address} is neither a Chainlink-style feed (\`latestRoundData()\`) nor a V2-style pair (\`getReserves()\`): name the view to move with \`fn\`.`, { context: { Target: address } })
    const refusal = kindRefusal(params, 'pair')
    if (refusal) throw refused(refusal.key, address, refusal.why)
    if (params.cumulativeS !== undefined) return { kind: 'cumulative', shift: await shiftCumulative(ctx.rpc, address, params.bps ?? 0, params.direction, params.cumulativeS) }
    return { kind: 'pair', shift: await shiftPairToken1(ctx.rpc, address, params.bps ?? 0, params.direction) }
  },
  async revert(ctx, state) {
    if (state.kind === 'pair' || state.kind === 'cumulative') return state.shift.undo()
    if (state.kind === 'view') return removeRules(state.shift.handle)
    // Put the feed back only where it still holds what we wrote: a real update since wins.
    for (const f of [state.answer, state.updatedAt]) {
      if (f && (await readField(ctx.rpc, f.field)) === f.injected) await writeField(ctx.rpc, f.field, f.before)
    }
  },
  async detect(ctx, state, observations): Promise<Evidence> {
    if (state.kind === 'pair' || state.kind === 'cumulative') return { took: await state.shift.describe(), seen: seenIn(observations) }
    if (state.kind === 'view') {
      const { before, after } = state.shift
      return {
        took: `${state.view.fn} word ${state.view.word} rewritten through the selector shim${before !== undefined ? `: ${before} → ${after}` : ' (takes arguments: not read back)'}`,
        seen: seenIn(observations),
      }
    }
    const out = await call(ctx.rpc, { to: state.feed, data: calldata('latestRoundData()') })
    const answer = wordAt(out, 1)
    return {
      took: `latestRoundData().answer ${state.answer.before} → ${state.answer.injected} (reads ${answer} now)${state.updatedAt ? `; updatedAt aged to ${state.updatedAt.injected}` : ''}`,
      seen: seenIn(observations),
    }
  },
})

/** A param the target found cannot honour: bad input (exit 2), before anything was written. */
function refused(param: string, target: Address, why: string): InputError {
  return new InputError(`\`oracle.divergence\` \`params.${param}\` is refused: the target ${target} ${why}.`, { context: { Target: target, Param: param } })
}
