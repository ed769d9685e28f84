import { createHash } from 'node:crypto'
import { createRequire } from 'node:module'

/**
 * The WebSocket frame codec of the JSON-RPC proxy's byte relay (RFC 6455 §5): an incremental
 * reader that cuts a TCP byte stream into frames without copying the ones that arrive whole,
 * and the few frames the proxy writes itself. No extension is ever negotiated (the proxy strips
 * `Sec-WebSocket-Extensions`), so any RSV bit is a protocol error.
 */

export const OPCODE = { continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const

/** One frame as it came off the wire. */
export type Frame = {
  fin: boolean
  opcode: number
  /** The 4-byte masking key, or undefined for an unmasked frame. */
  mask: Buffer | undefined
  /** The payload as on the wire (still masked for a masked frame). */
  payload: Buffer
  /** The whole frame, header and payload, as received: what a relay forwards unchanged. */
  raw: Buffer
}

/** Why a stream was refused: the close code to send (RFC 6455 §7.4.1) and a short reason. */
export type FrameError = { code: 1002 | 1009; reason: string }

export type FrameReader = {
  /**
   * Feeds bytes; returns every frame they complete, in order, and the error that ends the stream
   * if one came after them (the frames before it are whole and may still be handled).
   */
  push(chunk: Buffer): { frames: Frame[]; error: FrameError | undefined }
  /** Bytes buffered for an incomplete frame. */
  buffered(): number
}

/**
 * A reader for one direction. `masked`: frames must be masked (client → server) or must not be
 * (server → client), §5.1. `maxMessageBytes`: the limit on a message's payload, all its fragments
 * together (over it: 1009). Fragment order is checked (§5.4): a continuation needs an open message,
 * a new data frame needs none; control frames may come between fragments.
 */
export function createFrameReader(options: { masked: boolean; maxMessageBytes: number }): FrameReader {
  const { masked, maxMessageBytes } = options
  /** Bytes not yet cut into frames, oldest first; joined only once they hold what `need` says. */
  let chunks: Buffer[] = []
  let bytes = 0
  /** How many buffered bytes the next step needs (a header's, then the whole frame's). */
  let need = 2
  /** Payload bytes of the data message in progress (undefined: none open). */
  let messageBytes: number | undefined

  let failed: FrameError | undefined

  return {
    buffered: () => bytes,
    push(chunk) {
      if (failed) return { frames: [], error: failed }
      chunks.push(chunk)
      bytes += chunk.length
      if (bytes < need) return { frames: [], error: undefined }
      const buf = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, bytes)
      const frames: Frame[] = []
      const fail = (code: FrameError['code'], reason: string) => {
        failed = { code, reason }
        chunks = []
        bytes = 0
        return { frames, error: failed }
      }
      let at = 0
      for (;;) {
        const left = buf.length - at
        if (left < 2) {
          need = 2
          break
        }
        const b0 = buf[at] as number
        const b1 = buf[at + 1] as number
        const isMasked = (b1 & 0x80) !== 0
        let length = b1 & 0x7f
        let header = 2 + (isMasked ? 4 : 0)
        if (length === 126) header += 2
        else if (length === 127) header += 8
        if (left < header) {
          need = header
          break
        }
        if (length === 126) length = buf.readUInt16BE(at + 2)
        else if (length === 127) {
          const high = buf.readUInt32BE(at + 2)
          // §5.2: the most significant bit must be 0; anything past 2^53 is over every limit anyway.
          if (high > 0x1f_ffff) return fail(1009, `frame of over 2^53 bytes (limit ${maxMessageBytes} bytes)`)
          length = high * 0x1_0000_0000 + buf.readUInt32BE(at + 6)
        }
        const fin = (b0 & 0x80) !== 0
        const opcode = b0 & 0x0f
        if ((b0 & 0x70) !== 0) return fail(1002, 'RSV bits set (no extension was negotiated)')
        if (isMasked !== masked) return fail(1002, masked ? 'unmasked frame from a client' : 'masked frame from a server')
        if (opcode >= 0x8) {
          if (opcode > OPCODE.pong) return fail(1002, `reserved opcode ${opcode}`)
          if (!fin) return fail(1002, 'fragmented control frame')
          if (length > 125) return fail(1002, `control frame of ${length} bytes (limit 125)`)
        } else {
          if (opcode > OPCODE.binary) return fail(1002, `reserved opcode ${opcode}`)
          if (opcode === OPCODE.continuation && messageBytes === undefined) return fail(1002, 'continuation frame with no message open')
          if (opcode !== OPCODE.continuation && messageBytes !== undefined) return fail(1002, 'new message before the last one ended')
          // Checked on the header, so a frame over the limit is refused before its payload is buffered.
          const total = (messageBytes ?? 0) + length
          if (total > maxMessageBytes) return fail(1009, `message of ${total} bytes (limit ${maxMessageBytes} bytes)`)
        }
        if (left < header + length) {
          need = header + length
          break
        }
        const start = at + header
        frames.push({
          fin,
          opcode,
          mask: isMasked ? buf.subarray(start - 4, start) : undefined,
          payload: buf.subarray(start, start + length),
          raw: buf.subarray(at, start + length),
        })
        at = start + length
        // State changes only once a frame is whole: an incomplete one is read again from its header.
        if (opcode < 0x8) messageBytes = fin ? undefined : (messageBytes ?? 0) + length
      }
      const rest = buf.subarray(at)
      chunks = rest.length > 0 ? [rest] : []
      bytes = rest.length
      return { frames, error: undefined }
    },
  }
}

