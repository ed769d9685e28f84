import { define, num, seenIn } from '../../Fault.js'
import { devnetOf, validatorId } from '../devnet-common.js'
import { linksOf, nextTag, poisonLinks } from './links.js'

type State = { id: number; stop: () => void; flips: () => number }

/** A flapping link: the validator is cut off and reconnected every `periodMs`, until revert. */
export const flap = define<{ periodMs: number }, State>({
  type: 'net.flap',
  summary: 'Cut a validator off and reconnect it every `periodMs` until reverted.',
  paramsSchema: { type: 'object', additionalProperties: false, required: ['periodMs'], properties: { periodMs: { type: 'integer', minimum: 50, maximum: 600_000 } } },
  parse: (raw, where) => ({ periodMs: num(raw, 'periodMs', where, { min: 50, max: 600_000, integer: true }) }),
  async apply(ctx, target, params) {
    const id = validatorId(target, 'net.flap')
    const devnet = devnetOf(ctx, 'net.flap')
    const tag = nextTag('net.flap')
    let heal: (() => void) | undefined
    let flips = 0
    const flip = () => {
      if (heal) {
        heal()
        heal = undefined
      } else heal = poisonLinks(devnet, linksOf(id), { type: 'partition', attributes: {} }, `${tag}-${flips}`)
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
    return { took: `validator ${state.id}'s links flapped ${state.flips()} times`, seen: seenIn(observations) }
  },
})
