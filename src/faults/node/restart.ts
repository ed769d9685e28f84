import { define, devnetOf, seenIn } from '../../Fault.js'
import * as P from '../../Params.js'
import { validatorId } from '../../targets/devnet/validators.js'
import { seenOnDevnet } from '../../experiment/observations.js'

/** Kills a validator and starts it again at once (same identity, same data): a crash-restart. */
export const restart = define<Record<string, never>, { id: number; pidBefore: number }>({
  type: 'node.restart',
  summary: 'Crash-restart a validator: SIGKILL, then start again with the same identity and data.',
  target: 'devnet',
  params: P.object({}),
  async apply(ctx, target) {
    const id = validatorId(target, 'node.restart', devnetOf(ctx, 'node.restart').nodes.length)
    const devnet = devnetOf(ctx, 'node.restart')
    const pidBefore = devnet.nodes[id]?.pid ?? 0
    await devnet.stopNode(id, 'SIGKILL')
    await devnet.startNode(id)
    return { id, pidBefore }
  },
  async revert() {},
  async detect(ctx, state, observations) {
    const pid = ctx.devnet?.nodes[state.id]?.pid
    return { took: `validator ${state.id} restarted (pid ${state.pidBefore} → ${pid})`, seen: seenIn(observations) ?? seenOnDevnet(observations, [state.id]) }
  },
})
