/**
 * HTTP/1.1 framing read from bytes, shared by the JSON-RPC proxy's fast path (upstream answers)
 * and the JSON-RPC client (src/targets/rpc.ts): chunked bodies and whole answers (1xx heads
 * skipped, 204/304 empty, Content-Length, chunked, or a body that runs to the connection's end).
 * Nothing here makes a string of a head.
 */

const CRLF2 = Buffer.from('\r\n\r\n')
const EMPTY = Buffer.alloc(0)
/** Trailer bytes after a chunked body at most (as a request head's limit in the fast path). */
const MAX_TRAILER_BYTES = 16 * 1024

/**
 * Chunked framing from `at`: where it ends (after the trailers) and the data.
 * Undefined while incomplete; `bad` for framing Node would refuse or data past `limit`.
 */
export function readChunks(buf: Buffer, at: number, limit: number): { end: number; body: Buffer } | undefined | 'bad' {
  const parts: Buffer[] = []
  let total = 0
  let i = at
  for (;;) {
    const eol = buf.indexOf('\r\n', i, 'latin1')
    if (eol < 0) return buf.length - i > 1024 ? 'bad' : undefined
    const line = buf.toString('latin1', i, eol)
    const semi = line.indexOf(';')
    const hex = (semi >= 0 ? line.slice(0, semi) : line).trim()
    if (!/^[0-9a-fA-F]{1,8}$/.test(hex)) return 'bad'
    const n = Number.parseInt(hex, 16)
    total += n
    if (total > limit) return 'bad'
    const dataStart = eol + 2
    if (n === 0) {
      // Trailers, then an empty line.
      let j = dataStart
      for (;;) {
        const e = buf.indexOf('\r\n', j, 'latin1')
        if (e < 0) return buf.length - j > MAX_TRAILER_BYTES ? 'bad' : undefined
        if (e === j) return { end: e + 2, body: Buffer.concat(parts, total) }
        j = e + 2
      }
    }
    if (buf.length < dataStart + n + 2) return undefined
    if (buf[dataStart + n] !== 0x0d || buf[dataStart + n + 1] !== 0x0a) return 'bad'
    parts.push(buf.subarray(dataStart, dataStart + n))
    i = dataStart + n + 2
  }
}

export type ParsedResponse = {
  status: number
  /** Where the answer ends (after its body). */
  end: number
  close: boolean
  /** The decoded body when it is small enough to classify. */
  body: Buffer | undefined
  /** Where the final (non-1xx) head starts and where its CRLFCRLF is. */
  headStart: number
  headEnd: number
  /** Byte ranges [from, to) of the final head's `Connection` / `Keep-Alive` lines (each with its CRLF before it). */
  drop: number[] | undefined
  /** The final head has Content-Length or Transfer-Encoding. */
  framed: boolean
}

/**
 * One answer at `from` (1xx answers before it included); a number is the buffer length it needs
 * at least (0: unknown), undefined when it is not HTTP (or a chunked body is past
 * `limits.maxBodyBytes`). `ended`: the connection closed, which ends a body without length. The
 * decoded body is kept when it is at most `limits.keepBodyBytes`.
 */
