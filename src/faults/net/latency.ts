import { define, devnetOf, seenIn } from '../../Fault.js'
import * as P from '../../Params.js'
import { validatorId } from '../../targets/devnet/validators.js'
import { linksOf, nextTag, poisonLinks } from '../../targets/devnet/links.js'
import { seenOnDevnet } from '../../experiment/observations.js'

/** Adds `latencyMs` ± `jitterMs` to every message to and from a validator (or every link without a target). */
export const latency = define<{ latencyMs: number; jitterMs: number }, { undo: () => void; scope: string }>({
  type: 'net.latency',
  summary: 'Delay messages to and from a validator (or on every link) by `latencyMs` ± `jitterMs`.',
  target: 'devnet',
  params: P.object({
    latencyMs: P.integer({ min: 0, max: 600_000, description: 'Added delay per message, in ms.' }),
    jitterMs: P.integer({ min: 0, max: 600_000, default: 0, description: 'Uniform ± spread, in ms (seeded).' }),
  }),
  async apply(ctx, target, params) {
    const devnet = devnetOf(ctx, 'net.latency')
    const links = target === undefined ? devnet.links() : linksOf(validatorId(target, 'net.latency', devnet.nodes.length), devnet.nodes.length)
    return { undo: poisonLinks(devnet, links, { type: 'latency', attributes: { latency: params.latencyMs, jitter: params.jitterMs } }, nextTag('net.latency')), scope: target === undefined ? 'every link' : `validator ${target}` }
  },
  async revert(_ctx, state) {
    state.undo()
  },
  async detect(_ctx, state, observations) {
    return { took: `latency on ${state.scope}`, seen: seenIn(observations) ?? seenOnDevnet(observations, []) }
  },
})
