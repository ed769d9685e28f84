import { define, devnetOf, seenIn } from '../../Fault.js'
import * as P from '../../Params.js'
import type { RpcProxy } from '../../proxy/jsonrpc/proxy.js'
import { validatorId } from '../../targets/devnet/validators.js'
import { flipStateRoot, type RpcBlock } from '../../chain/header.js'
import { seenOnDevnet } from '../../experiment/observations.js'

/**
 * A compromised execution link: the JSON-RPC proxy between one validator and its Anvil flips
 * one bit of the state root of every block the validator builds (its own fee recipient) and
 * recomputes the block hash over the tampered header.
 * The validator signs and proposes what its execution layer told it, as a real compromised node
 * would; the header is self-consistent, so only re-execution by the others can catch it.
 */
export const stateRootFlip = define<Record<string, never>, { id: number; proxy: RpcProxy; rule: string }>({
  type: 'byzantine.state-root-flip',
  summary: 'Flip one bit of the state root (block hash recomputed) on a validator\'s execution link; only re-execution catches it.',
  target: 'devnet',
  params: P.object({}),
  async apply(ctx, target) {
    const id = validatorId(target, 'byzantine.state-root-flip', devnetOf(ctx, 'byzantine.state-root-flip').nodes.length)
    const node = devnetOf(ctx, 'byzantine.state-root-flip').nodes[id]
    const proxy = node?.exec as RpcProxy
    const own = node?.address.toLowerCase()
    // Only the blocks it builds itself (fee recipient = itself): the node lies in its proposals
    // and still follows the chain when it re-executes everyone else's.
    const rule = proxy.addRule({
      match: { methods: ['eth_getBlockByNumber', 'eth_getBlockByHash'] },
      action: {
        type: 'rewrite',
        path: 'result',
        with: (block: unknown) => (block && typeof block === 'object' && String((block as RpcBlock).miner).toLowerCase() === own ? flipStateRoot(block as RpcBlock) : block),
      },
    })
    return { id, proxy, rule }
  },
  async revert(_ctx, state) {
    state.proxy.removeRule(state.rule)
  },
  async detect(_ctx, state, observations) {
    return { took: `execution link of validator ${state.id} flips state roots (${state.proxy.stats().requests} calls through it)`, seen: seenIn(observations) ?? seenOnDevnet(observations, [state.id]) }
  },
})
