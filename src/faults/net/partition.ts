import { define, devnetOf, seenIn } from '../../Fault.js'
import * as P from '../../Params.js'
import { InputError } from '../../errors.js'
import { checkSize, describeSize, maxValidators, type SizeExpr } from '../../targets/devnet-size.js'
import { sizeParam } from '../../targets/devnet/size-param.js'
import { validatorId, validatorIdParam } from '../../targets/devnet/validators.js'
import { linksBetween, linksOf, nextTag, poisonLinks } from '../../targets/devnet/links.js'
import { seenOnDevnet } from '../../experiment/observations.js'

type Params = { groups: number[][] | undefined; sizes: SizeExpr[] | undefined }
type State = { undo: () => void; description: string }

/**
 * Splits the network: with a `target` validator, it is cut off from all others (both ways);
 * with `groups` (e.g. [[0, 1], [2, 3]] for 2|2), no message crosses between groups; with
 * `sizes`, groups of that many validators in id order, in terms of f so one drill means the
 * same on every size (`[f+1, 2f]`: 2|2 on 4, 3|4 on 7, no side with a quorum of 2f+1; `[f]`:
 * f cut off, the rest keep a quorum); validators past the listed sizes form one more group.
 * Nothing passes on a cut link while the fault is active; revert heals every link.
 */
export const partition = define<Params, State>({
  type: 'net.partition',
  summary: 'Cut a validator off (`target`), split into `groups` (e.g. [[0,1],[2,3]]) or into groups of `sizes` in terms of f (e.g. [f+1, 2f]); nothing crosses while active.',
  target: 'devnet',
  params: P.object(
    {
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
      sizes: P.optional(
        P.array(sizeParam({ min: 1, description: 'A group size: an integer, or in terms of f ("f", "f+1", "2f").' }), {
          minItems: 1,
          maxItems: maxValidators,
          description: 'Group sizes in validator id order (the rest form one more group), e.g. [f+1, 2f]: no side has a quorum.',
        }),
      ),
    },
    { atMostOne: ['groups', 'sizes'] },
  ),
  async apply(ctx, target, params) {
    const devnet = devnetOf(ctx, 'net.partition')
    const tag = nextTag('net.partition')
    const n = devnet.nodes.length
    const groups = params.sizes ? groupsOfSizes(params.sizes, n) : params.groups
    if (groups) {
      const links = groups.flatMap((g, i) => groups.slice(i + 1).flatMap((h) => linksBetween(g, h)))
      const sizes = params.sizes ? ` (sizes ${params.sizes.map((s) => describeSize(s, n)).join(', ')})` : ''
      return { undo: poisonLinks(devnet, links, { type: 'partition', attributes: {} }, tag), description: `${groups.map((g) => g.join(',')).join(' | ')}${sizes}` }
    }
    const id = validatorId(target, 'net.partition', devnet.nodes.length)
    return { undo: poisonLinks(devnet, linksOf(id, devnet.nodes.length), { type: 'partition', attributes: {} }, tag), description: `${id} | rest` }
  },
  async revert(_ctx, state) {
    state.undo()
  },
  async detect(_ctx, state, observations) {
    return { took: `partitioned ${state.description}`, seen: seenIn(observations) ?? seenOnDevnet(observations, []) }
  },
})

/** Groups of the given sizes in id order on n validators; the validators left over form one more group. */
function groupsOfSizes(sizes: SizeExpr[], n: number): number[][] {
  const groups: number[][] = []
  let next = 0
  for (const [i, e] of sizes.entries()) {
    const size = checkSize(e, n, 1, (m) => new InputError(`\`net.partition\` \`sizes[${i}]\` ${m}.`))
    if (next + size > n) throw new InputError(`\`net.partition\` \`sizes\` add up to more than the ${n} validators of this devnet. Got \`${JSON.stringify(sizes.map((s) => s.text))}\`.`)
    groups.push(Array.from({ length: size }, (_, j) => next + j))
    next += size
  }
  if (next < n) groups.push(Array.from({ length: n - next }, (_, j) => next + j))
  if (groups.length < 2) throw new InputError(`\`net.partition\` \`sizes\` must leave at least two groups on ${n} validators. Got \`${JSON.stringify(sizes.map((s) => s.text))}\`.`)
  return groups
}
