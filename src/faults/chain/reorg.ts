import type { Hex } from 'viem'
import { numberToHex } from '../../util/evm.js'
import { define, seenIn } from '../../Fault.js'
import * as P from '../../Params.js'
import { InputError } from '../../errors.js'
import { blockNumber, getBlock } from '../../targets/chain.js'

type Params = { depth: number; replay: boolean }
type Tx = { hash: Hex; from: Hex; to: Hex | null; input: Hex; value: Hex; gas: Hex }
type State = { height: bigint; oldHead: Hex; dropped: Tx[]; replayed: boolean }

/**
 * Replaces the last `depth` blocks with new ones (`anvil_reorg`). What happens to the
 * transactions of the orphaned blocks is said, not hidden: `anvil_reorg` does not return them
 * to the mempool. With `replay: false` (default) they are dropped, as when a reorg loses them;
 * with `replay: true` they are re-included in the new blocks as new transactions (same
 * sender, target, data and value; new hashes). Needs a fresh fork: a reorg is history, not
 * something a revert undoes.
 */
export const reorg = define<Params, State>({
  type: 'chain.reorg',
  summary: 'Reorg the last `depth` blocks; orphaned transactions are dropped, or re-included with `replay: true`.',
  needsFreshTarget: true,
  engineNeeds: ['reorg'],
  target: 'fork',
  params: P.object({
    depth: P.integer({ min: 1, max: 64, description: 'Blocks replaced.' }),
    replay: P.boolean({ default: false, description: 'Re-include the orphaned transactions (new hashes) instead of dropping them.' }),
  }),
  async apply(ctx, _target, params) {
    const height = await blockNumber(ctx.rpc)
    const oldHead = (await getBlock(ctx.rpc)).hash
    const dropped: Tx[] = []
    const pairs: [Record<string, unknown>, number][] = []
    for (let i = params.depth - 1; i >= 0; i--) {
      const block = await ctx.rpc.request<{ transactions: Tx[] }>('eth_getBlockByNumber', [numberToHex(height - BigInt(i)), true])
      for (const tx of block.transactions) {
        dropped.push(tx)
        pairs.push([{ from: tx.from, to: tx.to, data: tx.input, value: tx.value, gas: tx.gas }, params.depth - 1 - i])
      }
    }
    try {
      await ctx.rpc.request('anvil_reorg', [params.depth, params.replay ? pairs : []])
    } catch (error) {
      throw new InputError(`chain.reorg of depth ${params.depth} failed: ${(error as Error).message}`, {
        hint: 'A fork can only reorg blocks mined after its fork block: mine or run steps first.',
      })
    }
    return { height, oldHead, dropped, replayed: params.replay }
  },
  async revert() {},
  async detect(ctx, state, observations) {
    const now = await ctx.rpc.request<{ hash: Hex } | null>('eth_getBlockByNumber', [numberToHex(state.height), false])
    const fate = state.replayed ? 're-included with new hashes' : 'dropped (not returned to the mempool)'
    return {
      took: `block ${state.height} was ${state.oldHead.slice(0, 10)}…, now ${now?.hash.slice(0, 10) ?? 'missing'}…; ${state.dropped.length} orphaned tx ${fate}`,
      seen: seenIn(observations),
    }
  },
})
