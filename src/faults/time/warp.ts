import { define, seenIn } from '../../Fault.js'
import * as P from '../../Params.js'
import { blockNumber, increaseTime, mine } from '../../targets/chain.js'
import { latestTimestamp } from '../../chain/views.js'

type Params = { seconds: number; blocks: number }
type State = { fromTimestamp: bigint; fromBlock: bigint }

/**
 * Jumps the chain's clock forward by `seconds` and mines `blocks` blocks across the jump (to
 * hold a cooldown open, age a feed, pass a timelock). Time on a live chain cannot run
 * backwards, so `revert` changes nothing: the scenario's snapshot isolation restores the clock.
 */
export const warp = define<Params, State>({
  type: 'time.warp',
  summary: 'Jump block timestamps forward by `seconds` and mine `blocks` blocks (default 1); permanent until the scenario snapshot is restored.',
  target: 'fork',
  params: P.object({
    seconds: P.integer({ min: 1, max: 315_360_000, description: 'Seconds the clock jumps.' }),
    blocks: P.integer({ min: 1, max: 100_000, default: 1, description: 'Blocks mined across the jump.' }),
  }),
  async apply(ctx, _target, params) {
    const state = { fromTimestamp: await latestTimestamp(ctx.rpc), fromBlock: await blockNumber(ctx.rpc) }
    if (params.blocks === 1) {
      await increaseTime(ctx.rpc, params.seconds)
      await mine(ctx.rpc, 1)
    } else {
      await mine(ctx.rpc, params.blocks, Math.max(1, Math.floor(params.seconds / params.blocks)))
    }
    return state
  },
  async revert() {},
  async detect(ctx, state, observations) {
    const now = await latestTimestamp(ctx.rpc)
    const blocks = (await blockNumber(ctx.rpc)) - state.fromBlock
    return { took: `block timestamp +${now - state.fromTimestamp} s over ${blocks} blocks`, seen: seenIn(observations) }
  },
})
