import { define, seenIn } from '../../Fault.js'
import { devnetOf, validatorId } from '../devnet-common.js'
import { nextTag, poisonLinks } from './links.js'

/** Asymmetric: nothing reaches the target validator, while what it sends still goes out. */
export const firewallInbound = define<Record<string, never>, { id: number; undo: () => void }>({
  type: 'net.firewall-inbound',
  summary: 'Drop every message to a validator while its own messages still go out (asymmetric partition).',
  paramsSchema: { type: 'object', additionalProperties: false, properties: {} },
  parse: () => ({}),
  async apply(ctx, target) {
    const id = validatorId(target, 'net.firewall-inbound')
    const devnet = devnetOf(ctx, 'net.firewall-inbound')
    const links = [0, 1, 2, 3].filter((j) => j !== id).map((j) => ({ from: j, to: id }))
    return { id, undo: poisonLinks(devnet, links, { type: 'partition', attributes: {} }, nextTag('net.firewall-inbound')) }
  },
  async revert(_ctx, state) {
    state.undo()
  },
  async detect(_ctx, state, observations) {
    return { took: `inbound links of validator ${state.id} cut`, seen: seenIn(observations) }
  },
})
