import { define, seenIn } from '../../Fault.js'
import { devnetOf, validatorList } from '../devnet-common.js'

/** Kills several validators at once (more than f: the chain must stall); revert restarts them. */
export const burstKill = define<{ validators: number[] }, { ids: number[] }>({
  type: 'node.burst-kill',
  summary: 'SIGKILL several validators at once (`validators`); revert restarts them all.',
  paramsSchema: { type: 'object', additionalProperties: false, required: ['validators'], properties: { validators: { type: 'array', items: { type: 'integer', minimum: 0, maximum: 3 }, minItems: 1, maxItems: 4 } } },
  parse: (raw, where) => ({ validators: validatorList(raw.validators, `${where}.validators`) }),
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
