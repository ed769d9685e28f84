import { createHash } from 'node:crypto'
import * as fs from 'node:fs'
import * as path from 'node:path'
import type { Hex } from './types.js'

/**
 * What this validator last signed, per message kind, on disk in `<dataDir>/sign-state.json`, so
 * that a crash and restart never makes it sign a second, different message at a (height, round)
 * it already signed at (the "amnesia" double-sign: peers record evidence, quorums break).
 *
 * Rules, asked before every signature (`allow`):
 * - the same (height, round) and the same value as the last one of that kind: allowed (the
 *   identical message again; nothing to persist);
 * - a (height, round) above the last one of that kind: persisted first, then allowed: the
 *   file is created as a temp file, fsync, rename, fsync of the directory; once it exists it is
 *   overwritten in place (one write of ~250 bytes at offset 0, truncated to its length, then
 *   fdatasync: no rename, no directory fsync — about a quarter of the blocked time here,
 *   bench/devnet-crypto.ts).
 *   A write that fails (ENOSPC on a full disk…) means not allowed, and the state in memory is
 *   left as it was. A crash in the middle of an overwrite can at worst leave a torn file, which
 *   the checksum catches: the unreadable case below, safe;
 * - anything else (a different value at the same (height, round), or a lower one): refused.
 *
 * A state file that is unreadable (torn, a checksum mismatch, flipped bytes) is not an error at
 * start: the node cannot know what it signed, so it assumes it signed everything up to the
 * height its peers are at — it refuses every signature until it has heard a peer's height
 * (`observe`), then every signature at or below the highest height heard by the time it first
 * reaches that height. It sits one height out, then signs again. Refusing to start instead would
 * keep a validator whose data dir took any damage down until an operator deletes the file, and
 * that deletion is exactly the unsafe step; waiting one height is safe as long as one peer that
 * reached this validator's height is reachable.
 */
export type SignState = {
  /**
   * Whether this validator may sign `kind` at (height, round) for `value` (a block hash, or
   * null for nil). Persists before answering true for a new (height, round).
   */
  allow(kind: SignKind, height: number, round: number, value: Hex | null): boolean
  /** A height seen in a valid message from a peer (used only after an unreadable state file). */
  observe(height: number): void
  /** The last signed entry of each kind (null: none). */
  readonly last: Readonly<Record<SignKind, SignedEntry | null>>
  /** Set when the file was unreadable at open; null once the node signs again. */
  readonly unknown: { reason: string; floorHeight: number | null } | null
}

export type SignKind = 'proposal' | 'prevote' | 'precommit'
export type SignedEntry = { height: number; round: number; value: Hex | null }

export type SignStateOptions = {
  /** One line per refusal (once per kind and (height, round)). Default: none. */
  log?: (line: string) => void
  /** Start as if the file were not there (test builds: `unsafe.forgetSignState`). */
  forget?: boolean
}

export const signStateFileName = 'sign-state.json'

const kinds: readonly SignKind[] = ['proposal', 'prevote', 'precommit']
/** Refusal lines remembered, so each is logged once; cleared past this. */
const maxLogged = 1_000

