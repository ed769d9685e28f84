import type { Address } from 'viem'
import { InfraError } from '../../errors.js'
import { define, requireTarget, seenIn } from '../../Fault.js'
import * as P from '../../Params.js'
import { findStorageField, readField, type StorageField, writeField } from '../../chain/slots.js'
import { calldata, latestTimestamp } from '../../chain/views.js'

type Params = { account: string; seconds: number; fn: string }
type State = { field: StorageField; account: Address; before: bigint; injected: bigint }

/**
 * Starts a dependency's cooldown for an account now (not only holds one): the storage behind a
 * view of the cooldown's end (`cooldownEnd(address)`, the account as its one argument) is found
 * by probing and set to the latest block time + `seconds`, then read back through the view.
 * With a `fault` step it starts at step k. Revert puts the old end back unless the contract has
 * set a new one since (a real mint restarting the cooldown wins).
 */
export const cooldown = define<Params, State>({
  type: 'dependency.cooldown',
  summary: "Start a dependency's cooldown for `account` now: the end a view reports (`fn`, default `cooldownEnd(address)`) set to now + `seconds`.",
  target: 'fork',
  params: P.object({
    account: P.string({ maxLength: 256, description: 'Whose cooldown starts: a contract or account name, or an address.' }),
    seconds: P.integer({ min: 1, max: 315_360_000, description: 'How long from the latest block time the cooldown runs.' }),
    fn: P.string({ maxLength: 1_000, default: 'cooldownEnd(address)', description: 'The view of the cooldown end, taking the account as its one argument.' }),
  }),
  async apply(ctx, target, params) {
    const contract = ctx.resolve(requireTarget(target, 'dependency.cooldown'), 'target')
    const account = ctx.resolve(params.account, 'params.account')
    const data = calldata(params.fn.includes(' returns ') ? params.fn : `${params.fn} returns (uint256)`, [account])
    const field = await findStorageField(ctx.rpc, { to: contract, data, outputWord: 0, label: `${params.fn}(account)` })
    const before = await readField(ctx.rpc, field)
    const injected = (await latestTimestamp(ctx.rpc)) + BigInt(params.seconds)
    await writeField(ctx.rpc, field, injected)
    if ((await readField(ctx.rpc, field)) !== injected) throw new InfraError('The cooldown write did not take.', { context: { Contract: contract, Account: account } })
    return { field, account, before, injected }
  },
  async revert(ctx, state) {
    if ((await readField(ctx.rpc, state.field)) === state.injected) await writeField(ctx.rpc, state.field, state.before)
  },
  async detect(_ctx, state, observations) {
    return { took: `cooldown end of ${state.account} ${state.before} → ${state.injected}`, seen: seenIn(observations) }
  },
})