/**
 * The header of a frame the proxy writes itself (FIN set, one frame per message). `masked`: for
 * upstream, where a client must mask (§5.3); the key is zero, which leaves the payload as it is
 * (masking guards browsers' traffic against caching intermediaries; this link is the proxy's own).
 */
export function frameHeader(opcode: number, length: number, masked: boolean): Buffer {
  const extra = length < 126 ? 0 : length <= 0xffff ? 2 : 8
  const header = Buffer.alloc(2 + extra + (masked ? 4 : 0))
  header[0] = 0x80 | opcode
  const maskBit = masked ? 0x80 : 0
  if (extra === 0) header[1] = maskBit | length
  else if (extra === 2) {
    header[1] = maskBit | 126
    header.writeUInt16BE(length, 2)
  } else {
    header[1] = maskBit | 127
    header.writeUInt32BE(Math.floor(length / 0x1_0000_0000), 2)
    header.writeUInt32BE(length >>> 0, 6)
  }
  return header
}

/** A whole frame (header and payload in one buffer), as `frameHeader` says. */
export function encodeFrame(opcode: number, payload: Buffer, masked: boolean): Buffer {
  return Buffer.concat([frameHeader(opcode, payload.length, masked), payload])
}

/** A close frame's payload: the code (none for 1005, "no status") and a reason of at most 123 bytes (§5.5). */
export function closePayload(code: number | undefined, reason = ''): Buffer {
  if (code === undefined || code === 1005) return Buffer.alloc(0)
  let text = Buffer.from(reason)
  if (text.length > 123) text = Buffer.from(text.subarray(0, 123).toString('utf8').replace(/\uFFFD$/, ''))
  const out = Buffer.alloc(2 + text.length)
  out.writeUInt16BE(code, 0)
  text.copy(out, 2)
  return out
}

/** A close frame's code: 1005 for an empty payload (§7.1.5). */
export function closeCodeOf(payload: Buffer): number {
  return payload.length >= 2 ? payload.readUInt16BE(0) : 1005
}

type BufferUtil = { mask(source: Buffer, mask: Buffer, output: Buffer, offset: number, length: number): void }
/** bufferutil (an optional dependency with prebuilt binaries) XORs natively, 10–50× faster than a JS loop for large payloads. */
const bufferutil: BufferUtil | undefined = (() => {
  try {
    return createRequire(import.meta.url)('bufferutil') as BufferUtil
  } catch {
    return undefined
  }
})()

/** The payload unmasked, in a new buffer (the masked bytes stay as they are, to be forwarded). */
export function unmaskCopy(payload: Buffer, mask: Buffer | undefined): Buffer {
  if (!mask || mask.readUInt32BE(0) === 0) return payload
  const out = Buffer.allocUnsafe(payload.length)
  if (bufferutil && payload.length >= 32) bufferutil.mask(payload, mask, out, 0, payload.length)
  else for (let i = 0; i < payload.length; i++) out[i] = (payload[i] as number) ^ (mask[i & 3] as number)
  return out
}

/** The payload of a message from its frames, unmasked and joined. */
export function messagePayload(frames: readonly Frame[]): Buffer {
  if (frames.length === 1) {
    const only = frames[0] as Frame
    return unmaskCopy(only.payload, only.mask)
  }
  return Buffer.concat(frames.map((f) => unmaskCopy(f.payload, f.mask)))
}

/** `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (§4.2.2). */
export function acceptKey(key: string): string {
  return createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64')
}

/** Close codes that may be sent in a close frame (§7.4: not 1004–1006 or 1015, nor unassigned ones below 3000). */
export const isSendableCloseCode = (code: number) =>
  (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999)
