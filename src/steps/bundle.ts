import type { Hex } from 'viem'
import { formatGwei, numberToHex, parseGwei } from '../util/evm.js'
import { calldata } from '../chain/views.js'
import { callProblem } from '../scenario/values.js'
import { addressOrName } from '../scenario/schema-parts.js'
import { define, type StepRecord } from '../Step.js'
import type { Receipt } from '../targets/chain.js'
import { RpcError } from '../targets/rpc.js'
import { type CallBody, callNames, callSchema, callTx } from './call.js'
import { expectOf, KEEPER_GAS, txFieldsSchema, type TxFields } from './tx.js'

/** A bundle's keeper call: the entry point once (no `count`, no clock move: the bundle is one block). */
export type BundleCycle = TxFields & { gasPriceGwei?: number }
export type BundleItem = { call: CallBody } | { cycle: BundleCycle }
export type BundleBody = BundleItem[]

/** Transactions in one bundle. */
export const maxBundleItems = 16

/**
 * Calls mined in ONE block, in the order given — a sandwich (swap in, the victim's call, swap
 * back) or any same-block manipulation. Automine is switched off, each transaction is sent (all at
 * one gas price, so the node's fee ordering keeps them in order), one block is mined, and automine
 * is switched back on whatever happens. Each call is recorded as a step of its own with its
 * receipt and the block it landed in; one that reverts is recorded with its reason (from the
 * trace: a replay on the state after the block would not be its pre-state), not thrown away.
 * Arguments that are views are read before the bundle. A cycle's views are read around the
 * whole bundle.
 */
