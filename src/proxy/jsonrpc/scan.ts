/**
 * A JSON-RPC message read for what the proxy counts, without building it: whether the text is
 * JSON at all (exactly what `JSON.parse` accepts), whether it is a batch, and for each element
 * (the one call, or each batch element) the few top-level members stats and answer matching
 * need — `method`, `id`, and whether `result` / `error` are there. Everything else is only
 * validated, byte by byte, never turned into values: counting a 10,000-call batch and its
 * 10,000 answers this way costs a walk over their bytes, where `JSON.parse` built every block
 * object and hex string in them for the collector to take away again.
 *
 * Members read as `JSON.parse` reads them: the last of duplicate keys wins, and keys written with
 * escapes (`"\u0069d"`) are the keys they spell. Nesting has no limit here (a growable stack, no
 * recursion): only what the caller holds to a limit is limited.
 */

/** One element of a message, as `JSON.parse` would have made it, reduced to what counting reads. */
export type ScannedElement = {
  /** The element is a JSON object (a call or an answer can only be one). */
  object: boolean
  /** Its `method` member when that is a string (the last one, decoded); else undefined. */
  method: string | undefined
  /** It has an `id` member (whatever its value). */
  hasId: boolean
  /**
   * The `id` value as `JSON.stringify(JSON.parse(text).id)` writes it (the proxy's key for a call);
   * `"null"` for `null`; undefined when there is no `id` member (or it nests too deep to write).
   */
  idKey: string | undefined
  /** It has a `result` member / an `error` member. */
  hasResult: boolean
  hasError: boolean
}

export type ScannedMessage = { batch: boolean; elements: ScannedElement[] }

const OBJECT = 1
const ARRAY = 2
/** Which top-level member a key names (what `keyKind` tells apart). */
const OTHER = 0
const ID = 1
const METHOD = 2
const RESULT = 3
const ERROR = 4

/** Reads a message; undefined when it is not JSON (where `JSON.parse` would throw). */
export function scanMessage(b: Buffer): ScannedMessage | undefined {
  const n = b.length
  let i = skipSpace(b, 0, n)
  if (i >= n) return undefined
  const batch = b[i] === 0x5b
  /** Stack depth at which an element's members sit (the batch's array is level 1). */
  const level = batch ? 2 : 1
  let stack = new Uint8Array(64)
  let depth = 0
  const elements: ScannedElement[] = []
  let el: ScannedElement | undefined
  /** The member whose value is being read (at `level`), and where its value began. */
  let capture = OTHER
  let valueStart = 0
  /** 0: a value is expected; 1: a key is expected; 2: a value just ended. */
  let state = 0
  for (;;) {
    if (state === 0) {
      if (i >= n) return undefined
      const c = b[i] as number
      if (depth === level - 1) {
        el = { object: c === 0x7b, method: undefined, hasId: false, idKey: undefined, hasResult: false, hasError: false }
        elements.push(el)
      }
      if (capture !== OTHER && depth === level) valueStart = i
      if (c === 0x7b || c === 0x5b) {
        if (depth === stack.length) {
          const grown = new Uint8Array(stack.length * 2)
          grown.set(stack)
          stack = grown
        }
        stack[depth++] = c === 0x7b ? OBJECT : ARRAY
        i = skipSpace(b, i + 1, n)
        if (b[i] === (c === 0x7b ? 0x7d : 0x5d)) {
          depth--
          i++
          state = 2
        } else state = c === 0x7b ? 1 : 0
        continue
      }
      if (c === 0x22) i = stringEnd(b, i, n)
      else if (c === 0x74) i = literal(b, i, n, TRUE)
      else if (c === 0x66) i = literal(b, i, n, FALSE)
      else if (c === 0x6e) i = literal(b, i, n, NULL)
      else i = numberEnd(b, i, n)
      if (i < 0) return undefined
      state = 2
      continue
    }
    if (state === 1) {
      i = skipSpace(b, i, n)
      if (b[i] !== 0x22) return undefined
      const end = stringEnd(b, i, n)
      if (end < 0) return undefined
      // A key inside a member's value leaves that member's capture alone.
      if (depth === level) capture = el?.object === true ? keyKind(b, i, end) : OTHER
      i = skipSpace(b, end, n)
      if (b[i] !== 0x3a) return undefined
      i = skipSpace(b, i + 1, n)
      state = 0
      continue
    }
    // A value ended at `i`: a member's value at `level` is taken now, an element's end is noted.
    if (capture !== OTHER && depth === level) {
      take(b, el as ScannedElement, capture, valueStart, i)
      capture = OTHER
    }
    i = skipSpace(b, i, n)
    if (depth === 0) return i === n ? { batch, elements } : undefined
    const c = b[i]
    const top = stack[depth - 1]
    if (c === 0x2c) {
      i = skipSpace(b, i + 1, n)
      state = top === OBJECT ? 1 : 0
    } else if ((c === 0x7d && top === OBJECT) || (c === 0x5d && top === ARRAY)) {
      depth--
      i++
    } else return undefined
  }
}

