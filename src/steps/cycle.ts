import { parseGwei } from '../util/evm.js'
import { define } from '../Step.js'
import { increaseTime } from '../targets/chain.js'
import { expectOf, keeperCall, type TxFields, txFieldsSchema } from './tx.js'

export type CycleBody = TxFields & {
  /** Cycles in a row; default 1, at most 100,000. */
  count?: number
  /** Gas price of each call, in gwei; default the node's `eth_gasPrice`. */
  gasPriceGwei?: number
  /** Seconds the chain's clock moves before each cycle; default 12. */
  intervalS?: number
}

/** The keeper entry point (`protocol.entry`), `count` times, `intervalS` apart. */
export const cycle = define<'cycle', CycleBody>({
  kind: 'cycle',
  summary: 'the keeper entry point, `count` times `intervalS` apart (`from`, `gasPriceGwei`, `expect`, `reason`)',
  target: ['fork'],
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      ...txFieldsSchema,
      count: { type: 'integer', minimum: 1, maximum: 100_000 },
      gasPriceGwei: { type: 'number', exclusiveMinimum: 0, maximum: 1_000_000 },
      intervalS: { type: 'integer', minimum: 0, maximum: 86_400 },
    },
  },
  names: (c, where) => (c.from ? [[c.from, `${where}.cycle.from`]] : []),
  async run(ctx, c, env) {
    const from = ctx.resolve(c.from ?? 'keeper', `${env.where}.cycle.from`)
    for (let i = 0; i < (c.count ?? 1); i++) {
      await env.beforeStep()
      if ((c.intervalS ?? 12) > 0) await increaseTime(ctx.rpc, c.intervalS ?? 12)
      const gasPrice = c.gasPriceGwei !== undefined ? parseGwei(String(c.gasPriceGwei)) : undefined
      const label = `${c.label ?? `${env.phase} cycle`}#${ctx.steps.filter((s) => s.type === 'cycle' && s.phase === env.phase).length + 1}`
      env.record({ ...(await keeperCall(ctx, from, gasPrice, label, env.phase)), ...expectOf(c) })
    }
  },
})