export function openSignState(dataDir: string, options: SignStateOptions = {}): SignState {
  fs.mkdirSync(dataDir, { recursive: true })
  const file = path.join(dataDir, signStateFileName)
  const tmp = `${file}.tmp`
  const log = options.log ?? (() => {})
  const last: Record<SignKind, SignedEntry | null> = { proposal: null, prevote: null, precommit: null }
  let unknown: { reason: string; floorHeight: number | null; frozen: boolean } | null = null

  if (options.forget) fs.rmSync(file, { force: true })
  else if (fs.existsSync(file)) {
    const read = readState(fs.readFileSync(file))
    if (typeof read === 'string') {
      unknown = { reason: read, floorHeight: null, frozen: false }
      log(`sign-state: ${file} is unreadable (${read}); signing nothing up to the height the peers are at`)
    } else Object.assign(last, read)
  }

  const logged = new Set<string>()
  const refuse = (kind: SignKind, height: number, round: number, why: string) => {
    const key = `${kind}/${height}/${round}/${why}`
    if (logged.has(key)) return false
    if (logged.size >= maxLogged) logged.clear()
    logged.add(key)
    log(`sign-state: not signing a ${kind} at ${height}/${round}: ${why}`)
    return false
  }

  return {
    get last() {
      return last
    },
    get unknown() {
      return unknown && { reason: unknown.reason, floorHeight: unknown.floorHeight }
    },
    observe(height) {
      if (unknown && !unknown.frozen && Number.isSafeInteger(height)) unknown.floorHeight = Math.max(unknown.floorHeight ?? 0, height)
    },
    allow(kind, height, round, value) {
      if (unknown) {
        if (unknown.floorHeight === null) return refuse(kind, height, round, 'the state file was unreadable and no peer has been heard yet')
        if (height >= unknown.floorHeight) unknown.frozen = true
        if (height <= unknown.floorHeight)
          return refuse(kind, height, round, `the state file was unreadable: waiting for a height above ${unknown.floorHeight}, the highest heard from peers`)
      }
      const prev = last[kind]
      if (prev && prev.height === height && prev.round === round) {
        if (prev.value === value) return true
        return refuse(kind, height, round, `already signed ${prev.value ?? 'nil'} there (now ${value ?? 'nil'})`)
      }
      if (prev && (height < prev.height || (height === prev.height && round < prev.round)))
        return refuse(kind, height, round, `already signed a ${kind} at ${prev.height}/${prev.round}, a later one`)
      const next = { ...last, [kind]: { height, round, value } }
      try {
        writeAtomically(file, tmp, encodeState(next))
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code ?? 'error'
        return refuse(kind, height, round, `writing ${signStateFileName} failed (${code}: ${(error as Error).message})`)
      }
      last[kind] = { height, round, value }
      unknown = null
      return true
    },
  }
}

/** `{ "sha256": <hex of the JSON of state>, "state": <state> }`. */
function encodeState(state: Record<SignKind, SignedEntry | null>): Buffer {
  const json = JSON.stringify(state)
  return Buffer.from(`{"sha256":"${sha256(json)}","state":${json}}\n`, 'utf8')
}

/** The state, or why the file cannot be trusted. */
export function readState(data: Buffer): Record<SignKind, SignedEntry | null> | string {
  const text = data.toString('utf8')
  const m = /^\{"sha256":"([0-9a-f]{64})","state":(.*)\}\n$/s.exec(text)
  if (!m) return data.length === 0 ? 'the file is empty' : 'the file is torn or malformed'
  const json = m[2] as string
  if (sha256(json) !== m[1]) return 'checksum mismatch'
  let raw: unknown
  try {
    raw = JSON.parse(json)
  } catch {
    return 'the state does not parse'
  }
  if (typeof raw !== 'object' || raw === null) return 'the state is not an object'
  const out: Record<SignKind, SignedEntry | null> = { proposal: null, prevote: null, precommit: null }
  for (const kind of kinds) {
    const e = (raw as Record<string, unknown>)[kind]
    if (e === null) continue
    if (
      typeof e !== 'object' ||
      !Number.isSafeInteger((e as SignedEntry).height) ||
      !Number.isSafeInteger((e as SignedEntry).round) ||
      !((e as SignedEntry).value === null || (typeof (e as SignedEntry).value === 'string' && /^0x[0-9a-f]*$/i.test((e as SignedEntry).value as string)))
    )
      return `the ${kind} entry is malformed`
    const { height, round, value } = e as SignedEntry
    out[kind] = { height, round, value }
  }
  return out
}

function writeAtomically(file: string, tmp: string, data: Buffer) {
  let fd: number | undefined
  try {
    fd = fs.openSync(file, 'r+')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
  }
  if (fd !== undefined) {
    // The file exists (its directory entry is durable already): overwrite it in place.
    try {
      let off = 0
      while (off < data.length) off += fs.writeSync(fd, data, off, data.length - off, off)
      fs.ftruncateSync(fd, data.length)
      fs.fdatasyncSync(fd)
    } finally {
      fs.closeSync(fd)
    }
    return
  }
  createAtomically(file, tmp, data)
}

function createAtomically(file: string, tmp: string, data: Buffer) {
  const fd = fs.openSync(tmp, 'w')
  try {
    let off = 0
    while (off < data.length) off += fs.writeSync(fd, data, off, data.length - off)
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
  fs.renameSync(tmp, file)
  // The rename itself is durable only once the directory is.
  const dir = fs.openSync(path.dirname(file), 'r')
  try {
    fs.fsyncSync(dir)
  } finally {
    fs.closeSync(dir)
  }
}

function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex')
}
