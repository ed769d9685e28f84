import { define, devnetOf, seenIn } from '../../Fault.js'
import * as P from '../../Params.js'
import { validatorId } from '../../targets/devnet/validators.js'
import { linksOf, nextTag, poisonLinks } from '../../targets/devnet/links.js'
import { seenOnDevnet } from '../../experiment/observations.js'

type State = { id: number; stop: () => void; flips: () => number }

/** A flapping link: the validator is cut off and reconnected every `periodMs`, until revert. */
export const flap = define<{ periodMs: number }, State>({
  type: 'net.flap',
  summary: 'Cut a validator off and reconnect it every `periodMs` until reverted.',
  target: 'devnet',
  params: P.object({ periodMs: P.integer({ min: 50, max: 600_000, description: 'Time between a cut and a reconnect, in ms.' }) }),
  async apply(ctx, target, params) {
    const id = validatorId(target, 'net.flap', devnetOf(ctx, 'net.flap').nodes.length)
    const devnet = devnetOf(ctx, 'net.flap')
    const tag = nextTag('net.flap')
    let heal: (() => void) | undefined
    let flips = 0
    const flip = () => {
      if (heal) {
        heal()
        heal = undefined
      } else heal = poisonLinks(devnet, linksOf(id, devnet.nodes.length), { type: 'partition', attributes: {} }, `${tag}-${flips}`)
      flips++
    }
    flip()
    const timer = setInterval(flip, params.periodMs)
    return {
      id,
      flips: () => flips,
      stop: () => {
        clearInterval(timer)
        heal?.()
        heal = undefined
      },
    }
  },
  async revert(_ctx, state) {
    state.stop()
  },
  async detect(_ctx, state, observations) {
    return { took: `validator ${state.id}'s links flapped ${state.flips()} times`, seen: seenIn(observations) ?? seenOnDevnet(observations, [state.id]) }
  },
})
