import { toArg } from '../scenario/context.js'
import { addressOrName, limits, signature } from '../scenario/schema-parts.js'
import { callProblem, evaluateValue, type Value, valueNames, valueSchema } from '../scenario/values.js'
import { calldata } from '../chain/views.js'
import { define } from '../Step.js'
import type { RunContext } from '../scenario/context.js'
import { type Receipt, sendTransaction } from '../targets/chain.js'
import { RpcError } from '../targets/rpc.js'
import { expectOf, KEEPER_GAS, replayReason, type TxFields, txFieldsSchema } from './tx.js'

export type CallBody = TxFields & {
  /** The contract, by name or address. */
  to: string
  /** Its function, e.g. `deposit(uint256)`. */
  fn: string
  /** Constants or views read when the step runs (`{ view: "tradeId()", on: vault }`). */
  args?: Value[]
  /** Wei sent along, e.g. "1e18". */
  value?: string
}

/** The JSON Schema of a call's body (also a bundle's call). */
export const callSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['to', 'fn'],
  properties: {
    ...txFieldsSchema,
    to: addressOrName,
    fn: signature,
    args: { type: 'array', items: valueSchema(), maxItems: limits.args, description: 'Constants, or views read when the step runs.' },
    value: { type: 'string', maxLength: 100, description: 'Wei, e.g. "1e18".' },
  },
}

/** The names a call uses, with their fields. */
export const callNames = (c: CallBody, where: string): [string, string][] => [
  [c.to, `${where}.to`],
  ...(c.from ? [[c.from, `${where}.from`] as [string, string]] : []),
  ...(c.args ?? []).flatMap((a, i) => valueNames(a, `${where}.args[${i}]`)),
]

/** A call's transaction, its arguments evaluated now (views read at the latest block). */
export async function callTx(ctx: RunContext, c: CallBody, where: string) {
  const to = ctx.resolve(c.to, `${where}.to`)
  const from = ctx.resolve(c.from ?? 'deployer', `${where}.from`)
  const values: unknown[] = []
  for (const [i, a] of (c.args ?? []).entries()) values.push(await evaluateValue(ctx, a, `${where}.args[${i}]`))
  const data = calldata(c.fn, values)
  return { from, to, data, gas: KEEPER_GAS, ...(c.value ? { value: toArg(c.value, ctx.resolve, `${where}.value`) as bigint } : {}) }
}

/** Any contract function, sent as a transaction (default sender `deployer`); by default it must succeed. */
export const call = define<'call', CallBody>({
  kind: 'call',
  summary: 'any contract function as a transaction (`to`, `fn`, `args` — constants or views —, `value`, `from`, `expect`, `reason`)',
  target: ['fork'],
  schema: callSchema,
  names: (c, where) => callNames(c, `${where}.call`),
  // Arity and argument types against the signature, at load (a mismatch was an ABI encoding error at run time).
  requires: (c, _target, where) => callProblem(c.fn, c.args ?? [], `${where}.call.fn`, `${where}.call.args`),
  async run(ctx, c, env) {
    const where = env.where
    await env.beforeStep()
    const tx = await callTx(ctx, c, `${where}.call`)
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
