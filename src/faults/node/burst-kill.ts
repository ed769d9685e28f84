import { InputError } from '../../errors.js'
import { define, devnetOf, seenIn } from '../../Fault.js'
import * as P from '../../Params.js'
import { checkSize, describeSize, maxValidators, type SizeExpr } from '../../targets/devnet-size.js'
import { sizeParam } from '../../targets/devnet/size-param.js'
import { validatorIdParam } from '../../targets/devnet/validators.js'
import { seenOnDevnet } from '../../experiment/observations.js'

/**
 * Kills several validators at once; revert restarts them. Either by id (`validators: [2, 3]`)
 * or by how many, in terms of f (`count: f+1`: the chain must stall; `count: f`: it must stay
 * live), so one drill means the same on 4 and on 7 validators. `count` takes the highest ids
 * (n − count … n − 1).
 */
export const burstKill = define<{ validators: number[] | undefined; count: SizeExpr | undefined }, { ids: number[]; description: string }>({
  type: 'node.burst-kill',
  summary: 'SIGKILL several validators at once (`validators` by id, or `count`: f, f+1, … of the highest ids); revert restarts them all.',
  target: 'devnet',
  params: P.object(
    {
      validators: P.optional(P.array(validatorIdParam(), { minItems: 1, maxItems: maxValidators, unique: true, description: 'Validators killed together.' })),
      count: P.optional(sizeParam({ min: 1, description: 'How many validators are killed (the highest ids): an integer, or in terms of f ("f", "f+1", "2f+1").' })),
    },
    { exactlyOne: ['validators', 'count'] },
  ),
  async apply(ctx, _target, params) {
    const devnet = devnetOf(ctx, 'node.burst-kill')
    const n = devnet.nodes.length
    const count = params.count && checkSize(params.count, n, 1, (m) => new InputError(`\`node.burst-kill\` \`count\` ${m}.`))
    const ids = count ? Array.from({ length: count }, (_, i) => n - count + i) : (params.validators as number[])
    await Promise.all(ids.map((id) => devnet.stopNode(id, 'SIGKILL')))
    return { ids, description: params.count ? `${describeSize(params.count, n)}: validators ${ids.join(', ')}` : `validators ${ids.join(', ')}` }
  },
  async revert(ctx, state) {
    const devnet = devnetOf(ctx, 'node.burst-kill')
    await Promise.all(state.ids.map((id) => devnet.startNode(id)))
  },
  async detect(_ctx, state, observations) {
    return { took: `${state.description} killed together`, seen: seenIn(observations) ?? seenOnDevnet(observations, state.ids) }
  },
})
