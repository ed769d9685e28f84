import { define, devnetOf, seenIn } from '../../Fault.js'
import * as P from '../../Params.js'
import { validatorId } from '../../targets/devnet/validators.js'
import { seenOnDevnet } from '../../experiment/observations.js'

/** SIGKILLs a validator (consensus node and its Anvil). Revert restarts it with the same identity and data. */
export const kill = define<Record<string, never>, { id: number }>({
  type: 'node.kill',
  summary: 'SIGKILL a validator (node + execution); revert restarts it with the same identity and data directory.',
  target: 'devnet',
  params: P.object({}),
  async apply(ctx, target) {
    const id = validatorId(target, 'node.kill', devnetOf(ctx, 'node.kill').nodes.length)
    await devnetOf(ctx, 'node.kill').stopNode(id, 'SIGKILL')
    return { id }
  },
  async revert(ctx, state) {
    await devnetOf(ctx, 'node.kill').startNode(state.id)
  },
  async detect(ctx, state, observations) {
    const down = ctx.devnet?.nodes[state.id]?.running === false
    return { took: `validator ${state.id} ${down ? 'is down (killed)' : 'is running again'}`, seen: seenIn(observations) ?? seenOnDevnet(observations, [state.id]) }
  },
})
