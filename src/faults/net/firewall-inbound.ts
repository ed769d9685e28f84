import { define, devnetOf, seenIn } from '../../Fault.js'
import * as P from '../../Params.js'
import { validatorId } from '../../targets/devnet/validators.js'
import { nextTag, poisonLinks } from '../../targets/devnet/links.js'
import { seenOnDevnet } from '../../experiment/observations.js'

/** Asymmetric: nothing reaches the target validator, while what it sends still goes out. */
export const firewallInbound = define<Record<string, never>, { id: number; undo: () => void }>({
  type: 'net.firewall-inbound',
  summary: 'Drop every message to a validator while its own messages still go out (asymmetric partition).',
  target: 'devnet',
  params: P.object({}),
  async apply(ctx, target) {
    const id = validatorId(target, 'net.firewall-inbound', devnetOf(ctx, 'net.firewall-inbound').nodes.length)
    const devnet = devnetOf(ctx, 'net.firewall-inbound')
    const links = devnet.nodes.map((n) => n.id).filter((j) => j !== id).map((j) => ({ from: j, to: id }))
    return { id, undo: poisonLinks(devnet, links, { type: 'partition', attributes: {} }, nextTag('net.firewall-inbound')) }
  },
  async revert(_ctx, state) {
    state.undo()
  },
  async detect(_ctx, state, observations) {
    return { took: `inbound links of validator ${state.id} cut`, seen: seenIn(observations) ?? seenOnDevnet(observations, [state.id]) }
  },
})
