import { define } from '../Step.js'
import { mine as mineBlocks } from '../targets/chain.js'

export type MineBody = {
  /** Blocks to mine; default 1, at most 10,000. */
  blocks?: number
  /** Seconds between the mined blocks' timestamps. */
  intervalS?: number
}

/** Mines blocks (`anvil_mine`). */
export const mine = define<'mine', MineBody>({
  kind: 'mine',
  summary: 'mines `blocks` blocks, `intervalS` apart',
  target: ['fork'],
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: { blocks: { type: 'integer', minimum: 1, maximum: 10_000 }, intervalS: { type: 'integer', minimum: 1, maximum: 86_400 } },
  },
  async run(ctx, body) {
    await mineBlocks(ctx.rpc, body.blocks ?? 1, body.intervalS)
  },
})
