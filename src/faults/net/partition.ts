import { define, seenIn } from '../../Fault.js'
import { InputError } from '../../errors.js'
import { devnetOf, validatorId, validatorList } from '../devnet-common.js'
import { linksBetween, linksOf, nextTag, poisonLinks } from './links.js'

type Params = { groups: number[][] | undefined }
type State = { undo: () => void; description: string }

/**
 * Splits the network: with a `target` validator, it is cut off from all others (both ways);
 * with `groups` (e.g. [[0, 1], [2, 3]] for 2|2), no message crosses between groups. Nothing
 * passes on a cut link while the fault is active; revert heals every link.
 */
export const partition = define<Params, State>({
  type: 'net.partition',
  summary: 'Cut a validator off (`target`) or split into `groups` (e.g. [[0,1],[2,3]]); nothing crosses while active.',
  paramsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: { groups: { type: 'array', minItems: 2, maxItems: 4, items: { type: 'array', minItems: 1, maxItems: 4, items: { type: 'integer', minimum: 0, maximum: 3 } } } },
  },
  parse(raw, where) {
    if (raw.groups === undefined) return { groups: undefined }
    if (!Array.isArray(raw.groups) || raw.groups.length < 2) throw new InputError(`\`groups\` must list at least two groups of validator ids. Got \`${JSON.stringify(raw.groups)}\`.`, { context: { Where: where } })
    const groups = raw.groups.map((g, i) => validatorList(g, `groups[${i}]`))
    const all = groups.flat()
    if (new Set(all).size !== all.length) throw new InputError(`\`groups\` must not repeat a validator. Got \`${JSON.stringify(raw.groups)}\`.`, { context: { Where: where } })
    return { groups }
  },
  async apply(ctx, target, params) {
    const devnet = devnetOf(ctx, 'net.partition')
    const tag = nextTag('net.partition')
    if (params.groups) {
      const links = params.groups.flatMap((g, i) => params.groups?.slice(i + 1).flatMap((h) => linksBetween(g, h)) ?? [])
      return { undo: poisonLinks(devnet, links, { type: 'partition', attributes: {} }, tag), description: params.groups.map((g) => g.join(',')).join(' | ') }
    }
    const id = validatorId(target, 'net.partition')
    return { undo: poisonLinks(devnet, linksOf(id), { type: 'partition', attributes: {} }, tag), description: `${id} | rest` }
  },
  async revert(_ctx, state) {
    state.undo()
  },
  async detect(_ctx, state, observations) {
    return { took: `partitioned ${state.description}`, seen: seenIn(observations) }
  },
})
