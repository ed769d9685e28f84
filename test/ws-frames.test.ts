import * as fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  acceptKey,
  closeCodeOf,
  closePayload,
  createFrameReader,
  type Frame,
  frameHeader,
  messagePayload,
  OPCODE,
  unmaskCopy,
} from '../src/proxy/jsonrpc/ws-frames.js'

// The frame codec of the WebSocket byte relay (RFC 6455 §5), on bytes built here by a separate,
// deliberately plain encoder, so the reader is not checked against itself.

type Spec = { fin?: boolean; rsv?: number; opcode: number; payload: Buffer; mask?: Buffer | undefined; lengthBytes?: 0 | 2 | 8 }

/** A frame's bytes, written out field by field as §5.2 draws them. */
function wire(spec: Spec): Buffer {
  const { payload, mask } = spec
  const n = payload.length
  const form = spec.lengthBytes ?? (n < 126 ? 0 : n < 65_536 ? 2 : 8)
  const bytes: number[] = [((spec.fin ?? true) ? 0x80 : 0) | ((spec.rsv ?? 0) << 4) | spec.opcode]
  const maskBit = mask ? 0x80 : 0
  if (form === 0) bytes.push(maskBit | n)
  else if (form === 2) bytes.push(maskBit | 126, (n >> 8) & 0xff, n & 0xff)
  else {
    bytes.push(maskBit | 127)
    for (let i = 7; i >= 0; i--) bytes.push(Math.floor(n / 2 ** (8 * i)) & 0xff)
  }
  if (mask) bytes.push(...mask)
  const body = Buffer.from(payload)
  if (mask) for (let i = 0; i < body.length; i++) body[i] = (body[i] as number) ^ (mask[i % 4] as number)
  return Buffer.concat([Buffer.from(bytes), body])
}

const reader = (masked: boolean, maxMessageBytes = 1 << 24) => createFrameReader({ masked, maxMessageBytes })
/** What a test compares: the fields, the payload unmasked, and the raw bytes. */
const shape = (f: Frame) => ({ fin: f.fin, opcode: f.opcode, payload: unmaskCopy(f.payload, f.mask).toString('hex'), raw: f.raw.toString('hex') })
const MASK = Buffer.from([0x37, 0xfa, 0x21, 0x3d])

