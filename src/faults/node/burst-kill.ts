import { define, devnetOf, seenIn } from '../../Fault.js'
import * as P from '../../Params.js'
import { maxValidators } from '../../targets/devnet-size.js'
import { validatorIdParam } from '../../targets/devnet/validators.js'

/** Kills several validators at once (more than f: the chain must stall); revert restarts them. */
export const burstKill = define<{ validators: number[] }, { ids: number[] }>({
  type: 'node.burst-kill',
  summary: 'SIGKILL several validators at once (`validators`); revert restarts them all.',
  target: 'devnet',
  params: P.object({ validators: P.array(validatorIdParam(), { minItems: 1, maxItems: maxValidators, unique: true, description: 'Validators killed together.' }) }),
  async apply(ctx, _target, params) {
    const devnet = devnetOf(ctx, 'node.burst-kill')
    await Promise.all(params.validators.map((id) => devnet.stopNode(id, 'SIGKILL')))
    return { ids: params.validators }
  },
  async revert(ctx, state) {
    const devnet = devnetOf(ctx, 'node.burst-kill')
    await Promise.all(state.ids.map((id) => devnet.startNode(id)))
  },
  async detect(_ctx, state, observations) {
    return { took: `validators ${state.ids.join(', ')} killed together`, seen: seenIn(observations) }
  },
})
