import { define, num, seenIn } from '../../Fault.js'
import { clockSkewEnv } from '../../targets/devnet.js'
import { devnetOf, validatorId } from '../devnet-common.js'

/**
 * Runs one validator's processes (node and Anvil) with a clock `offsetS` off, through
 * libfaketime (Debian's `faketime`): the validator restarts under LD_PRELOAD with the same
 * identity and data. Revert restarts it on the true clock.
 */
export const clockSkew = define<{ offsetS: number }, { id: number }>({
  type: 'node.clock-skew',
  summary: 'Restart a validator under libfaketime, its clock `offsetS` seconds off; revert restarts it on the real clock.',
  paramsSchema: { type: 'object', additionalProperties: false, required: ['offsetS'], properties: { offsetS: { type: 'integer', minimum: -86_400, maximum: 86_400 } } },
  parse: (raw, where) => ({ offsetS: num(raw, 'offsetS', where, { min: -86_400, max: 86_400, integer: true }) }),
  async apply(ctx, target, params) {
    const id = validatorId(target, 'node.clock-skew')
    await devnetOf(ctx, 'node.clock-skew').startNode(id, { env: clockSkewEnv(params.offsetS) })
    return { id }
  },
  async revert(ctx, state) {
    await devnetOf(ctx, 'node.clock-skew').startNode(state.id)
  },
  async detect(ctx, state, observations) {
    const env = ctx.devnet?.nodes[state.id]?.env ?? {}
    return { took: `validator ${state.id} runs with FAKETIME=${env.FAKETIME ?? '(none)'}`, seen: seenIn(observations) }
  },
})
