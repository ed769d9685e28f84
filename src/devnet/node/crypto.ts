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
 * signature's R, x = r with the parity `v` names — about 86 mixed additions of affine table points instead of a
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
 * Multiples of a point for signed 6-bit digits, in affine coordinates: entry `w · 32 + d - 1`
 * holds d·2^(6w)·P for d in 1..32, 44 windows (43 for 256 bits and one for the last carry):
 * 1,408 points, ~15–25 ms to build here. A check adds at most 86 of them (two scalars) into one
 * Jacobian sum with mixed additions (8 multiplications and 3 squarings each, the table's z
 * being 1). The projective table before took noble's complete additions (12 multiplications
 * each and an object per step): a check took ~1 ms, now ~0.45 ms (8-bit digits: no faster
 * here, and tables 2–3 times as long to build).
 */
type Table = { xs: bigint[]; ys: bigint[] }
const windowBits = 6
const windows = Math.ceil(256 / windowBits) + 1
const half = 2 ** (windowBits - 1)
const digitMask = BigInt(2 * half - 1)
const digitShift = BigInt(windowBits)
const fieldP = secp256k1.CURVE.Fp.ORDER

/** A Jacobian point (x = X/Z², y = Y/Z³), Z = 0 for the point at infinity. Mutated in place. */
type Jacobian = { X: bigint; Y: bigint; Z: bigint }

const fsub = (a: bigint, b: bigint) => {
  const t = a - b
  return t < 0n ? t + fieldP : t
}

function double(q: Jacobian) {
  if (q.Z === 0n || q.Y === 0n) {
    q.Z = 0n
    return
  }
  const A = (q.X * q.X) % fieldP
  const B = (q.Y * q.Y) % fieldP
  const C = (B * B) % fieldP
  const xb = q.X + B
  const D = (2n * (((xb * xb) % fieldP) - A - C + 2n * fieldP)) % fieldP
  const E = (3n * A) % fieldP
  const X3 = fsub((E * E) % fieldP, (2n * D) % fieldP)
  const Y3 = fsub((E * fsub(D, X3)) % fieldP, (8n * C) % fieldP)
  q.Z = (2n * q.Y * q.Z) % fieldP
  q.X = X3
  q.Y = Y3
}

/** q += (x, y), an affine point (not infinity). */
function addAffine(q: Jacobian, x: bigint, y: bigint) {
  if (q.Z === 0n) {
    q.X = x
    q.Y = y
    q.Z = 1n
    return
  }
  const z1z1 = (q.Z * q.Z) % fieldP
  const H = fsub((x * z1z1) % fieldP, q.X)
  const R = fsub((((y * q.Z) % fieldP) * z1z1) % fieldP, q.Y)
  if (H === 0n) {
    if (R === 0n) double(q)
    else q.Z = 0n
    return
  }
  const HH = (H * H) % fieldP
  const HHH = (H * HH) % fieldP
  const V = (q.X * HH) % fieldP
  let X3 = ((R * R) % fieldP) - HHH - 2n * V
  X3 %= fieldP
  if (X3 < 0n) X3 += fieldP
  let Y3 = (R * fsub(V, X3) - q.Y * HHH) % fieldP
  if (Y3 < 0n) Y3 += fieldP
  q.Z = (q.Z * H) % fieldP
  q.X = X3
  q.Y = Y3
}

/** Affine coordinates of q (not infinity). */
function toAffine(q: Jacobian): { x: bigint; y: bigint } {
  const zi = invert(q.Z, fieldP)
  const zi2 = (zi * zi) % fieldP
  return { x: (q.X * zi2) % fieldP, y: (((q.Y * zi2) % fieldP) * zi) % fieldP }
}

function tableOf(p: Point): Table {
  const xs: bigint[] = []
  const ys: bigint[] = []
  let base = p.toAffine()
  for (let w = 0; w < windows; w++) {
    const row: Jacobian[] = []
    const q: Jacobian = { X: base.x, Y: base.y, Z: 1n }
    row.push({ ...q })
    for (let d = 1; d < half; d++) {
      addAffine(q, base.x, base.y)
      row.push({ ...q })
    }
    // To affine with one inversion for the row (Montgomery's trick). No multiple of a point of
    // prime order below the order is infinity, so every z is non-zero.
    const prefix: bigint[] = []
    let acc = 1n
    for (const j of row) {
      prefix.push(acc)
      acc = (acc * j.Z) % fieldP
    }
    let inv = invert(acc, fieldP)
    const rowX: bigint[] = new Array(half)
    const rowY: bigint[] = new Array(half)
    for (let i = half - 1; i >= 0; i--) {
      const j = row[i] as Jacobian
      const zi = (inv * (prefix[i] as bigint)) % fieldP
      inv = (inv * j.Z) % fieldP
      const zi2 = (zi * zi) % fieldP
      rowX[i] = (j.X * zi2) % fieldP
      rowY[i] = (((j.Y * zi2) % fieldP) * zi) % fieldP
    }
    xs.push(...rowX)
    ys.push(...rowY)
    const next: Jacobian = { X: rowX[half - 1] as bigint, Y: rowY[half - 1] as bigint, Z: 1n }
    double(next)
    base = toAffine(next)
  }
  return { xs, ys }
}

/**
 * q += k·P for 0 ≤ k < 2^256 from P's table: k in signed digits of 6 bits (−31..32), one
 * mixed addition per non-zero digit. Not constant-time (public keys only).
 */
function multiplyInto(q: Jacobian, table: Table, k: bigint) {
  for (let w = 0; k > 0n; w++, k >>= digitShift) {
    let d = Number(k & digitMask)
    if (d > half) {
      d -= 2 * half
      k += BigInt(2 * half)
    }
    if (d === 0) continue
    const i = w * half + Math.abs(d) - 1
    const y = table.ys[i] as bigint
    addAffine(q, table.xs[i] as bigint, d > 0 ? y : fieldP - y)
  }
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
    const sum: Jacobian = { X: 0n, Y: 0n, Z: 0n }
    multiplyInto(sum, baseTable, (z * sInv) % n)
    multiplyInto(sum, table, (r * sInv) % n)
    if (sum.Z === 0n) return false
    const { x, y } = toAffine(sum)
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
