/**
 * The hex, hash, address, unit and ABI helpers that the scenario loader's import graph uses, on
 * `ox` subpaths and `abitype` (viem's own dependencies, at the versions viem pins). viem's root
 * opens ~360 module files (0.25 s of CPU on an idle core, 0.8 s at load 10), and every fault,
 * check and step module is opened by `forkchaos validate`; these subpaths open ~60. Names and
 * results are viem's, so a caller reads as it did with `from 'viem'`.
 */
import * as AbiEvent from 'ox/AbiEvent'
import * as AbiFunction from 'ox/AbiFunction'
import * as AbiParameters from 'ox/AbiParameters'
import * as OxAddress from 'ox/Address'
import * as OxHex from 'ox/Hex'
import * as Rlp from 'ox/Rlp'
import * as Value from 'ox/Value'
import type { AbiEvent as AbiEventType, AbiFunction as AbiFunctionType, AbiParameter, Address } from 'abitype'

export { parseAbiItem } from 'abitype'
export { bytesToHex, hexToBytes, keccak256, stringToBytes } from './hash.js'

type Hex = `0x${string}`
type RecursiveArray<T> = T | readonly RecursiveArray<T>[]

/** `value` as a quantity (`0x1a`), or `size` bytes wide (`{ size: 32 }`); throws if it does not fit. */
export const numberToHex = (value: number | bigint, options: { size?: number } = {}): Hex => OxHex.fromNumber(value, options.size === undefined ? {} : { size: options.size })

/** `value` padded to `size` bytes (default 32), on the left unless `dir: 'right'`. */
export function pad(value: Hex, options: { size?: number; dir?: 'left' | 'right' } = {}): Hex {
  const size = options.size ?? 32
  return options.dir === 'right' ? OxHex.padRight(value, size) : OxHex.padLeft(value, size)
}

/** A UTF-8 string, a number or bytes as hex (viem's `toHex` for the kinds used here). */
export function toHex(value: string | number | bigint | Uint8Array): Hex {
  if (typeof value === 'string') return OxHex.fromString(value)
  if (value instanceof Uint8Array) return OxHex.fromBytes(value)
  return OxHex.fromNumber(value)
}

export const stringToHex = (value: string): Hex => OxHex.fromString(value)

/** Whether `value` is `0x` followed by hex digits (an even count not required). */
export const isHex = (value: unknown): value is Hex => OxHex.validate(value, { strict: true })

/** RLP of nested lists of hex or bytes, as hex. */
export const toRlp = (value: RecursiveArray<Hex | Uint8Array>): Hex => Rlp.from(value as never, { as: 'Hex' })

/** The checksummed form of an address; throws on anything that is not 20 bytes of hex. */
export const getAddress = (value: string): Address => OxAddress.checksum(value as Address)

/** Whether `value` is an address: 20 bytes of hex, and a mixed-case one must carry a valid checksum. */
// The same few addresses are checked on every step of every episode, and a checksum costs a keccak.
const validAddresses = new Map<string, boolean>()
export const isAddress = (value: string): value is Address => {
  let ok = validAddresses.get(value)
  if (ok === undefined) {
    ok = OxAddress.validate(value)
    if (validAddresses.size >= 4096) validAddresses.clear()
    validAddresses.set(value, ok)
  }
  return ok
}

/** `"1.5"` gwei → wei. */
export const parseGwei = (gwei: string): bigint => Value.fromGwei(gwei)
/** wei → gwei as a decimal string (`1500000000n` → `"1.5"`). */
export const formatGwei = (wei: bigint): string => Value.formatGwei(wei)

/** The topic of an event (keccak of its canonical signature). */
export const toEventSelector = (event: AbiEventType): Hex => AbiEvent.getSelector(event)

/** The 4-byte selector of a function signature such as `transfer(address to, uint256)`. */
export const toFunctionSelector = (signature: string): Hex => AbiFunction.getSelector(AbiFunction.from(`function ${signature}` as never))

/** Calldata: the function's selector and its ABI-encoded arguments (a mixed-case address must carry a valid checksum, as in viem). */
export const encodeFunctionData = (fn: AbiFunctionType, args: readonly unknown[] = []): Hex =>
  args.length > 0 ? OxHex.concat(AbiFunction.getSelector(fn as never), encodeAbiParameters(fn.inputs, args)) : AbiFunction.getSelector(fn as never)

/** A call's answer decoded by the function's outputs (addresses checksummed): one output as its value, several as an array. */
export function decodeFunctionResult(fn: AbiFunctionType, data: Hex): unknown {
  const values = AbiParameters.decode(fn.outputs, data, { checksumAddress: true }) as unknown[]
  return values.length === 1 ? values[0] : values
}

/** ABI-encoded values (`abi.encode`); a mixed-case address must carry a valid checksum, as in viem. */
export const encodeAbiParameters = (params: readonly AbiParameter[], values: readonly unknown[]): Hex => AbiParameters.encode(params, values as never, { checksumAddress: true })

/**
 * A log decoded by its (non-anonymous) event, as viem's strict `decodeEventLog` does: the first
 * topic must be the event's selector, every indexed input needs its topic (a string, bytes,
 * tuple or array one is its hash, as logged), the non-indexed ones come from `data`; arguments
 * by name, or by position when an input has none; addresses checksummed.
 */
export function decodeEventLog(event: AbiEventType, log: { data: Hex; topics: readonly Hex[] }): { eventName: string; args: unknown } {
  const [selector, ...argTopics] = log.topics
  if (selector !== toEventSelector(event)) throw new EventLogError(`the log's first topic (${selector ?? 'none'}) is not the selector of the event \`${event.name}\``)
  const unnamed = event.inputs.some((input) => !input.name)
  const args = (unnamed ? [] : {}) as Record<string | number, unknown>
  const indexed = event.inputs.flatMap((input, i) => ('indexed' in input && input.indexed ? [{ input, i }] : []))
  indexed.forEach(({ input, i }, n) => {
    const topic = argTopics[n]
    if (topic === undefined) throw new EventLogError(`the log has no topic for the indexed input \`${input.name ?? i}\` of \`${event.name}\``)
    const hashed = input.type === 'string' || input.type === 'bytes' || input.type === 'tuple' || /\[\d*\]$/.test(input.type)
    args[unnamed ? i : (input.name as string)] = hashed ? topic : (AbiParameters.decode([input], topic, { checksumAddress: true }) as readonly unknown[])[0]
  })
  const rest = event.inputs.flatMap((input, i) => ('indexed' in input && input.indexed ? [] : [{ input, i }]))
  if (rest.length > 0) {
    if (!log.data || log.data === '0x') throw new EventLogError(`the log has no data for the ${rest.length} non-indexed inputs of \`${event.name}\``)
    const values = AbiParameters.decode(
      rest.map((r) => r.input),
      log.data,
      { checksumAddress: true },
    ) as readonly unknown[]
    rest.forEach(({ input, i }, n) => {
      args[unnamed ? i : (input.name as string)] = values[n]
    })
  }
  return { eventName: event.name, args: Object.keys(args).length > 0 ? args : undefined }
}

/** A log that does not match the event it is decoded by. */
export class EventLogError extends Error {
  override name = 'EventLogError'
}