export const bundle = define<'bundle', BundleBody>({
  kind: 'bundle',
  summary: `up to ${maxBundleItems} calls (\`call\` or \`cycle\`) mined in one block, in order, each recorded with its receipt (sandwiches)`,
  target: ['fork'],
  schema: {
    type: 'array',
    minItems: 1,
    maxItems: maxBundleItems,
    items: {
      oneOf: [
        { type: 'object', additionalProperties: false, required: ['call'], properties: { call: callSchema } },
        {
          type: 'object',
          additionalProperties: false,
          required: ['cycle'],
          properties: {
            cycle: { type: 'object', additionalProperties: false, properties: { ...txFieldsSchema, from: addressOrName, gasPriceGwei: { type: 'number', exclusiveMinimum: 0, maximum: 1_000_000 } } },
          },
        },
      ],
    },
  },
  names: (items, where) =>
    items.flatMap((item, i) =>
      'call' in item ? callNames(item.call, `${where}.bundle[${i}].call`) : item.cycle.from ? [[item.cycle.from, `${where}.bundle[${i}].cycle.from`] as [string, string]] : [],
    ),
  requires: (items, _target, where) => {
    for (const [i, item] of items.entries()) {
      if (!('call' in item)) continue
      const problem = callProblem(item.call.fn, item.call.args ?? [], `${where}.bundle[${i}].call.fn`, `${where}.bundle[${i}].call.args`)
      if (problem) return problem
    }
    const prices = new Set(items.map((item) => ('call' in item ? undefined : item.cycle.gasPriceGwei)).filter((p) => p !== undefined))
    if (prices.size > 1) return { message: `\`${where}.bundle\` gives its cycles different \`gasPriceGwei\`; a bundle's transactions share one gas price (the node orders by fee).`, field: `${where}.bundle` }
    return undefined
  },
  async run(ctx, items, env) {
    const where = env.where
    await env.beforeStep()
    const vault = ctx.resolve(ctx.protocol.vault, 'protocol.vault')
    const hasCycle = items.some((item) => 'cycle' in item)
    const before = await ctx.probe.around([{ method: 'eth_gasPrice' }])
    const fixed = items.map((item) => ('cycle' in item ? item.cycle.gasPriceGwei : undefined)).find((p) => p !== undefined)
    const gasPrice = fixed !== undefined ? parseGwei(String(fixed)) : BigInt(before.extra[0] as Hex)
    const cycleCount = ctx.steps.filter((s) => s.type === 'cycle' && s.phase === env.phase).length
    const planned: { tx: Awaited<ReturnType<typeof callTx>>; type: 'call' | 'cycle'; label: string; expected: ReturnType<typeof expectOf> }[] = []
    for (const [i, item] of items.entries()) {
      const at = `${where}.bundle[${i}]`
      if ('call' in item) {
        const c = item.call
        planned.push({
          tx: await callTx(ctx, c, `${at}.call`),
          type: 'call' as const,
          label: c.label ?? `${c.to}.${c.fn.split('(')[0]}`,
          expected: expectOf({ expect: c.expect ?? 'success', ...(c.kind ? { kind: c.kind } : {}), ...(c.reason ? { reason: c.reason } : {}) }),
        })
      } else {
        const c = item.cycle
        const n: number = cycleCount + planned.filter((p) => p.type === 'cycle').length + 1
        planned.push({
          tx: { from: ctx.resolve(c.from ?? 'keeper', `${at}.cycle.from`), to: vault, data: calldata(ctx.protocol.entry), gas: KEEPER_GAS },
          type: 'cycle' as const,
          label: `${c.label ?? `${env.phase} cycle`}#${n}`,
          expected: expectOf(c),
        })
      }
    }
    // Sent in order with automine off, mined as one block; automine back on on every path.
    const sent: (Hex | RpcError)[] = []
    await ctx.rpc.request('evm_setAutomine', [false])
    try {
      for (const p of planned) {
        try {
          sent.push(
            await ctx.rpc.request<Hex>('eth_sendTransaction', [
              { from: p.tx.from, to: p.tx.to, data: p.tx.data, gas: numberToHex(p.tx.gas), gasPrice: numberToHex(gasPrice), ...('value' in p.tx && p.tx.value !== undefined ? { value: numberToHex(p.tx.value) } : {}) },
            ]),
          )
        } catch (error) {
          if (!(error instanceof RpcError)) throw error
          sent.push(error)
        }
      }
      await ctx.rpc.request('evm_mine', [])
    } finally {
      await ctx.rpc.request('evm_setAutomine', [true])
    }
    const receipts = await Promise.all(sent.map((h) => (typeof h === 'string' ? ctx.rpc.request<Receipt | null>('eth_getTransactionReceipt', [h]) : Promise.resolve(null))))
    const after = hasCycle ? await ctx.probe.around() : undefined
    const mined = receipts.filter((r): r is Receipt => r !== null)
    const block = mined[0] ? BigInt(mined[0].blockNumber) : -1n
    let lastIndex = -1
    for (const [i, p] of planned.entries()) {
      const receipt = receipts[i]
      const answer = sent[i]
      const base = { label: p.label, phase: env.phase, type: p.type, ...p.expected, ...(p.type === 'cycle' ? { before: before.views, ...(after ? { after: after.views } : {}) } : {}) }
      if (!receipt) {
        const why = answer instanceof RpcError ? `node refused the transaction: ${answer.message.slice(0, 300)}` : 'not mined in the bundle block'
        env.record({ ...base, ok: false, reason: why } as Omit<StepRecord, 't'>)
        continue
      }
      const index = Number(BigInt((receipt as Receipt & { transactionIndex?: Hex }).transactionIndex ?? '0x0'))
      const inOrder = BigInt(receipt.blockNumber) === block && index > lastIndex
      lastIndex = index
      const ok = receipt.status === '0x1' && inOrder
      const reason = !inOrder
        ? `mined out of the bundle's order or block (block ${BigInt(receipt.blockNumber)}, index ${index})`
        : receipt.status === '0x1'
          ? undefined
          : await traceReason(ctx.rpc, receipt, gasPrice)
      const signals = p.type === 'cycle' ? ctx.probe.signalsIn(receipt) : []
      env.record({ ...base, ok, receipt, bundle: { block, index, of: planned.length }, ...(signals.length ? { signals } : {}), ...(reason ? { reason } : {}) } as Omit<StepRecord, 't'>)
    }
  },
})

/** A reverted bundle transaction's reason, from its call trace (its pre-state is inside the block). */
async function traceReason(rpc: { request<T>(m: string, p?: readonly unknown[]): Promise<T> }, receipt: Receipt, gasPrice: bigint): Promise<string> {
  try {
    const frame = await rpc.request<{ error?: string; revertReason?: string }>('debug_traceTransaction', [receipt.transactionHash, { tracer: 'callTracer' }])
    return frame.revertReason ?? frame.error ?? 'no reason'
  } catch {
    return `reverted at gas ${BigInt(receipt.gasUsed)} at ${formatGwei(gasPrice)} gwei (no trace)`
  }
}
