import { invert } from '@noble/curves/abstract/modular'
import { secp256k1 } from '@noble/curves/secp256k1'
import { bytesToHex, hexToBytes, keccak256, stringToBytes } from '../../util/hash.js'
import type { Hex, Payload, Proposal, Vote, VoteType } from './types.js'

/**
 * Signatures of consensus messages: secp256k1 over keccak256 of a domain-separated text, 65
 * bytes `r ‖ s ‖ v`, checked by recovering the signer's address and comparing it with the
 * validator's. Noble's curve is synchronous and signs in ~0.5 ms / recovers in ~1.2 ms, and
 * recoveries are cached, so a node checks a slot's ~10 messages in a few ms.
 *
 * A validator's messages are checked against its public key once one of them has recovered to
 * its address (`signedBy`): the key is pinned with a table of its multiples, and a check is the
 * recovery's equation solved the other way round — the point R' = z/s·G + r/s·P must be the
 * signature's R, x = r with the parity `v` names — about 86 table additions instead of a
 * square root and a variable-base multiplication. It accepts exactly the signatures recovery
 * accepts (recovery gives P ⇔ s·R = z·G + r·P ⇔ R = R'), `v` included.
 */

const valueIds = new WeakMap<Payload, Hex>()

/**
 * Canonical bytes of a payload: a fixed-order JSON array of its lowercase fields, plus the
 * execution envelope where there is one (Engine API devnets), so that a signature also binds
 * what a peer's execution client is given. Without an envelope (Anvil) the bytes are as before.
 */
export function encodePayload(p: Payload): string {
  const fields: unknown[] = [
    p.number,
    p.parentHash,
    p.timestampS,
    p.feeRecipient,
    p.transactions,
    p.blockHash,
    p.stateRoot,
    p.receiptsRoot,
  ]
  if (p.execution) fields.push(p.execution)
  return JSON.stringify(fields)
}

/**
 * What votes name: keccak256 of the canonical payload. It binds every field, so two payloads
 * that differ only in a lying `stateRoot` are two different values.
 */
export function valueIdOf(p: Payload): Hex {
  let id = valueIds.get(p)
  if (id === undefined) {
    id = keccak256(stringToBytes(encodePayload(p)))
    valueIds.set(p, id)
  }
  return id
}

export function voteDigest(chainId: number, v: { type: VoteType; height: number; round: number; value: Hex | null }): Hex {
  return keccak256(stringToBytes(`forkchaos/vote/${chainId}/${v.type}/${v.height}/${v.round}/${v.value ?? 'nil'}`))
}

export function proposalDigest(
  chainId: number,
  p: { height: number; round: number; polRound: number; payload: Payload },
): Hex {
  return keccak256(
    stringToBytes(`forkchaos/proposal/${chainId}/${p.height}/${p.round}/${p.polRound}/${valueIdOf(p.payload)}`),
  )
}

export function sign(digest: Hex, privateKey: Hex): Hex {
  const sig = secp256k1.sign(hexToBytes(digest), hexToBytes(privateKey))
  const out = new Uint8Array(65)
  out.set(sig.toCompactRawBytes(), 0)
  out[64] = 27 + sig.recovery
  return bytesToHex(out)
}

const recovered = new Map<string, Hex | null>()
const maxCachedRecoveries = 20_000

/** The lowercase address that signed `digest`, or null for a malformed signature. Cached. */
export function recoverSigner(digest: Hex, signature: Hex): Hex | null {
  const key = digest + signature
  const hit = recovered.get(key)
  if (hit !== undefined) return hit
  let address: Hex | null = null
  try {
    const bytes = hexToBytes(signature)
    if (bytes.length === 65) {
      const v = bytes[64] as number
      const recovery = v >= 27 ? v - 27 : v
      if (recovery === 0 || recovery === 1) {
        const point = secp256k1.Signature.fromCompact(bytes.subarray(0, 64))
          .addRecoveryBit(recovery)
          .recoverPublicKey(hexToBytes(digest))
        address = `0x${keccak256(point.toRawBytes(false).subarray(1)).slice(-40)}`
      }
    }
  } catch {
    address = null
  }
  if (recovered.size >= maxCachedRecoveries) recovered.clear()
  recovered.set(key, address)
  return address
}

/** The lowercase address of a private key. */
export function addressOf(privateKey: Hex): Hex {
  const pub = secp256k1.getPublicKey(hexToBytes(privateKey), false)
  return `0x${keccak256(pub.subarray(1)).slice(-40)}`
}

export type ValidatorSet = readonly { id: number; address: Hex }[]

export function signVote(
  chainId: number,
  privateKey: Hex,
  v: Omit<Vote, 'signature'>,
): Vote {
  return { ...v, signature: sign(voteDigest(chainId, v), privateKey) }
}

export function signProposal(chainId: number, privateKey: Hex, p: Omit<Proposal, 'signature'>): Proposal {
  return { ...p, signature: sign(proposalDigest(chainId, p), privateKey) }
}

export function verifyVote(chainId: number, validators: ValidatorSet, v: Vote): boolean {
  const expected = validators.find((x) => x.id === v.validator)?.address
  return expected !== undefined && signedBy(voteDigest(chainId, v), v.signature, expected)
}

export function verifyProposal(chainId: number, validators: ValidatorSet, p: Proposal): boolean {
  const expected = validators.find((x) => x.id === p.proposer)?.address
  return expected !== undefined && signedBy(proposalDigest(chainId, p), p.signature, expected)
}

type Point = InstanceType<typeof secp256k1.ProjectivePoint>
/**
 * Multiples of a point for signed 6-bit digits: `table[w][d - 1]` = d·2^(6w)·P for d in 1..32,
 * 44 windows (43 for 256 bits and one for the last carry): 1,408 points, ~6 ms to build here.
 */