/**
 * Records the value of a member an element's counting reads. Called right after the value was
 * read, so for a string value `escaped` is that string's.
 */
function take(b: Buffer, el: ScannedElement, kind: number, start: number, end: number) {
  const first = b[start]
  if (kind === ID) {
    el.hasId = true
    el.idKey = idKey(b, start, end)
  } else if (kind === METHOD) el.method = first === 0x22 ? (escaped ? (JSON.parse(b.toString('utf8', start, end)) as string) : b.toString('utf8', start + 1, end - 1)) : undefined
  else if (kind === RESULT) el.hasResult = true
  else el.hasError = true
}

/** `JSON.stringify` of the value in `b[start, end)`, from its bytes where they already are that. */
function idKey(b: Buffer, start: number, end: number): string | undefined {
  const first = b[start] as number
  // A string without escapes is written back as it came (its characters need none).
  if (first === 0x22 && !escaped) return b.toString('utf8', start, end)
  if (first === 0x6e) return 'null'
  if (first !== 0x22 && end - start <= 15 && canonicalInteger(b, start, end)) return b.toString('latin1', start, end)
  try {
    return JSON.stringify(JSON.parse(b.toString('utf8', start, end)))
  } catch {
    return undefined // nested too deep to write back (only an upstream could send that)
  }
}

/** `-?(0|[1-9][0-9]*)`: a number `JSON.stringify` writes the same way back (within 15 digits). */
function canonicalInteger(b: Buffer, start: number, end: number): boolean {
  let i = start
  if (b[i] === 0x2d) i++
  if (i >= end) return false
  if (b[i] === 0x30) return i + 1 === end && !(b[start] === 0x2d) // -0 is written 0
  for (; i < end; i++) {
    const c = b[i] as number
    if (c < 0x30 || c > 0x39) return false
  }
  return true
}

/** Which member the key string `b[start, end)` (quotes included) names. */
function keyKind(b: Buffer, start: number, end: number): number {
  // Called right after the key was read: `escaped` is the key's.
  if (escaped) return end - start <= 64 ? kindOf(JSON.parse(b.toString('utf8', start, end)) as string) : OTHER
  const length = end - start
  if (length !== 4 && length !== 7 && length !== 8) return OTHER
  return kindOf(b.toString('latin1', start + 1, end - 1))
}

const kindOf = (key: string) => (key === 'id' ? ID : key === 'method' ? METHOD : key === 'result' ? RESULT : key === 'error' ? ERROR : OTHER)

const skipSpace = (b: Buffer, i: number, n: number) => {
  while (i < n) {
    const c = b[i]
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break
    i++
  }
  return i
}

/** Whether the string `stringEnd` read last had an escape in it. */
let escaped = false

/** The index after the string opened at `i`, or -1 (unterminated, a control character, a bad escape); sets `escaped`. */
function stringEnd(b: Buffer, i: number, n: number): number {
  escaped = false
  for (let k = i + 1; k < n; ) {
    const c = b[k] as number
    if (c === 0x22) return k + 1
    if (c < 0x20) return -1
    if (c !== 0x5c) {
      k++
      continue
    }
    escaped = true
    const e = b[k + 1]
    if (e === 0x75) {
      if (k + 5 >= n) return -1
      for (let h = k + 2; h < k + 6; h++) if (!isHex(b[h] as number)) return -1
      k += 6
    } else if (e === 0x22 || e === 0x5c || e === 0x2f || e === 0x62 || e === 0x66 || e === 0x6e || e === 0x72 || e === 0x74) k += 2
    else return -1
  }
  return -1
}

const isHex = (c: number) => (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66)

const TRUE = Buffer.from('true')
const FALSE = Buffer.from('false')
const NULL = Buffer.from('null')
function literal(b: Buffer, i: number, n: number, word: Buffer): number {
  if (i + word.length > n) return -1
  for (let k = 0; k < word.length; k++) if (b[i + k] !== word[k]) return -1
  return i + word.length
}

/** The index after the number at `i` (RFC 8259 §6), or -1. */
function numberEnd(b: Buffer, i: number, n: number): number {
  if (b[i] === 0x2d) i++
  const d = b[i]
  if (d === 0x30) i++
  else if (d !== undefined && d >= 0x31 && d <= 0x39) i = digits(b, i, n)
  else return -1
  if (b[i] === 0x2e) {
    const k = digits(b, i + 1, n)
    if (k === i + 1) return -1
    i = k
  }
  if (b[i] === 0x65 || b[i] === 0x45) {
    i++
    if (b[i] === 0x2b || b[i] === 0x2d) i++
    const k = digits(b, i, n)
    if (k === i) return -1
    i = k
  }
  return i
}

function digits(b: Buffer, i: number, n: number): number {
  while (i < n) {
    const c = b[i] as number
    if (c < 0x30 || c > 0x39) break
    i++
  }
  return i
}
