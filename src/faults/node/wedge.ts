import { define, devnetOf, seenIn } from '../../Fault.js'
import * as P from '../../Params.js'
import { validatorId } from '../../targets/devnet/validators.js'
import { seenOnDevnet } from '../../experiment/observations.js'

/** SIGSTOPs a validator's processes: alive, holding its sockets, answering nothing. Revert SIGCONTs. */
export const wedge = define<Record<string, never>, { id: number }>({
  type: 'node.wedge',
  summary: 'SIGSTOP a validator (alive but silent); revert sends SIGCONT.',
  target: 'devnet',
  params: P.object({}),
  async apply(ctx, target) {
    const id = validatorId(target, 'node.wedge', devnetOf(ctx, 'node.wedge').nodes.length)
    devnetOf(ctx, 'node.wedge').wedge(id, true)
    return { id }
  },
  async revert(ctx, state) {
    devnetOf(ctx, 'node.wedge').wedge(state.id, false)
  },
  async detect(_ctx, state, observations) {
    return { took: `validator ${state.id} stopped with SIGSTOP`, seen: seenIn(observations) ?? seenOnDevnet(observations, [state.id]) }
  },
})
