import { define, devnetOf, seenIn } from '../../Fault.js'
import * as P from '../../Params.js'
import { validatorId } from '../../targets/devnet/validators.js'
import { seenOnDevnet } from '../../experiment/observations.js'

/**
 * A byzantine behaviour built into the node (`byzantine.<switch>` in its config): the validator
 * restarts with the switch on, same identity and data; revert restarts it honest.
 */
export function byzantineSwitch(type: string, key: string, summary: string) {
  return define<Record<string, never>, { id: number }>({
    type,
    summary,
    target: 'devnet',
    params: P.object({}),
    async apply(ctx, target) {
      const id = validatorId(target, type, devnetOf(ctx, type).nodes.length)
      await devnetOf(ctx, type).startNode(id, { overrides: { byzantine: { [key]: true } } })
      return { id }
    },
    async revert(ctx, state) {
      await devnetOf(ctx, type).startNode(state.id)
    },
    async detect(_ctx, state, observations) {
      return { took: `validator ${state.id} runs with byzantine.${key}`, seen: seenIn(observations) ?? seenOnDevnet(observations, [state.id]) }
    },
  })
}
