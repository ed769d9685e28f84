import { define, devnetOf, seenIn } from '../../Fault.js'
import * as P from '../../Params.js'
import { maxValidators } from '../../targets/devnet-size.js'
import { validatorId, validatorIdParam } from '../../targets/devnet/validators.js'
import { linksBetween, linksOf, nextTag, poisonLinks } from '../../targets/devnet/links.js'

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
  target: 'devnet',
  params: P.object({
    groups: P.optional(
      P.refine(
        P.array(P.array(validatorIdParam(), { minItems: 1, maxItems: maxValidators, unique: true }), {
          minItems: 2,
          maxItems: maxValidators,
          description: 'Groups of validator ids; no message crosses between groups.',
        }),
        'No validator may be in two groups.',
        (groups) => {
          const all = groups.flat()
          const twice = all.find((v, i) => all.indexOf(v) !== i)
          return twice === undefined ? undefined : `must not put a validator in two groups (validator ${twice} is)`
        },
      ),
    ),
  }),
  async apply(ctx, target, params) {
    const devnet = devnetOf(ctx, 'net.partition')
    const tag = nextTag('net.partition')
    if (params.groups) {
      const links = params.groups.flatMap((g, i) => params.groups?.slice(i + 1).flatMap((h) => linksBetween(g, h)) ?? [])
      return { undo: poisonLinks(devnet, links, { type: 'partition', attributes: {} }, tag), description: params.groups.map((g) => g.join(',')).join(' | ') }
    }
    const id = validatorId(target, 'net.partition', devnet.nodes.length)
    return { undo: poisonLinks(devnet, linksOf(id, devnet.nodes.length), { type: 'partition', attributes: {} }, tag), description: `${id} | rest` }
  },
  async revert(_ctx, state) {
    state.undo()
  },
  async detect(_ctx, state, observations) {
    return { took: `partitioned ${state.description}`, seen: seenIn(observations) }
  },
})
