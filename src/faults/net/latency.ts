import { define, num, seenIn } from '../../Fault.js'
import { devnetOf, validatorId } from '../devnet-common.js'
import { linksOf, nextTag, poisonLinks } from './links.js'

/** Adds `latencyMs` ± `jitterMs` to every message to and from a validator (or every link without a target). */
export const latency = define<{ latencyMs: number; jitterMs: number }, { undo: () => void; scope: string }>({
  type: 'net.latency',
  summary: 'Delay messages to and from a validator (or on every link) by `latencyMs` ± `jitterMs`.',
  paramsSchema: { type: 'object', additionalProperties: false, required: ['latencyMs'], properties: { latencyMs: { type: 'integer', minimum: 0, maximum: 600_000 }, jitterMs: { type: 'integer', minimum: 0, maximum: 600_000, default: 0 } } },
  parse: (raw, where) => ({ latencyMs: num(raw, 'latencyMs', where, { min: 0, max: 600_000, integer: true }), jitterMs: num(raw, 'jitterMs', where, { min: 0, max: 600_000, default: 0, integer: true }) }),
  async apply(ctx, target, params) {
    const devnet = devnetOf(ctx, 'net.latency')
    const links = target === undefined ? devnet.links() : linksOf(validatorId(target, 'net.latency'))
    return { undo: poisonLinks(devnet, links, { type: 'latency', attributes: { latency: params.latencyMs, jitter: params.jitterMs } }, nextTag('net.latency')), scope: target === undefined ? 'every link' : `validator ${target}` }
  },
  async revert(_ctx, state) {
    state.undo()
  },
  async detect(_ctx, state, observations) {
    return { took: `latency on ${state.scope}`, seen: seenIn(observations) }
  },
})