export function parseResponse(buf: Buffer, from: number, ended: boolean, limits: { maxBodyBytes: number; keepBodyBytes: number }): ParsedResponse | number | undefined {
  let start = from
  for (;;) {
    const headEnd = buf.indexOf(CRLF2, start)
    if (headEnd < 0) return buf.length - start > 64 * 1024 ? undefined : 0
    // `HTTP/1.x SSS`, read byte by byte (no string is made of the head).
    if (headEnd - start < 12 || buf.readUInt32BE(start) !== 0x48545450 || buf[start + 4] !== 0x2f || buf[start + 5] !== 0x31 || buf[start + 6] !== 0x2e || buf[start + 8] !== 0x20) return undefined
    const d0 = (buf[start + 9] as number) - 0x30
    const d1 = (buf[start + 10] as number) - 0x30
    const d2 = (buf[start + 11] as number) - 0x30
    if (d0 < 1 || d0 > 5 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9) return undefined
    const status = d0 * 100 + d1 * 10 + d2
    if (status === 101) return undefined
    const bodyStart = headEnd + 4
    if (status < 200) {
      start = bodyStart
      continue
    }
    let length = -1
    let chunked = false
    let framed = false
    let close = buf[start + 7] === 0x30
    let drop: number[] | undefined
    // Each header line from its CRLF (`at`) to the next CRLF.
    let at = buf.indexOf(0x0d, start)
    while (at < headEnd) {
      const nameStart = at + 2
      let colon = -1
      let i = nameStart
      for (; i < headEnd; i++) {
        const c = buf[i] as number
        if (c === 0x0d) break
        if (c === 0x3a && colon < 0) colon = i
      }
      const lineEnd = i
      const n = colon - nameStart
      if (colon > nameStart && (n === 14 || n === 17 || n === 10)) {
        if (n === 14 && nameIs(buf, nameStart, 'content-length')) {
          length = decimal(buf, colon + 1, lineEnd)
          if (length < 0) return undefined
          framed = true
        } else if (n === 17 && nameIs(buf, nameStart, 'transfer-encoding')) {
          chunked = buf.toString('latin1', colon + 1, lineEnd).toLowerCase().includes('chunked')
          framed = true
        } else if (n === 10 && (nameIs(buf, nameStart, 'connection') || nameIs(buf, nameStart, 'keep-alive'))) {
          if (((buf[nameStart] as number) | 0x20) === 0x63) {
            const v = buf.toString('latin1', colon + 1, lineEnd).toLowerCase()
            if (v.includes('close')) close = true
            else if (v.includes('keep-alive')) close = false
          }
          ;(drop ??= []).push(at, lineEnd)
        }
      }
      at = lineEnd
    }
    let end: number
    let body: Buffer | undefined
    if (status === 204 || status === 304) {
      end = bodyStart
      body = EMPTY
    } else if (chunked) {
      const c = readChunks(buf, bodyStart, limits.maxBodyBytes)
      if (c === 'bad') return undefined
      if (c === undefined) return 0
      end = c.end
      body = c.body.length <= limits.keepBodyBytes ? c.body : undefined
    } else if (length >= 0) {
      if (buf.length < bodyStart + length) return bodyStart + length
      end = bodyStart + length
      body = length <= limits.keepBodyBytes ? buf.subarray(bodyStart, end) : undefined
    } else {
      // No length: the body runs to the connection's end.
      if (!ended) return 0
      end = buf.length
      close = true
      body = end - bodyStart <= limits.keepBodyBytes ? buf.subarray(bodyStart) : undefined
    }
    return { status, end, close, body, headStart: start, headEnd, drop, framed }
  }
}


/** Whether the `name.length` bytes at `at` are `name` (lower case ASCII), ignoring case. */
function nameIs(buf: Buffer, at: number, name: string): boolean {
  for (let i = 0; i < name.length; i++) if (((buf[at + i] as number) | 0x20) !== name.charCodeAt(i)) return false
  return true
}

/** A decimal between optional blanks, as `Number(text.trim())` reads one that is a plain integer; -1 if it is not one. */
function decimal(buf: Buffer, from: number, to: number): number {
  let i = from
  while (i < to && (buf[i] === 0x20 || buf[i] === 0x09)) i++
  let j = to
  while (j > i && (buf[j - 1] === 0x20 || buf[j - 1] === 0x09)) j--
  if (i === j || j - i > 15) return -1
  let n = 0
  for (let k = i; k < j; k++) {
    const d = (buf[k] as number) - 0x30
    if (d < 0 || d > 9) return -1
    n = n * 10 + d
  }
  return n
}
