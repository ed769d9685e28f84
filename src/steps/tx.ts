import type { Address, Hex } from 'viem'
import { formatGwei } from '../util/evm.js'
import { decodeReason } from '../checks/read.js'
import { calldata } from '../chain/views.js'
import type { RunContext } from '../scenario/context.js'
import { addressOrName, expect, kind, text } from '../scenario/schema-parts.js'
import type { CheckKind, Expect, Phase } from '../scenario/types.js'
import type { StepRecord } from '../Step.js'
import { type Receipt, sendTransaction } from '../targets/chain.js'
import { RpcError } from '../targets/rpc.js'

/** What the steps that send a transaction share: the sender, and what the step must do. */
export type TxFields = { from?: string; expect?: Expect; reason?: string; kind?: CheckKind; label?: string }

export const txFieldsSchema = {
  from: addressOrName,
  expect,
  reason: { ...text, description: 'With expect: revert, the reason must contain this.' },
  kind,
  label: text,
}

/** Gas limit of every transaction a step sends. */
export const KEEPER_GAS = 3_000_000n

export function expectOf(c: { expect?: StepRecord['expect']; kind?: StepRecord['expectKind']; reason?: string }) {
  return {
    ...(c.expect ? { expect: c.expect } : {}),
    ...(c.kind ? { expectKind: c.kind } : {}),
    ...(c.reason ? { expectReason: c.reason } : {}),
  }
}

/**
 * One call of the protocol's keeper entry point, with the probe's views read right before and
 * right after it (the gas price in the same batch as the first read).
 */
export async function keeperCall(
  ctx: RunContext,
  from: Address,
  gasPrice: bigint | undefined,
  label: string,
  phase: Phase,
  /** A read of the caller's to take in the same batch as the views before (a stress walk's read-back); `check` throws to stop before the transaction. */
  alsoBefore?: { call: { method: string; params: unknown[] }; check(answer: unknown): void },
  /**
   * Reads of the caller's to take in the batch of the views after (the next stress cycle's): their
   * answers are put in `answers` (errors as `RpcError`), which stays unset when no views were read
   * after (the node refused the transaction).
   */
  alsoAfter?: { calls: readonly { method: string; params: unknown[] }[]; answers?: unknown[] },
): Promise<Omit<StepRecord, 't'>> {
  const to = ctx.resolve(ctx.protocol.vault, 'protocol.vault')
  const extra = [...(alsoBefore ? [alsoBefore.call] : []), ...(gasPrice === undefined ? [{ method: 'eth_gasPrice' }] : [])]
  const before = await ctx.probe.around(extra)
  if (alsoBefore) alsoBefore.check(before.extra[0])
  // A keeper pays the going price unless told otherwise; a gas spike shows up here.
  const price = gasPrice ?? BigInt(before.extra[alsoBefore ? 1 : 0] as Hex)
  const tx = { from, to, data: calldata(ctx.protocol.entry), gas: KEEPER_GAS, gasPrice: price }
  let receipt: Receipt
  try {
    receipt = await sendTransaction(ctx.rpc, tx)
  } catch (error) {
    // The node refused the transaction (e.g. a fork that cannot reach its upstream): the cycle
    // did not happen — a failed step of the system under test, not of the experiment.
    if (!(error instanceof RpcError)) throw error
    return { label, phase, type: 'cycle', ok: false, reason: `node refused the transaction: ${error.message.slice(0, 300)}`, before: before.views }
  }
  const ok = receipt.status === '0x1'
  // A reverted cycle's replay reads the same state as the views after it: one batch.
  const replay = ok ? [] : [{ method: 'eth_call', params: [replayCall(tx), 'latest'] }]
  const after = await ctx.probe.around([...replay, ...(alsoAfter?.calls ?? [])])
  if (alsoAfter) alsoAfter.answers = after.extra.slice(replay.length)
  const signals = ctx.probe.signalsIn(receipt)
  return {
    label,
    phase,
    type: 'cycle',
    ok,
    receipt,
    before: before.views,
    after: after.views,
    ...(signals.length ? { signals } : {}),
    ...(ok ? {} : { reason: replayText(after.extra[0], receipt) }),
  }
}

/**
 * Why a mined transaction reverted: replay it with eth_call on the latest state — a reverted
 * transaction changed nothing but the sender's nonce and balance, so that is its pre-state.
 */
export async function replayReason(ctx: RunContext, tx: { from: Address; to: Address; data: Hex; gasPrice?: bigint }, receipt: Receipt) {
  let answer: unknown
  try {
    answer = await ctx.rpc.request('eth_call', [replayCall(tx), 'latest'])
  } catch (error) {
    answer = error
  }
  return replayText(answer, receipt)
}

/** The `eth_call` that replays a transaction (its gas limit the keeper's). */
const replayCall = (tx: { from: Address; to: Address; data: Hex }) => ({ from: tx.from, to: tx.to, data: tx.data, gas: `0x${KEEPER_GAS.toString(16)}` })

/** A replay's answer (a result, or the error it threw) as the reason text of a reverted transaction. */
function replayText(answer: unknown, receipt: Receipt): string {
  if (answer instanceof RpcError) return decodeReason(answer)
  if (answer instanceof Error) return answer.message
  return `reverted at gas ${BigInt(receipt.gasUsed)} (no reason on replay; out of gas?) at ${formatGwei(BigInt(receipt.effectiveGasPrice))} gwei`
}
