import { type Address, type Hex, numberToHex, pad } from 'viem'
import { InfraError } from '../errors.js'
import { call, getStorageAt, setStorageAt } from '../targets/chain.js'
import type { Rpc } from '../targets/rpc.js'

/**
 * Generic storage-slot discovery: where in a contract's storage does the value that a view
 * returns live? Works on contracts the toolkit has never seen, with no hard-coded layouts:
 *
 * 1. `eth_createAccessList` on the view lists the slots it reads;
 * 2. each slot's raw word is searched for the returned value as a bit field (packed slots,
 *    like a V2 pair's reserves, hold several);
 * 3. a candidate is confirmed by an `eth_call` with a state override that writes a marker into
 *    the field: only if the view then returns the marker is the field the one.
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
    for (let offsetBits = 0; offsetBits < WORD; offsetBits += 8) {
      // The widest field at this offset that holds exactly the value: a write of a larger value
      // then still fits the field.
      for (let widthBits = WORD - offsetBits; widthBits >= 8; widthBits -= 8) {
        if (extract(raw, offsetBits, widthBits) !== expected) continue
        const field = { address: view.to, slot: pad(slot, { size: 32 }), offsetBits, widthBits }
        if (await confirms(rpc, view, field, raw, expected)) return field
        break
      }
    }
  }
  throw new InfraError(`Could not find the storage field behind ${view.label}.`, {
    context: { Contract: view.to, 'Slots read by the call': candidates.length, Value: expected.toString() },
    hint: 'The value may be computed rather than stored, or live in another contract (a proxy\'s implementation reads its own storage, so the address is right; an external call is not).',
  })
}

async function confirms(
  rpc: Rpc,
  view: { to: Address; data: Hex; outputWord: number },
  field: StorageField,
  raw: bigint,
  expected: bigint,
): Promise<boolean> {
  const mask = (1n << BigInt(Math.min(field.widthBits, 64))) - 1n
  const marker = (expected ^ 0x5a5a5a5a5a5an) & mask || 1n
  const patched = insert(raw, field.offsetBits, field.widthBits, marker)
  try {
    const output = await call(rpc, { to: view.to, data: view.data }, 'latest', {
      [view.to]: { stateDiff: { [field.slot]: numberToHex(patched, { size: 32 }) } },
    })
    return wordAt(output, view.outputWord) === marker
  } catch {
    return false
  }
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

export function wordAt(data: Hex, index: number): bigint {
  const start = 2 + index * 64
  const word = data.slice(start, start + 64)
  if (word.length !== 64) throw new InfraError(`The call returned ${(data.length - 2) / 2} bytes; word ${index} is missing.`)
  return BigInt(`0x${word}`)
}

function extract(raw: bigint, offsetBits: number, widthBits: number): bigint {
  return (raw >> BigInt(offsetBits)) & ((1n << BigInt(widthBits)) - 1n)
}

function insert(raw: bigint, offsetBits: number, widthBits: number, value: bigint): bigint {
  const mask = ((1n << BigInt(widthBits)) - 1n) << BigInt(offsetBits)
  return (raw & ~mask & ((1n << 256n) - 1n)) | (value << BigInt(offsetBits))
}
