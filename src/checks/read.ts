import type { AbiFunction, Address, Hex } from 'viem'
import { decodeFunctionResult, numberToHex, parseAbiItem } from '../util/evm.js'
import { calldata } from '../chain/views.js'
import { call } from '../targets/chain.js'
import type { Rpc } from '../targets/rpc.js'
import { RpcError } from '../targets/rpc.js'

/** Reads a view (`fn` with `returns`), at a block if given; returns its first output. */
export async function readView(rpc: Rpc, to: Address, fn: string, args: readonly unknown[] = [], block?: bigint): Promise<unknown> {
  const item = parseAbiItem(`function ${fn}`) as AbiFunction
  const out = await call(rpc, { to, data: calldata(fn, args) }, block === undefined ? 'latest' : numberToHex(block))
  const decoded = decodeFunctionResult(item, out)
  return Array.isArray(decoded) ? decoded[0] : decoded
}

export async function readUint(rpc: Rpc, to: Address, fn: string, args: readonly unknown[] = [], block?: bigint): Promise<bigint> {
  const value = await readView(rpc, to, fn, args, block)
  return typeof value === 'bigint' ? value : BigInt(value as number)
}

/** The revert reason of a call (decoded `Error(string)`), or `undefined` when it succeeds. */
export async function revertReason(rpc: Rpc, tx: { from?: Address; to: Address; data: Hex; gasPrice?: Hex }, block: Hex | 'latest' = 'latest') {
  try {
    await call(rpc, tx, block)
    return undefined
  } catch (error) {
    if (!(error instanceof RpcError)) throw error
    return decodeReason(error)
  }
}

export function decodeReason(error: RpcError): string {
  const data = typeof error.data === 'string' ? error.data : ''
  if (data.startsWith('0x08c379a0') && data.length >= 138) {
    const length = Number(BigInt(`0x${data.slice(74, 138)}`))
    return Buffer.from(data.slice(138, 138 + length * 2), 'hex').toString('utf8')
  }
  const m = /execution reverted:?\s*(.*)$/.exec(error.message.replace(/ \(code -?\d+\)$/, ''))
  return m?.[1]?.trim() || (data && data !== '0x' ? `custom error ${data.slice(0, 10)}` : 'no reason')
}

export const fmt = (v: bigint, decimals = 18) => {
  const s = v.toString().padStart(decimals + 1, '0')
  const whole = s.slice(0, -decimals)
  const frac = s.slice(-decimals).replace(/0+$/, '').slice(0, 6)
  return frac ? `${whole}.${frac}` : whole
}
