import { define, num, seenIn } from '../../Fault.js'
import { devnetOf, validatorId } from '../devnet-common.js'
import { linksOf, nextTag, poisonLinks } from './links.js'

/** Drops whole p2p messages to and from a validator with `probability` (seeded, per message). */
export const loss = define<{ probability: number }, { id: number; undo: () => void }>({
  type: 'net.loss',
  summary: 'Drop whole messages to and from a validator with `probability` (seeded).',
  paramsSchema: { type: 'object', additionalProperties: false, required: ['probability'], properties: { probability: { type: 'number', minimum: 0, maximum: 1 } } },
  parse: (raw, where) => ({ probability: num(raw, 'probability', where, { min: 0, max: 1 }) }),
  async apply(ctx, target, params) {
    const id = validatorId(target, 'net.loss')
    return { id, undo: poisonLinks(devnetOf(ctx, 'net.loss'), linksOf(id), { type: 'loss', attributes: { probability: params.probability, framing: 'newline' } }, nextTag('net.loss')) }
  },
  async revert(_ctx, state) {
    state.undo()
  },
  async detect(_ctx, state, observations) {
    return { took: `message loss on validator ${state.id}'s links`, seen: seenIn(observations) }
  },
})
