import type { Address, Hex } from 'viem'
import { numberToHex } from '../util/evm.js'
import { type Rpc, RpcError } from './rpc.js'

/**
 * Chain operations as free functions `(rpc, params)`. All of them are cheat methods or plain
 * reads; the `Rpc` refuses cheat methods on endpoints the toolkit did not start.
 */

/** Takes an Anvil snapshot. Anvil's revert is single-use: take a new one after each revert. */
export const snapshot = (rpc: Rpc) => rpc.request<Hex>('evm_snapshot')

/** Reverts to `id`; throws when Anvil no longer knows it. */
export async function revertTo(rpc: Rpc, id: Hex): Promise<void> {
  const ok = await rpc.request<boolean>('evm_revert', [id])
  if (!ok) throw new Error(`evm_revert(${id}) returned false: the snapshot is gone (Anvil snapshots are single-use)`)
}

export const mine = (rpc: Rpc, blocks = 1, intervalS?: number) =>
  rpc.request('anvil_mine', intervalS === undefined ? [numberToHex(blocks)] : [numberToHex(blocks), numberToHex(intervalS)])

export const setStorageAt = (rpc: Rpc, address: Address, slot: Hex, value: Hex) =>
  rpc.request('anvil_setStorageAt', [address, slot, value])

export const getStorageAt = (rpc: Rpc, address: Address, slot: Hex) =>
  rpc.request<Hex>('eth_getStorageAt', [address, slot, 'latest'])

export const setCode = (rpc: Rpc, address: Address, code: Hex) => rpc.request('anvil_setCode', [address, code])

export const getCode = (rpc: Rpc, address: Address) => rpc.request<Hex>('eth_getCode', [address, 'latest'])

/**
 * Sends writes that commute (each to a different slot, code or account field) in one JSON-RPC
 * batch, and throws the first refusal. Never mix in reads, nor two writes to one place: a batch's
 * calls carry no order.
 */
export async function writeAll(rpc: Rpc, writes: readonly { method: string; params: readonly unknown[] }[]): Promise<void> {
  const keys = new Set(writes.map((w) => `${w.method === 'anvil_setCode' ? 'code' : w.method}:${JSON.stringify(w.params.slice(0, w.method === 'anvil_setStorageAt' ? 2 : 1)).toLowerCase()}`))
  if (keys.size !== writes.length) throw new Error('writeAll: two writes to the same place do not commute; send them in turn')
  const answers = await rpc.batch(writes)
  const refused = answers.find((a) => a instanceof RpcError)
  if (refused) throw refused
}

export const setStorageWrite = (address: Address, slot: Hex, value: Hex) => ({ method: 'anvil_setStorageAt', params: [address, slot, value] })
export const setCodeWrite = (address: Address, code: Hex) => ({ method: 'anvil_setCode', params: [address, code] })

export const setBalance = (rpc: Rpc, address: Address, wei: bigint) =>
  rpc.request('anvil_setBalance', [address, numberToHex(wei)])

export const increaseTime = (rpc: Rpc, seconds: number) => rpc.request('evm_increaseTime', [numberToHex(seconds)])

export const setNextBlockBaseFee = (rpc: Rpc, wei: bigint) =>
  rpc.request('anvil_setNextBlockBaseFeePerGas', [numberToHex(wei)])

export const setMinGasPrice = (rpc: Rpc, wei: bigint) => rpc.request('anvil_setMinGasPrice', [numberToHex(wei)])

export type Block = {
  number: Hex
  hash: Hex
  parentHash: Hex
  timestamp: Hex
  baseFeePerGas?: Hex
  transactions: Hex[]
}

export const getBlock = (rpc: Rpc, tag: 'latest' | Hex = 'latest') =>
  rpc.request<Block>('eth_getBlockByNumber', [tag, false])

export async function blockNumber(rpc: Rpc): Promise<bigint> {
  return BigInt(await rpc.request<Hex>('eth_blockNumber'))
}

export type Receipt = {
  transactionHash: Hex
  contractAddress?: Address | null
  blockNumber: Hex
  status: Hex
  gasUsed: Hex
  effectiveGasPrice: Hex
  logs: { address: Address; topics: Hex[]; data: Hex }[]
}

export type TxRequest = { from: Address; to: Address; data: Hex; value?: bigint; gas?: bigint; gasPrice?: bigint }

/**
 * Sends a transaction from an unlocked or impersonated account and returns its receipt in the
 * same round trip (`eth_sendTransactionSync`, EIP-7966, which Anvil serves): no client-side
 * receipt polling. An explicit `gas` skips estimation so a reverting call is mined (status 0)
 * instead of refused, which is what a keeper bot's transaction would do.
 */
export async function sendTransaction(rpc: Rpc, tx: TxRequest): Promise<Receipt> {
  return rpc.request<Receipt>('eth_sendTransactionSync', [
    {
      from: tx.from,
      to: tx.to,
      data: tx.data,
      ...(tx.value !== undefined ? { value: numberToHex(tx.value) } : {}),
      gas: numberToHex(tx.gas ?? 5_000_000n),
      ...(tx.gasPrice !== undefined ? { gasPrice: numberToHex(tx.gasPrice) } : {}),
    },
  ])
}

/** `eth_call` at a block (default latest), with optional state overrides; `gasPrice` for code that reads `tx.gasprice` (0 otherwise). */
export const call = (
  rpc: Rpc,
  tx: { to: Address; data: Hex; from?: Address; gasPrice?: Hex },
  block: Hex | 'latest' = 'latest',
  overrides?: Record<string, { stateDiff?: Record<Hex, Hex>; code?: Hex }>,
) => rpc.request<Hex>('eth_call', overrides ? [tx, block, overrides] : [tx, block])