describe('frame reader', () => {
  it('reads 7-, 16- and 64-bit lengths at their edges, masked and not, raw bytes kept as they came', () => {
    for (const n of [0, 1, 125, 126, 127, 65_535, 65_536, 70_000]) {
      const payload = Buffer.alloc(n, n % 251)
      for (const mask of [undefined, MASK]) {
        const bytes = wire({ opcode: OPCODE.text, payload, mask })
        const { frames, error } = reader(mask !== undefined).push(bytes)
        expect(error, `${n} bytes`).toBeUndefined()
        expect(frames.map(shape), `${n} bytes`).toEqual([{ fin: true, opcode: OPCODE.text, payload: payload.toString('hex'), raw: bytes.toString('hex') }])
      }
    }
    // A length written in a longer form than it needs is still read right (§5.2 asks for the minimal one; readers take any).
    const long = wire({ opcode: OPCODE.binary, payload: Buffer.from('abc'), lengthBytes: 8 })
    expect(reader(false).push(long).frames.map(shape)).toEqual([{ fin: true, opcode: OPCODE.binary, payload: '616263', raw: long.toString('hex') }])
  })

  it('a stream of frames split into two chunks at every byte offset reads the same frames', () => {
    const specs: Spec[] = [
      { opcode: OPCODE.text, payload: Buffer.from('{"id":1}'), mask: MASK },
      { opcode: OPCODE.text, payload: Buffer.alloc(300, 0x61), mask: Buffer.from([1, 2, 3, 4]), fin: false },
      { opcode: OPCODE.ping, payload: Buffer.from('p'), mask: MASK },
      { opcode: OPCODE.continuation, payload: Buffer.alloc(200, 0x62), mask: Buffer.from([9, 8, 7, 6]) },
      { opcode: OPCODE.close, payload: closePayload(1000, 'bye'), mask: MASK },
      { opcode: OPCODE.binary, payload: Buffer.alloc(70_000, 0x63), mask: Buffer.from([9, 8, 7, 6]) },
    ]
    const stream = Buffer.concat(specs.map(wire))
    const expected = reader(true).push(stream).frames.map(shape)
    // Every offset up to the 64-bit frame's first payload byte, then every 97th and the last 20 (a full sweep of 70 kB costs minutes).
    const bigStart = stream.length - 70_000
    const offsets = Array.from({ length: stream.length + 1 }, (_, k) => k).filter((k) => k <= bigStart || k % 97 === 0 || k >= stream.length - 20)
    expect(expected.map((f) => [f.fin, f.opcode])).toEqual([
      [true, OPCODE.text],
      [false, OPCODE.text],
      [true, OPCODE.ping],
      [true, OPCODE.continuation],
      [true, OPCODE.close],
      [true, OPCODE.binary],
    ])
    const payloads = specs.map((s) => s.payload)
    for (const k of offsets) {
      const r = reader(true)
      const a = r.push(stream.subarray(0, k))
      const b = r.push(stream.subarray(k))
      expect(a.error ?? b.error).toBeUndefined()
      const got = [...a.frames, ...b.frames]
      // Cheap comparisons first (a full shape per offset costs seconds); the full one only to show a difference.
      const same =
        got.length === specs.length &&
        got.every((f, i) => f.fin === expected[i]?.fin && f.opcode === expected[i]?.opcode && unmaskCopy(f.payload, f.mask).equals(payloads[i] as Buffer)) &&
        Buffer.concat(got.map((f) => f.raw)).equals(stream)
      if (!same) expect(got.map(shape), `split at ${k}`).toEqual(expected)
      expect(r.buffered()).toBe(0)
    }
  })

  it('any frames, in any chunks (fast-check, seed 7): the same frames, payloads unmasked to what was sent', () => {
    const frameArb = fc.record({
      opcode: fc.constantFrom(OPCODE.text, OPCODE.binary),
      payload: fc.oneof({ arbitrary: fc.uint8Array({ maxLength: 200 }), weight: 4 }, { arbitrary: fc.uint8Array({ minLength: 65_530, maxLength: 65_540 }), weight: 1 }),
      mask: fc.uint8Array({ minLength: 4, maxLength: 4 }),
    })
    fc.assert(
      fc.property(fc.array(frameArb, { minLength: 1, maxLength: 8 }), fc.array(fc.integer({ min: 1, max: 5_000 }), { minLength: 1, maxLength: 40 }), (frames, cuts) => {
        const specs = frames.map((f) => ({ opcode: f.opcode, payload: Buffer.from(f.payload), mask: Buffer.from(f.mask) }))
        const stream = Buffer.concat(specs.map(wire))
        const r = reader(true)
        const got: Frame[] = []
        let at = 0
        for (let i = 0; at < stream.length; i++) {
          const size = cuts[i % cuts.length] as number
          const { frames: out, error } = r.push(stream.subarray(at, at + size))
          expect(error).toBeUndefined()
          got.push(...out)
          at += size
        }
        expect(got.map((f) => f.opcode)).toEqual(specs.map((s) => s.opcode))
        expect(got.every((f, i) => messagePayload([f]).equals((specs[i] as Spec).payload))).toBe(true)
        expect(Buffer.concat(got.map((f) => f.raw)).equals(stream)).toBe(true)
      }),
      { seed: 7, numRuns: 100 },
    )
  })

  it('fragments: control frames may come between them; a message is its data frames joined', () => {
    const parts = ['[{"jsonrpc":"2.0",', '"id":1,', '"method":"eth_chainId"}]']
    const bytes = Buffer.concat([
      wire({ opcode: OPCODE.text, payload: Buffer.from(parts[0] as string), mask: MASK, fin: false }),
      wire({ opcode: OPCODE.pong, payload: Buffer.alloc(0), mask: MASK }),
      wire({ opcode: OPCODE.continuation, payload: Buffer.from(parts[1] as string), mask: Buffer.from([5, 6, 7, 8]), fin: false }),
      wire({ opcode: OPCODE.continuation, payload: Buffer.from(parts[2] as string), mask: MASK }),
    ])
    const { frames, error } = reader(true).push(bytes)
    expect(error).toBeUndefined()
    expect(frames.map((f) => [f.fin, f.opcode])).toEqual([
      [false, OPCODE.text],
      [true, OPCODE.pong],
      [false, OPCODE.continuation],
      [true, OPCODE.continuation],
    ])
    expect(messagePayload(frames.filter((f) => f.opcode < 0x8)).toString()).toBe(parts.join(''))
  })

  it('refuses what §5 forbids, with the close code and the reason, and keeps the frames before it', () => {
    const ok = wire({ opcode: OPCODE.text, payload: Buffer.from('ok'), mask: MASK })
    /** The error for `ok` then `bad`; `whole` frames of them were read first (`ok`, and any valid frame `bad` starts with). */
    const refused = (masked: boolean, bad: Buffer, max?: number, whole = 1) => {
      const { frames, error } = reader(masked, max).push(Buffer.concat([ok, bad]))
      expect(frames).toHaveLength(whole)
      return error
    }
    const text = (extra: Partial<Spec>) => wire({ opcode: OPCODE.text, payload: Buffer.from('x'), mask: MASK, ...extra })
    expect(refused(true, text({ mask: undefined }))).toEqual({ code: 1002, reason: 'unmasked frame from a client' })
    expect(reader(false).push(text({})).error).toEqual({ code: 1002, reason: 'masked frame from a server' })
    expect(refused(true, text({ rsv: 4 }))).toEqual({ code: 1002, reason: 'RSV bits set (no extension was negotiated)' })
    expect(refused(true, text({ opcode: 0x3 }))).toEqual({ code: 1002, reason: 'reserved opcode 3' })
    expect(refused(true, text({ opcode: 0xb }))).toEqual({ code: 1002, reason: 'reserved opcode 11' })
    expect(refused(true, text({ opcode: OPCODE.ping, fin: false }))).toEqual({ code: 1002, reason: 'fragmented control frame' })
    expect(refused(true, wire({ opcode: OPCODE.ping, payload: Buffer.alloc(126), mask: MASK }))).toEqual({ code: 1002, reason: 'control frame of 126 bytes (limit 125)' })
    expect(refused(true, text({ opcode: OPCODE.continuation }))).toEqual({ code: 1002, reason: 'continuation frame with no message open' })
    expect(refused(true, Buffer.concat([text({ fin: false }), text({})]), undefined, 2)).toEqual({ code: 1002, reason: 'new message before the last one ended' })
    // Over the limit: all fragments together count; refused on the header, before the payload is there.
    expect(refused(true, Buffer.concat([text({ fin: false, payload: Buffer.alloc(60) }), text({ opcode: OPCODE.continuation, payload: Buffer.alloc(41) })]), 100, 2)).toEqual({
      code: 1009,
      reason: 'message of 101 bytes (limit 100 bytes)',
    })
    const huge = wire({ opcode: OPCODE.binary, payload: Buffer.alloc(2_000), mask: MASK }).subarray(0, 8)
    expect(reader(true, 1_000).push(huge).error).toEqual({ code: 1009, reason: 'message of 2000 bytes (limit 1000 bytes)' })
    // Once refused, the stream stays refused.
    const r = reader(true)
    r.push(text({ mask: undefined }))
    expect(r.push(ok)).toEqual({ frames: [], error: { code: 1002, reason: 'unmasked frame from a client' } })
  })
})

