import { define, seenIn } from '../../Fault.js'
import { devnetOf, validatorId } from '../devnet-common.js'

/** SIGKILLs a validator (consensus node and its Anvil). Revert restarts it with the same identity and data. */
export const kill = define<Record<string, never>, { id: number }>({
  type: 'node.kill',
  summary: 'SIGKILL a validator (node + execution); revert restarts it with the same identity and data directory.',
  paramsSchema: { type: 'object', additionalProperties: false, properties: {} },
  parse: () => ({}),
  async apply(ctx, target) {
    const id = validatorId(target, 'node.kill')
    await devnetOf(ctx, 'node.kill').stopNode(id, 'SIGKILL')
    return { id }
  },
  async revert(ctx, state) {
    await devnetOf(ctx, 'node.kill').startNode(state.id)
  },
  async detect(ctx, state, observations) {
    const down = ctx.devnet?.nodes[state.id]?.running === false
    return { took: `validator ${state.id} ${down ? 'is down (killed)' : 'is running again'}`, seen: seenIn(observations) }
  },
})
