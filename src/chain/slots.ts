import type { Address, Hex } from 'viem'
import { numberToHex, pad } from '../util/evm.js'
import { InfraError } from '../errors.js'
import { call, getStorageAt, setStorageAt } from '../targets/chain.js'
import { type Rpc, RpcError } from '../targets/rpc.js'

/**
 * Generic storage-slot discovery: where in a contract's storage does the value that a view
 * returns live? Works on contracts the toolkit has never seen, with no hard-coded layouts:
 *
 * 1. `eth_createAccessList` on the view lists the slots it reads;
 * 2. each slot's raw word is searched, byte offset by byte offset, for the returned value as a
 *    bit field (packed slots, like a V2 pair's reserves, hold several);
 * 3. a candidate offset is confirmed, and the field's width found, by `eth_call`s with a state
 *    override that writes a marker into the slot: the field is as wide as the widest marker
 *    (its top bit set) that the view returns unchanged. The zero bytes around a value say nothing
 *    about where a field ends: a V2 pair's `reserve1` whose low bytes are zero would otherwise
 *    make `reserve0` look 128 bits wide, and a write with a carry would corrupt `reserve1`.
 */
export type StorageField = { address: Address; slot: Hex; offsetBits: number; widthBits: number }

const WORD = 256

export async function findStorageField(
  rpc: Rpc,
  view: { to: Address; data: Hex; outputWord: number; label: string },
): Promise<StorageField> {
  const output = await call(rpc, { to: view.to, data: view.data })
  const expected = wordAt(output, view.outputWord)
  const list = await rpc.request<{ accessList: { address: Address; storageKeys: Hex[] }[] }>('eth_createAccessList', [
    { to: view.to, data: view.data },
    'latest',
  ])
  const candidates = list.accessList
    .filter((entry) => entry.address.toLowerCase() === view.to.toLowerCase())
    .flatMap((entry) => entry.storageKeys)
  for (const slot of candidates) {
    const raw = BigInt(await getStorageAt(rpc, view.to, slot))
    const least = Math.max(8, Math.ceil(expected.toString(2).length / 8) * 8)
    for (let offsetBits = 0; offsetBits + least <= WORD; offsetBits += 8) {
      if (extract(raw, offsetBits, least) !== expected) continue
      const at = { address: view.to, slot: pad(slot, { size: 32 }), offsetBits }
      const widthBits = await probeWidth(rpc, view, at, raw, least)
      if (widthBits !== undefined) return { ...at, widthBits }
    }
  }
  throw new InfraError(`Could not find the storage field behind ${view.label}.`, {
    context: { Contract: view.to, 'Slots read by the call': candidates.length, Value: expected.toString() },
    hint: 'The value may be computed rather than stored, or live in another contract (a proxy\'s implementation reads its own storage, so the address is right; an external call is not).',
  })
}

/**
 * The width of the field at `at.offsetBits`, found by probing: a marker with bit `w - 1` set is
 * written there (the slot's other bits kept) and read back through the view. Widths up to the
 * field's own read back; wider ones put their top bit into the neighbour, which the view does not
 * return. The answer is monotone in `w`, so a binary search over byte widths takes ≤ 5 calls.
 * Undefined when even the narrowest width holding the value does not read back (not this field).
 */
async function probeWidth(
  rpc: Rpc,
  view: { to: Address; data: Hex; outputWord: number },
  at: { slot: Hex; offsetBits: number },
  raw: bigint,
  least: number,
): Promise<number | undefined> {
  const readsBack = async (widthBits: number) => {
    // Top bit set, low bits a pattern unlike the current value, so neither can pass by chance.
    const marker = (1n << BigInt(widthBits - 1)) | ((0x5a5a5a5a5a5a5a5an ^ (raw >> BigInt(at.offsetBits))) & ((1n << BigInt(Math.min(widthBits - 1, 64))) - 1n))
    const patched = insert(raw, at.offsetBits, widthBits, marker)
    try {
      const output = await call(rpc, { to: view.to, data: view.data }, 'latest', {
        [view.to]: { stateDiff: { [at.slot]: numberToHex(patched, { size: 32 }) } },
      })
      return wordAt(output, view.outputWord) === marker
    } catch {
      return false
    }
  }
  if (!(await readsBack(least))) return undefined
  let lo = least / 8 // bytes known to read back
  let hi = (WORD - at.offsetBits) / 8
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2)
    if (await readsBack(mid * 8)) lo = mid
    else hi = mid - 1
  }
  return lo * 8
}

