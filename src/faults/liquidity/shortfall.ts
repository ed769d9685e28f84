import type { Address } from 'viem'
import { define, requireTarget, seenIn } from '../../Fault.js'
import * as P from '../../Params.js'
import { InfraError } from '../../errors.js'
import { isPair, type PairShift, thinPair } from '../../chain/pairs.js'
import { findStorageField, readField, type StorageField, writeField } from '../../chain/slots.js'
import { calldata } from '../../chain/views.js'

type Params = { cutBps: number; token: string | undefined }
type State = { shift: PairShift; cutBps: number } | { field: StorageField; holder: Address; token: Address; before: bigint; cut: bigint }

/**
 * Takes liquidity away from a lender or a pool. With `token`, the target's balance of that
 * ERC-20 is cut by `cutBps` (a flash lender whose `maxFlashLoan` is its balance now lends
 * less). Without `token` the target must be a V2-style pair: both reserves and both balances
 * are cut, so the price holds but the pool is thin. The balance slot is discovered
 * generically and the write is read back through `balanceOf` before the fault counts as applied.
 * Revert adds the cut back (by delta, so transfers made meanwhile are kept).
 */
export const shortfall = define<Params, State>({
  type: 'liquidity.shortfall',
  summary: 'Cut a lender\'s token balance, or a V2 pair\'s reserves and balances, by `cutBps`.',
  target: 'fork',
  params: P.object({
    cutBps: P.number({ min: 1, max: 10_000, description: 'Share removed, in basis points.' }),
    token: P.optional(P.string({ maxLength: 256, description: 'The ERC-20 to cut; omit for a V2 pair target.' })),
  }),
  async apply(ctx, target, params) {
    const holder = ctx.resolve(requireTarget(target, 'liquidity.shortfall'), 'target')
    if (params.token === undefined) {
      if (!(await isPair(ctx.rpc, holder)))
        throw new InfraError('liquidity.shortfall without `token` needs a V2-style pair target.', { context: { Target: holder } })
      return { shift: await thinPair(ctx.rpc, holder, params.cutBps), cutBps: params.cutBps }
    }
    const token = ctx.resolve(params.token, 'params.token')
    const field = await findStorageField(ctx.rpc, {
      to: token,
      data: calldata('balanceOf(address)', [holder]),
      outputWord: 0,
      label: 'balanceOf(target)',
    })
    const before = await readField(ctx.rpc, field)
    const cut = (before * BigInt(Math.round(params.cutBps))) / 10_000n
    await writeField(ctx.rpc, field, before - cut)
    if ((await readField(ctx.rpc, field)) !== before - cut)
      throw new InfraError('The balance write did not take.', { context: { Token: token, Holder: holder } })
    return { field, holder, token, before, cut }
  },
  async revert(ctx, state) {
    if ('shift' in state) return state.shift.undo()
    await writeField(ctx.rpc, state.field, (await readField(ctx.rpc, state.field)) + state.cut)
  },
  async detect(ctx, state, observations) {
    // Said plainly: cutting a pool's reserves and balances takes value from its LP holders (the vault, if it is one)
    // while the fault holds; the revert gives the same amounts back, so nothing is lost after it.
    const took =
      'shift' in state
        ? `${await state.shift.describe()}; LP holders' claim per LP token is cut by ${state.cutBps} bps while this holds (LP value removed, not moved), and given back exactly by the revert`
        : `balanceOf(${state.holder}) ${state.before} → ${await readField(ctx.rpc, state.field)} (cut ${state.cut})`
    return { took, seen: seenIn(observations) }
  },
})
