import type { AbiFunction, Address, Hex } from 'viem'
import { encodeFunctionData, parseAbiItem } from '../util/evm.js'
import { call, getBlock } from '../targets/chain.js'
import type { Rpc } from '../targets/rpc.js'
import { wordAt } from './slots.js'

/** Calldata for a human-readable signature such as `balanceOf(address)`. */
export function calldata(signature: string, args: readonly unknown[] = []): Hex {
  const item = parseAbiItem(`function ${signature}`) as AbiFunction
  return encodeFunctionData(item, args)
}

/** Reads one 32-byte word of a view's answer; `undefined` when the call reverts. */
export async function tryWord(rpc: Rpc, to: Address, signature: string, args: readonly unknown[] = [], index = 0) {
  try {
    return wordAt(await call(rpc, { to, data: calldata(signature, args) }), index)
  } catch {
    return undefined
  }
}

export async function latestTimestamp(rpc: Rpc): Promise<bigint> {
  return BigInt((await getBlock(rpc)).timestamp)
}

/** Applies a signed basis-point move: `value × (1 ± bps/10 000)`. */
export const moveBps = (value: bigint, bps: number, direction: 'up' | 'down') =>
  (value * BigInt(10_000 + (direction === 'up' ? 1 : -1) * Math.round(bps))) / 10_000n