export async function readField(rpc: Rpc, field: StorageField): Promise<bigint> {
  return extract(BigInt(await getStorageAt(rpc, field.address, field.slot)), field.offsetBits, field.widthBits)
}

/** Writes `value` into the field, keeping the slot's other bits. */
export async function writeField(rpc: Rpc, field: StorageField, value: bigint): Promise<void> {
  if (value < 0n || value >= 1n << BigInt(field.widthBits))
    throw new InfraError(`The value ${value} does not fit the ${field.widthBits}-bit storage field.`, {
      context: { Contract: field.address, Slot: field.slot },
    })
  const raw = BigInt(await getStorageAt(rpc, field.address, field.slot))
  await setStorageAt(rpc, field.address, field.slot, numberToHex(insert(raw, field.offsetBits, field.widthBits, value), { size: 32 }))
}

/**
 * Writes several fields in two round trips: one JSON-RPC batch reads their slots (with `extra`
 * calls beside them), one writes them; fields that share a slot become one write. `values` gets
 * the answers of `extra` and the fields' current values, and returns one value per field, in order.
 */
export async function writeFields(rpc: Rpc, fields: readonly StorageField[], values: (extra: unknown[], current: bigint[]) => bigint[], extra: readonly { method: string; params?: unknown[] }[] = []): Promise<void> {
  const reads = await rpc.batch([...extra, ...fields.map((f) => ({ method: 'eth_getStorageAt', params: [f.address, f.slot, 'latest'] }))])
  const failed = reads.find((r) => r instanceof RpcError)
  if (failed) throw failed
  const raws = fields.map((_, i) => BigInt(reads[extra.length + i] as Hex))
  const wanted = values(reads.slice(0, extra.length), fields.map((f, i) => extract(raws[i] as bigint, f.offsetBits, f.widthBits)))
  const writes = await rpc.batch(fieldWrites(fields, raws, wanted))
  const refused = writes.find((r) => r instanceof RpcError)
  if (refused) throw refused
}

/**
 * The `anvil_setStorageAt` calls that put `values` into `fields`, given each field's slot as
 * read (`raws`, in the fields' order): the slot's other bits kept, fields that share a slot one
 * write. Throws when a value does not fit its field.
 */
export function fieldWrites(fields: readonly StorageField[], raws: readonly bigint[], values: readonly bigint[]): { method: string; params: unknown[] }[] {
  const slots = new Map<string, { address: Address; slot: Hex; raw: bigint }>()
  fields.forEach((field, i) => {
    const value = values[i] as bigint
    if (value < 0n || value >= 1n << BigInt(field.widthBits))
      throw new InfraError(`The value ${value} does not fit the ${field.widthBits}-bit storage field.`, { context: { Contract: field.address, Slot: field.slot } })
    const key = `${field.address.toLowerCase()}/${field.slot}`
    const at = slots.get(key) ?? { address: field.address, slot: field.slot, raw: raws[i] as bigint }
    at.raw = insert(at.raw, field.offsetBits, field.widthBits, value)
    slots.set(key, at)
  })
  return [...slots.values()].map((w) => ({ method: 'anvil_setStorageAt', params: [w.address, w.slot, numberToHex(w.raw, { size: 32 })] }))
}

export function wordAt(data: Hex, index: number): bigint {
  const start = 2 + index * 64
  const word = data.slice(start, start + 64)
  if (word.length !== 64) throw new InfraError(`The call returned ${(data.length - 2) / 2} bytes; word ${index} is missing.`)
  return BigInt(`0x${word}`)
}

/** The field's bits of a slot's raw value. */
export function extract(raw: bigint, offsetBits: number, widthBits: number): bigint {
  return (raw >> BigInt(offsetBits)) & ((1n << BigInt(widthBits)) - 1n)
}

export function insert(raw: bigint, offsetBits: number, widthBits: number, value: bigint): bigint {
  const mask = ((1n << BigInt(widthBits)) - 1n) << BigInt(offsetBits)
  return (raw & ~mask & ((1n << 256n) - 1n)) | (value << BigInt(offsetBits))
}
