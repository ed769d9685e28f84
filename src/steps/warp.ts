import { define } from '../Step.js'
import { increaseTime, mine } from '../targets/chain.js'

export type WarpBody = {
  /** Seconds the chain's clock moves forward; at most 10 years. */
  seconds: number
}

/** Moves the chain's clock forward and mines a block. */
export const warp = define<'warp', WarpBody>({
  kind: 'warp',
  summary: 'moves the chain clock forward `seconds` and mines a block',
  target: ['fork'],
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['seconds'],
    properties: { seconds: { type: 'integer', minimum: 1, maximum: 315_360_000, description: 'At most 10 years.' } },
  },
  async run(ctx, body) {
    await increaseTime(ctx.rpc, body.seconds)
    await mine(ctx.rpc, 1)
  },
})
