import { createCipheriv, createHash } from 'node:crypto'
import * as net from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { createTcpProxy } from '../src/proxy/tcp/proxy.js'
import { createPrng } from '../src/util/prng.js'

// The proxy reads each socket into a buffer it reads into again once a chunk was written whole
// (src/proxy/tcp/proxy.ts, `reader`). A buffer read into while a write of it is still pending
// would corrupt what arrives: these streams are large and random (no block repeats, so a stale or
// overwritten chunk changes the digest), and the far end of each reads slowly, so writes queue.

const SEED = 0x5eed
const BYTES = 64 * 2 ** 20
const CHUNK = 64 * 1024

const cleanups: (() => unknown)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

/** `BYTES` of AES-CTR keystream from the seed and a label: random, reproducible, never repeating. */
function stream(label: string) {
  const key = createHash('sha256').update(`${SEED}:${label}`).digest().subarray(0, 16)
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16))
  const zeros = Buffer.alloc(CHUNK)
  let left = BYTES
  return { next: () => (left <= 0 ? undefined : ((left -= CHUNK), cipher.update(zeros))) }
}
function digestOf(label: string): string {
  const h = createHash('sha256')
  const s = stream(label)
  for (let c = s.next(); c; c = s.next()) h.update(c)
  return h.digest('hex')
}

/** Writes the labelled stream with back-pressure, then ends. */
async function send(socket: net.Socket, label: string) {
  const s = stream(label)
  for (let c = s.next(); c; c = s.next()) if (!socket.write(c)) await new Promise((resolve) => socket.once('drain', resolve))
  socket.end()
}

/** Reads to the end slowly (a pause of 5 ms after every 128 KiB, so the sender's writes queue); resolves the digest and length. */
function slowRead(socket: net.Socket): Promise<{ digest: string; bytes: number }> {
  const h = createHash('sha256')
  let bytes = 0
  let sincePause = 0
  return new Promise((resolve, reject) => {
    socket.on('data', (c: Buffer) => {
      h.update(c)
      bytes += c.length
      sincePause += c.length
      if (sincePause >= 128 * 1024) {
        sincePause = 0
        socket.pause()
        setTimeout(() => socket.resume(), 5)
      }
    })
    socket.once('end', () => resolve({ digest: h.digest('hex'), bytes }))
    socket.once('error', reject)
  })
}

describe('tcp proxy: bytes through it are exact', () => {
  it(`64 MiB each way, random (seed ${SEED}), slow readers both ends, a latency toxic added and removed mid-stream: both arrive identical`, async () => {
    const serverGot: Promise<{ digest: string; bytes: number }>[] = []
    const server = net.createServer({ allowHalfOpen: true }, (socket) => {
      socket.on('error', () => undefined)
      serverGot.push(slowRead(socket))
      void send(socket, 'down')
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())))
    const proxy = await createTcpProxy({ name: 'bytes', listen: '127.0.0.1:0', upstream: `127.0.0.1:${(server.address() as net.AddressInfo).port}`, prng: createPrng(SEED) })
    cleanups.push(() => proxy.stop())

    const [host, port] = proxy.listen.split(':') as [string, string]
    const client = net.connect({ host, port: Number(port), allowHalfOpen: true })
    client.on('error', () => undefined)
    cleanups.push(() => client.destroy())
    await new Promise<void>((resolve) => client.once('connect', resolve))
    const clientGot = slowRead(client)
    const sent = send(client, 'up')
    // Toxics come and go while bytes flow: the reads switch between reused and fresh buffers.
    const flips = (async () => {
      for (let i = 0; i < 6; i++) {
        await new Promise((r) => setTimeout(r, 40))
        proxy.addToxic({ name: `lag-${i}`, type: 'latency', stream: i % 2 ? 'downstream' : 'upstream', attributes: { latency: 3, jitter: 2 } })
        await new Promise((r) => setTimeout(r, 40))
        proxy.removeToxic(`lag-${i}`)
      }
    })()
    await Promise.all([sent, flips])
    const [down, up] = [await clientGot, await (serverGot[0] as Promise<{ digest: string; bytes: number }>)]
    expect(up.bytes).toBe(BYTES)
    expect(down.bytes).toBe(BYTES)
    expect(up.digest).toBe(digestOf('up'))
    expect(down.digest).toBe(digestOf('down'))
    expect(proxy.stats()).toMatchObject({ bytesUp: BYTES, bytesDown: BYTES })
  }, 120_000)
})