type Table = Point[][]
const windowBits = 6
const windows = Math.ceil(256 / windowBits) + 1
const half = 2 ** (windowBits - 1)

function tableOf(p: Point): Table {
  const table: Table = []
  let base = p
  for (let w = 0; w < windows; w++) {
    const row: Point[] = [base]
    for (let d = 1; d < half; d++) row.push((row[d - 1] as Point).add(base))
    table.push(row)
    base = (row[half - 1] as Point).double()
  }
  return table
}

/**
 * k·P for 0 ≤ k < 2^256 from P's table: k in signed digits of 6 bits (−31..32), one addition
 * per non-zero digit. Not constant-time (public keys only).
 */
function multiply(table: Table, k: bigint): Point {
  let acc = secp256k1.ProjectivePoint.ZERO
  for (let w = 0; k > 0n; w++, k >>= BigInt(windowBits)) {
    let d = Number(k & BigInt(2 * half - 1))
    if (d > half) {
      d -= 2 * half
      k += BigInt(2 * half)
    }
    const row = table[w] as Point[]
    if (d > 0) acc = acc.add(row[d - 1] as Point)
    else if (d < 0) acc = acc.add((row[-d - 1] as Point).negate())
  }
  return acc
}

let baseTable: Table | undefined
/** Validators' public keys (by lowercase address), pinned when a signature first recovered to the address. Bounded by the validator set. */
const pinned = new Map<Hex, Table>()
const maxPinned = 256
/** Signatures of an address checked by recovery before its key is pinned (a validator signs 2–3 a height). */
const recoveriesBeforePin = 4
const recoveriesOf = new Map<Hex, number>()
const checked = new Map<string, boolean>()
const maxCachedChecks = 20_000

/**
 * Whether `signature` over `digest` recovers to `address` (lowercase): the same answer as
 * `recoverSigner(digest, signature) === address`, from the pinned public key once there is one.
 * Cached.
 */
export function signedBy(digest: Hex, signature: Hex, address: Hex): boolean {
  const key = digest + signature + address
  const hit = checked.get(key)
  if (hit !== undefined) return hit
  const table = pinned.get(address)
  let ok: boolean
  if (table) ok = checkWithKey(table, digest, signature)
  else {
    const signer = recoverSigner(digest, signature)
    ok = signer === address
    // The table costs ~1,400 additions (~6 ms here): built a height or two in, not in the middle
    // of a devnet's first commit, when every node checks every validator for the first time.
    const seen = ok ? (recoveriesOf.get(address) ?? 0) + 1 : 0
    if (ok) recoveriesOf.set(address, seen)
    if (ok && seen >= recoveriesBeforePin && pinned.size < maxPinned) pinned.set(address, tableOf(publicKeyOf(digest, signature)))
  }
  if (checked.size >= maxCachedChecks) checked.clear()
  checked.set(key, ok)
  return ok
}

/** Whether `address`'s key is pinned (its signatures are checked with its table). */
export function isPinned(address: Hex): boolean {
  return pinned.has(address)
}

function publicKeyOf(digest: Hex, signature: Hex): Point {
  const bytes = hexToBytes(signature)
  const v = bytes[64] as number
  return secp256k1.Signature.fromCompact(bytes.subarray(0, 64))
    .addRecoveryBit(v >= 27 ? v - 27 : v)
    .recoverPublicKey(hexToBytes(digest))
}

/** Recovery's checks, the other way round: R' = z/s·G + r/s·P has x = r and the parity `v` names. */
function checkWithKey(table: Table, digest: Hex, signature: Hex): boolean {
  try {
    const bytes = hexToBytes(signature)
    if (bytes.length !== 65) return false
    const v = bytes[64] as number
    const recovery = v >= 27 ? v - 27 : v
    if (recovery !== 0 && recovery !== 1) return false
    // fromCompact refuses r or s outside [1, n - 1], as recovery does.
    const { r, s } = secp256k1.Signature.fromCompact(bytes.subarray(0, 64))
    const n = secp256k1.CURVE.n
    const z = BigInt(digest) % n
    const sInv = invert(s, n)
    baseTable ??= tableOf(secp256k1.ProjectivePoint.BASE)
    const point = multiply(baseTable, (z * sInv) % n).add(multiply(table, (r * sInv) % n))
    if (point.equals(secp256k1.ProjectivePoint.ZERO)) return false
    const { x, y } = point.toAffine()
    return x === r && Number(y & 1n) === recovery
  } catch {
    return false
  }
}

/** Largest number of faulty validators `n` tolerates, and the quorum sizes that follow. */
export function quorums(n: number): { f: number; quorum: number; skip: number } {
  const f = Math.floor((n - 1) / 3)
  return { f, quorum: 2 * f + 1, skip: f + 1 }
}

/**
 * Checks a commit certificate: at least a quorum of precommits, from distinct validators of
 * the set, for `(height, round, valueIdOf(payload))`, each with a valid signature. Returns the
 * number of valid distinct signers, so callers can report how short a certificate fell.
 */
export function certificateSigners(
  chainId: number,
  validators: ValidatorSet,
  height: number,
  payload: Payload,
  certificate: { round: number; votes: readonly { validator: number; signature: Hex }[] },
): number {
  const value = valueIdOf(payload)
  const seen = new Set<number>()
  for (const v of certificate.votes) {
    if (seen.has(v.validator)) continue
    const vote: Vote = { type: 'precommit', height, round: certificate.round, value, ...v }
    if (verifyVote(chainId, validators, vote)) seen.add(v.validator)
  }
  return seen.size
}

/** Hash of a raw transaction (its Ethereum tx hash). */
export function txHashOf(raw: Hex): Hex {
  return keccak256(raw)
}
