import { numberToHex } from '../util/evm.js'
import { latestTimestamp } from '../chain/views.js'
import { argProblem, evaluateValue, type Value, valueNames, valueSchema } from '../scenario/values.js'
import { define } from '../Step.js'
import { increaseTime, mine } from '../targets/chain.js'

export type WarpBody =
  | {
      /** Seconds the chain's clock moves forward; at most 10 years. */
      seconds: number
    }
  | {
      /** A unix time to move the clock to (a view, e.g. a cooldown's end), read when the step runs. */
      to: Value
      /** Seconds added to `to` (−1: the last second before it); default 0. */
      offsetS?: number
    }

/** The longest warp: 10 years. */
const maxWarpS = 315_360_000

/** Moves the chain's clock forward (by `seconds`, or to a time read from the chain) and mines a block. */
export const warp = define<'warp', WarpBody>({
  kind: 'warp',
  summary: 'moves the chain clock forward `seconds`, or `to` a time (a view such as a cooldown end, `offsetS` added), and mines a block',
  target: ['fork'],
  schema: {
    oneOf: [
      {
        type: 'object',
        additionalProperties: false,
        required: ['seconds'],
        properties: { seconds: { type: 'integer', minimum: 1, maximum: maxWarpS, description: 'At most 10 years.' } },
      },
      {
        type: 'object',
        additionalProperties: false,
        required: ['to'],
        properties: {
          to: { ...valueSchema(), description: 'A unix time in seconds: a constant or a view read when the step runs.' },
          offsetS: { type: 'integer', minimum: -maxWarpS, maximum: maxWarpS, description: 'Seconds added to `to`; −1 lands on the last second before it.' },
        },
      },
    ],
  },
  requires: (body, _target, where) => ('to' in body ? argProblem(body.to, { type: 'uint256' }, `${where}.warp.to`) : undefined),
  names: (body, where) => ('to' in body ? valueNames(body.to, `${where}.warp.to`) : []),
  async run(ctx, body, env) {
    if ('seconds' in body) {
      await increaseTime(ctx.rpc, body.seconds)
      await mine(ctx.rpc, 1)
      return
    }
    const target = BigInt(await evaluateValue(ctx, body.to, `${env.where}.warp.to`) as bigint) + BigInt(body.offsetS ?? 0)
    const now = await latestTimestamp(ctx.rpc)
    // The next block's time must be after the latest one's; a warp never goes back.
    if (target <= now) throw new Error(`\`${env.where}.warp.to\` is ${target} (unix s, offset included), not after the chain's latest block time ${now}: a warp cannot go back.`)
    if (target - now > BigInt(maxWarpS)) throw new Error(`\`${env.where}.warp.to\` is ${target - now} s ahead, more than ${maxWarpS} s (10 years), the limit of a warp.`)
    await ctx.rpc.request('evm_setNextBlockTimestamp', [numberToHex(target)])
    await mine(ctx.rpc, 1)
  },
})