describe('frames the proxy writes', () => {
  it('frameHeader: the minimal length form, FIN set, a zero mask when masked; the reader takes them back', () => {
    for (const n of [0, 125, 126, 65_535, 65_536, 200_000]) {
      const payload = Buffer.alloc(n, 7)
      for (const masked of [false, true]) {
        const header = frameHeader(OPCODE.text, n, masked)
        const expected = wire({ opcode: OPCODE.text, payload, mask: masked ? Buffer.alloc(4) : undefined })
        const bytes = Buffer.concat([header, payload])
        expect(bytes.equals(expected), `${n} bytes, masked ${masked}`).toBe(true)
        expect(reader(masked).push(bytes).frames.map(shape)).toEqual([{ fin: true, opcode: OPCODE.text, payload: payload.toString('hex'), raw: bytes.toString('hex') }])
      }
    }
  })

  it('close payloads: the code, a reason cut to 123 bytes, empty for 1005', () => {
    expect(closePayload(1000, 'bye').toString('hex')).toBe(`03e8${Buffer.from('bye').toString('hex')}`)
    expect(closePayload(undefined)).toHaveLength(0)
    expect(closePayload(1005, 'ignored')).toHaveLength(0)
    expect(closePayload(1001, 'é'.repeat(100))).toHaveLength(2 + 122) // 61 whole two-byte characters, no half of one
    expect(closeCodeOf(closePayload(4321, 'x'))).toBe(4321)
    expect(closeCodeOf(Buffer.alloc(0))).toBe(1005)
  })

  it("Sec-WebSocket-Accept is RFC 6455's own example", () => {
    expect(acceptKey('dGhlIHNhbXBsZSBub25jZQ==')).toBe('s3pPLMBiTxaQ9kYGzzhZRbK+xOo=')
  })
})
