/**
 * keccak-256 and the hex ↔ bytes conversions around it, on `ox/Hash` alone (20 modules, against
 * ~50 for all of `src/util/evm.ts`): what the devnet's consensus node needs, so its start-up does
 * not open `ox`'s ABI and address modules and `abitype`. `src/util/evm.ts` re-exports these.
 */
import * as Bytes from 'ox/Bytes'
import * as Hash from 'ox/Hash'
import * as OxHex from 'ox/Hex'

type Hex = `0x${string}`

/** keccak-256 of hex or bytes, as hex. */
export const keccak256 = (value: Hex | Uint8Array): Hex => Hash.keccak256(value, { as: 'Hex' })
export const stringToBytes = (value: string): Uint8Array => Bytes.fromString(value)
export const bytesToHex = (value: Uint8Array): Hex => OxHex.fromBytes(value)
export const hexToBytes = (value: Hex): Uint8Array => Bytes.fromHex(value)
