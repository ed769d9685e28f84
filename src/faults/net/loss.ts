import { define, devnetOf, seenIn } from '../../Fault.js'
import * as P from '../../Params.js'
import { validatorId } from '../../targets/devnet/validators.js'
import { linksOf, nextTag, poisonLinks } from '../../targets/devnet/links.js'
import { seenOnDevnet } from '../../experiment/observations.js'

/** Drops whole p2p messages to and from a validator with `probability` (seeded, per message). */
export const loss = define<{ probability: number }, { id: number; undo: () => void }>({
  type: 'net.loss',
  summary: 'Drop whole messages to and from a validator with `probability` (seeded).',
  target: 'devnet',
  params: P.object({ probability: P.number({ min: 0, max: 1, description: 'Chance that one message is dropped (seeded).' }) }),
  async apply(ctx, target, params) {
    const id = validatorId(target, 'net.loss', devnetOf(ctx, 'net.loss').nodes.length)
    return { id, undo: poisonLinks(devnetOf(ctx, 'net.loss'), linksOf(id, devnetOf(ctx, 'net.loss').nodes.length), { type: 'loss', attributes: { probability: params.probability, framing: 'newline' } }, nextTag('net.loss')) }
  },
  async revert(_ctx, state) {
    state.undo()
  },
  async detect(_ctx, state, observations) {
    return { took: `message loss on validator ${state.id}'s links`, seen: seenIn(observations) ?? seenOnDevnet(observations, [state.id]) }
  },
})
