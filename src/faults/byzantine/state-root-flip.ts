import { define, devnetOf, seenIn } from '../../Fault.js'
import * as P from '../../Params.js'
import type { RpcProxy } from '../../proxy/jsonrpc/proxy.js'
import { validatorId } from '../../targets/devnet/validators.js'
import { flipStateRoot, type RpcBlock } from '../../chain/header.js'
import { seenOnDevnet } from '../../experiment/observations.js'
import { applyEngineForm, detectEngineForm, type EngineFormState, revertEngineForm, usesEngineApi } from './engine-fault.js'

type AnvilFormState = { form: 'anvil'; id: number; proxy: RpcProxy; rule: string }

/**
 * A compromised execution link: the JSON-RPC proxy between one validator and its execution
 * layer flips one bit of the state root of every block the validator builds and recomputes the
 * block hash over the tampered header.
 * The validator signs and proposes what its execution layer told it, as a real compromised node
 * would; the header is self-consistent, so only re-execution by the others can catch it.
 *
 * On Anvil it rewrites the `eth_getBlockByNumber` / `eth_getBlockByHash` answers for the blocks
 * the validator mined (its own fee recipient). On an Engine API client (`--el ethereumjs`) it
 * rewrites the `engine_getPayloadV3/V4` answers on the proposer's engine link, as hive does
 * (see `engine.ts`), and records every honest EL's `newPayload` answer to them.
 */
export const stateRootFlip = define<Record<string, never>, AnvilFormState | EngineFormState>({
  type: 'byzantine.state-root-flip',
  // The summary is published in schema/scenario.schema.json: the forms are told above.
  summary: 'Flip one bit of the state root (block hash recomputed) on a validator\'s execution link; only re-execution catches it.',
  target: 'devnet',
  params: P.object({}),
  async apply(ctx, target) {
    const devnet = devnetOf(ctx, 'byzantine.state-root-flip')
    if (usesEngineApi(devnet)) return applyEngineForm(ctx, 'byzantine.state-root-flip', target, 'state-root-flip')
    const id = validatorId(target, 'byzantine.state-root-flip', devnet.nodes.length)
    const node = devnet.nodes[id]
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
    return { form: 'anvil', id, proxy, rule }
  },
  async revert(_ctx, state) {
    if (state.form === 'engine') return revertEngineForm(state)
    state.proxy.removeRule(state.rule)
  },
  async detect(ctx, state, observations) {
    if (state.form === 'engine') return detectEngineForm(ctx, 'byzantine.state-root-flip', state, observations)
    return { took: `execution link of validator ${state.id} flips state roots (${state.proxy.stats().requests} calls through it)`, seen: seenIn(observations) ?? seenOnDevnet(observations, [state.id]) }
  },
})
