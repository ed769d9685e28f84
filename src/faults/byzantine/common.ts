import { define, devnetOf, seenIn } from '../../Fault.js'
import * as P from '../../Params.js'
import { validatorId } from '../../targets/devnet/validators.js'
import { seenOnDevnet } from '../../experiment/observations.js'
import type { EngineLieKind } from './engine.js'
import { applyEngineForm, detectEngineForm, type EngineFormState, revertEngineForm, usesEngineApi } from './engine-fault.js'

/**
 * A byzantine behaviour built into the node (`byzantine.<switch>` in its config): the validator
 * restarts with the switch on, same identity and data; revert restarts it honest.
 * With `engine` and an Engine API devnet (`--el ethereumjs`), the same lie is told on the
 * proposer's engine link instead (its getPayload answers rewritten, see `engine.ts`): the
 * node stays as it is and proposes what its EL seemed to build.
 */
export function byzantineSwitch(type: string, key: string, summary: string, engine?: EngineLieKind) {
  return define<Record<string, never>, { form: 'switch'; id: number } | EngineFormState>({
    type,
    summary,
    target: 'devnet',
    params: P.object({}),
    async apply(ctx, target) {
      if (engine && usesEngineApi(devnetOf(ctx, type))) return applyEngineForm(ctx, type, target, engine)
      const id = validatorId(target, type, devnetOf(ctx, type).nodes.length)
      await devnetOf(ctx, type).startNode(id, { overrides: { byzantine: { [key]: true } } })
      return { form: 'switch', id }
    },
    async revert(ctx, state) {
      if (state.form === 'engine') return revertEngineForm(state)
      await devnetOf(ctx, type).startNode(state.id)
    },
    async detect(ctx, state, observations) {
      if (state.form === 'engine') return detectEngineForm(ctx, type, state, observations)
      return { took: `validator ${state.id} runs with byzantine.${key}`, seen: seenIn(observations) ?? seenOnDevnet(observations, [state.id]) }
    },
  })
}
