import { toArg } from '../scenario/context.js'
import { addressOrName, args, signature } from '../scenario/schema-parts.js'
import type { Scalar } from '../scenario/types.js'
import { calldata } from '../chain/views.js'
import { define } from '../Step.js'
import { type Receipt, sendTransaction } from '../targets/chain.js'
import { RpcError } from '../targets/rpc.js'
import { expectOf, KEEPER_GAS, replayReason, type TxFields, txFieldsSchema } from './tx.js'

export type CallBody = TxFields & {
  /** The contract, by name or address. */
  to: string
  /** Its function, e.g. `deposit(uint256)`. */
  fn: string
  args?: Scalar[]
  /** Wei sent along, e.g. "1e18". */
  value?: string
}

/** Any contract function, sent as a transaction (default sender `deployer`); by default it must succeed. */
export const call = define<'call', CallBody>({
  kind: 'call',
  summary: 'any contract function as a transaction (`to`, `fn`, `args`, `value`, `from`, `expect`, `reason`)',
  target: ['fork'],
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['to', 'fn'],
    properties: { ...txFieldsSchema, to: addressOrName, fn: signature, args, value: { type: 'string', maxLength: 100, description: 'Wei, e.g. "1e18".' } },
  },
  names: (c, where) => [[c.to, `${where}.call.to`], ...(c.from ? [[c.from, `${where}.call.from`] as [string, string]] : [])],
  async run(ctx, c, env) {
    const where = env.where
    await env.beforeStep()
    const to = ctx.resolve(c.to, `${where}.call.to`)
    const from = ctx.resolve(c.from ?? 'deployer', `${where}.call.from`)
    const values = (c.args ?? []).map((a, i) => toArg(a, ctx.resolve, `${where}.call.args[${i}]`))
    const data = calldata(c.fn, values)
    const tx = { from, to, data, gas: KEEPER_GAS, ...(c.value ? { value: toArg(c.value, ctx.resolve, `${where}.call.value`) as bigint } : {}) }
    const label = c.label ?? `${c.to}.${c.fn.split('(')[0]}`
    const expected = expectOf({ expect: c.expect ?? 'success', ...(c.kind ? { kind: c.kind } : {}), ...(c.reason ? { reason: c.reason } : {}) })
    let receipt: Receipt
    try {
      receipt = await sendTransaction(ctx.rpc, tx)
    } catch (error) {
      if (!(error instanceof RpcError)) throw error
      env.record({ label, phase: env.phase, type: 'call', ok: false, reason: `node refused the transaction: ${error.message.slice(0, 300)}`, ...expected })
      return
    }
    const ok = receipt.status === '0x1'
    env.record({ label, phase: env.phase, type: 'call', ok, receipt, ...(ok ? {} : { reason: await replayReason(ctx, tx, receipt) }), ...expected })
  },
})
