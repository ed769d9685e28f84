import * as net from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { createTcpProxy, type TcpProxy } from '../src/proxy/tcp/proxy.js'
import { createPrng } from '../src/util/prng.js'

// Real sockets on 127.0.0.1. Timings assert lower bounds tightly (a toxic never acts early)
// and upper bounds loosely (a 2-core CI box may be slow).

const cleanups: (() => unknown)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

type TestServer = { port: number; address: string }

async function startServer(onConnection: (socket: net.Socket) => void): Promise<TestServer> {
  const sockets = new Set<net.Socket>()
  const server = net.createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => undefined)
    onConnection(socket)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  )
  const port = (server.address() as net.AddressInfo).port
  return { port, address: `127.0.0.1:${port}` }
}

const startEcho = () => startServer((socket) => socket.pipe(socket))

/** A server that keeps everything each connection sends; `received` resolves at the client's FIN. */
async function startSink() {
  const received: Promise<Buffer>[] = []
  const server = await startServer((socket) => {
    received.push(
      new Promise((resolve) => {
        const chunks: Buffer[] = []
        socket.on('data', (c: Buffer) => chunks.push(c))
        socket.on('end', () => {
          resolve(Buffer.concat(chunks))
          socket.end()
        })
        socket.on('close', () => resolve(Buffer.concat(chunks)))
      }),
    )
  })
  return { ...server, received }
}

async function proxyTo(upstream: string, seed = 1, name = 'test'): Promise<TcpProxy> {
  const proxy = await createTcpProxy({ name, listen: '127.0.0.1:0', upstream, prng: createPrng(seed) })
  cleanups.push(() => proxy.stop())
  return proxy
}

async function connect(address: string): Promise<net.Socket> {
  const [host, port] = address.split(':') as [string, string]
  const socket = net.connect({ host, port: Number(port) })
  socket.setNoDelay(true)
  socket.on('error', () => undefined)
  cleanups.push(() => socket.destroy())
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('error', reject)
  })
  return socket
}

/** Everything a socket receives, with times, until it closes. */
function record(socket: net.Socket) {
  const t0 = performance.now()
  const chunks: { atMs: number; data: Buffer }[] = []
  let endAtMs: number | undefined
  let error: NodeJS.ErrnoException | undefined
  socket.on('data', (data: Buffer) => chunks.push({ atMs: performance.now() - t0, data }))
  socket.on('end', () => {
    endAtMs = performance.now() - t0
  })
  socket.on('error', (e: NodeJS.ErrnoException) => {
    error = e
  })
  const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(performance.now() - t0)))
  return {
    chunks,
    bytes: () => Buffer.concat(chunks.map((c) => c.data)),
    endAtMs: () => endAtMs,
    error: () => error,
    closed,
  }
}

/** Writes `payload` and waits until as many bytes came back; returns the time taken in ms. */
async function roundTrip(socket: net.Socket, payload: Buffer | string): Promise<number> {
  const bytes = Buffer.from(payload)
  const t0 = performance.now()
  await new Promise<void>((resolve, reject) => {
    let got = 0
    const onData = (c: Buffer) => {
      got += c.length
      if (got >= bytes.length) {
        socket.off('data', onData)
        resolve()
      }
    }
    socket.on('data', onData)
    socket.once('close', () => reject(new Error(`closed after ${got} of ${bytes.length} bytes`)))
    socket.write(bytes)
  })
  return performance.now() - t0
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

function randomBytes(length: number, seed: number): Buffer {
  const prng = createPrng(seed)
  const out = Buffer.alloc(length)
  for (let i = 0; i < length; i++) out[i] = prng.int(0, 255)
  return out
}

describe('pass-through', () => {
  it('relays 4 MiB both ways byte-exact with no toxic and counts the bytes', async () => {
    const echo = await startEcho()
    const proxy = await proxyTo(echo.address)
    const data = randomBytes(4 * 1024 * 1024, 7)
    const client = await connect(proxy.listen)
    const rec = record(client)
    client.end(data)
    await rec.closed
    expect(rec.bytes().equals(data)).toBe(true)
    expect(proxy.stats()).toMatchObject({ connectionsTotal: 1, bytesUp: data.length, bytesDown: data.length })
    await expect.poll(() => proxy.stats().connections).toBe(0)
  })

  it('reports the bound address and toxiproxy-shaped JSON', async () => {
    const echo = await startEcho()
    const proxy = await proxyTo(echo.address)
    expect(proxy.listen).toMatch(/^127\.0\.0\.1:\d+$/)
    expect(proxy.listen).not.toBe('127.0.0.1:0')
    proxy.addToxic({ type: 'latency', attributes: { latency: 5 } })
    expect(proxy.toJSON()).toEqual({
      name: 'test',
      listen: proxy.listen,
      upstream: echo.address,
      enabled: true,
      toxics: [{ name: 'latency_downstream', type: 'latency', stream: 'downstream', toxicity: 1, attributes: { latency: 5, jitter: 0 } }],
    })
  })

  it('closes the client when the upstream refuses', async () => {
    const echo = await startEcho()
    const proxy = await proxyTo('127.0.0.1:1')
    void echo
    const client = await connect(proxy.listen)
    const rec = record(client)
    await rec.closed
    expect(rec.bytes().length).toBe(0)
  })
})

describe('toxics', () => {
  it('latency delays a round trip by at least the latency', async () => {
    const echo = await startEcho()
    const proxy = await proxyTo(echo.address)
    proxy.addToxic({ type: 'latency', stream: 'downstream', attributes: { latency: 150 } })
    const client = await connect(proxy.listen)
    const ms = await roundTrip(client, 'ping\n')
    expect(ms).toBeGreaterThanOrEqual(150)
    expect(ms).toBeLessThan(150 + 2_000)
  })

  it('latency added, updated and removed on an open connection acts on the next bytes', async () => {
    const echo = await startEcho()
    const proxy = await proxyTo(echo.address)
    const client = await connect(proxy.listen)
    expect(await roundTrip(client, 'a')).toBeLessThan(150)
    proxy.addToxic({ name: 'slow', type: 'latency', stream: 'upstream', attributes: { latency: 200 } })
    expect(await roundTrip(client, 'b')).toBeGreaterThanOrEqual(200)
    proxy.updateToxic('slow', { attributes: { latency: 400 } })
    expect(await roundTrip(client, 'c')).toBeGreaterThanOrEqual(400)
    proxy.removeToxic('slow')
    expect(await roundTrip(client, 'd')).toBeLessThan(150)
  })

  it('latency removed while holding data hands it on at once', async () => {
    const echo = await startEcho()
    const proxy = await proxyTo(echo.address)
    proxy.addToxic({ type: 'latency', stream: 'downstream', attributes: { latency: 5_000 } })
    const client = await connect(proxy.listen)
    const trip = roundTrip(client, 'held')
    await sleep(100)
    proxy.removeToxic('latency_downstream')
    expect(await trip).toBeLessThan(1_000)
  })

  it('bandwidth limits the rate', async () => {
    const echo = await startEcho()
    const proxy = await proxyTo(echo.address)
    proxy.addToxic({ type: 'bandwidth', stream: 'downstream', attributes: { rate: 100 } })
    const client = await connect(proxy.listen)
    // 60 KB at 100 KB/s: at least 600 ms.
    const ms = await roundTrip(client, randomBytes(60_000, 3))
    expect(ms).toBeGreaterThanOrEqual(550)
    expect(ms).toBeLessThan(5_000)
  })

  it('timeout drops data, then closes after the timeout', async () => {
    const echo = await startEcho()
    const proxy = await proxyTo(echo.address)
    proxy.addToxic({ type: 'timeout', stream: 'upstream', attributes: { timeout: 300 } })
    const t0 = performance.now()
    const client = await connect(proxy.listen)
    const rec = record(client)
    client.write('hello?')
    await rec.closed
    expect(performance.now() - t0).toBeGreaterThanOrEqual(295)
    expect(rec.bytes().length).toBe(0)
  })

  it('timeout 0 stalls until removed, and removing it closes the stalled connection (as toxiproxy)', async () => {
    const echo = await startEcho()
    const proxy = await proxyTo(echo.address)
    proxy.addToxic({ type: 'timeout', stream: 'downstream', attributes: { timeout: 0 } })
    const client = await connect(proxy.listen)
    const rec = record(client)
    client.write('anyone?')
    await sleep(400)
    expect(rec.bytes().length).toBe(0)
    expect(client.destroyed).toBe(false)
    proxy.removeToxic('timeout_downstream')
    await rec.closed
    expect(rec.bytes().length).toBe(0)
  })

  it('reset_peer resets the connection after the timeout', async () => {
    const echo = await startEcho()
    const proxy = await proxyTo(echo.address)
    proxy.addToxic({ type: 'reset_peer', stream: 'upstream', attributes: { timeout: 200 } })
    const client = await connect(proxy.listen)
    const rec = record(client)
    const t0 = performance.now()
    client.write('x')
    await rec.closed
    expect(performance.now() - t0).toBeGreaterThanOrEqual(195)
    expect(rec.error()?.code).toBe('ECONNRESET')
    expect(rec.bytes().length).toBe(0)
  })

  it('slicer splits data into more, smaller chunks, intact', async () => {
    const echo = await startEcho()
    const payload = randomBytes(2_000, 5)
    const plain = await proxyTo(echo.address, 1, 'plain')
    const sliced = await proxyTo(echo.address, 1, 'sliced')
    sliced.addToxic({ type: 'slicer', stream: 'downstream', attributes: { average_size: 100, size_variation: 50, delay: 5_000 } })
    const chunksThrough = async (proxy: TcpProxy) => {
      const client = await connect(proxy.listen)
      const rec = record(client)
      await roundTrip(client, payload)
      expect(rec.bytes().equals(payload)).toBe(true)
      return rec.chunks.length
    }
    const plainChunks = await chunksThrough(plain)
    const slicedChunks = await chunksThrough(sliced)
    expect(slicedChunks).toBeGreaterThan(plainChunks)
    expect(slicedChunks).toBeGreaterThanOrEqual(6)
  })

  it('slicer with size_variation = average_size (toxiproxy accepts it) still slices, intact', async () => {
    const echo = await startEcho()
    const payload = randomBytes(20_000, 6)
    const sliced = await proxyTo(echo.address, 1, 'even')
    sliced.addToxic({ type: 'slicer', stream: 'downstream', attributes: { average_size: 100, size_variation: 100, delay: 1_000 } })
    const client = await connect(sliced.listen)
    const rec = record(client)
    await roundTrip(client, payload)
    expect(rec.bytes().equals(payload)).toBe(true)
    // Pieces are at most average + variation = 200 bytes, so 20,000 bytes need ≥ 100 reads' worth.
    expect(rec.chunks.length).toBeGreaterThanOrEqual(20)
  })

  it('noop passes everything through untouched', async () => {
    const echo = await startEcho()
    const payload = randomBytes(50_000, 7)
    const proxy = await proxyTo(echo.address, 1, 'noop')
    expect(proxy.addToxic({ type: 'noop' })).toEqual({ name: 'noop_downstream', type: 'noop', stream: 'downstream', toxicity: 1, attributes: {} })
    const client = await connect(proxy.listen)
    const rec = record(client)
    await roundTrip(client, payload)
    expect(rec.bytes().equals(payload)).toBe(true)
  })

  it('limit_data passes exactly N bytes, then closes', async () => {
    const echo = await startEcho()
    const proxy = await proxyTo(echo.address)
    proxy.addToxic({ type: 'limit_data', stream: 'downstream', attributes: { bytes: 100 } })
    const client = await connect(proxy.listen)
    const rec = record(client)
    const payload = randomBytes(1_000, 9)
    client.write(payload)
    await rec.closed
    expect(rec.bytes().equals(payload.subarray(0, 100))).toBe(true)
  })

  it('slow_close holds the close for the delay', async () => {
    const greeter = await startServer((socket) => socket.end('bye\n'))
    const plain = await proxyTo(greeter.address, 1, 'plain')
    const slow = await proxyTo(greeter.address, 1, 'slow')
    slow.addToxic({ type: 'slow_close', stream: 'downstream', attributes: { delay: 400 } })
    const closeAfterData = async (proxy: TcpProxy) => {
      const client = await connect(proxy.listen)
      const rec = record(client)
      await rec.closed
      expect(rec.bytes().toString()).toBe('bye\n')
      return (rec.endAtMs() as number) - (rec.chunks[0]?.atMs as number)
    }
    expect(await closeAfterData(plain)).toBeLessThan(300)
    expect(await closeAfterData(slow)).toBeGreaterThanOrEqual(390)
  })

  it('loss drops about p of 2,000 newline frames, whole, and the same frames for the same seed', async () => {
    const frames = Array.from({ length: 2_000 }, (_, i) => `frame ${i} ${'x'.repeat(i % 37)}\n`)
    const survivors = async (seed: number) => {
      const sink = await startSink()
      const proxy = await proxyTo(sink.address, seed, 'lossy')
      proxy.addToxic({ type: 'loss', stream: 'upstream', attributes: { probability: 0.3 } })
      const client = await connect(proxy.listen)
      client.end(frames.join(''))
      await expect.poll(() => sink.received.length).toBe(1)
      const text = (await sink.received[0])?.toString() ?? ''
      const lines = text.split('\n').slice(0, -1)
      for (const line of lines) expect(frames).toContain(`${line}\n`)
      return lines.map((line) => Number(line.split(' ')[1]))
    }
    const first = await survivors(42)
    const again = await survivors(42)
    const other = await survivors(43)
    expect(first.length).toBeGreaterThan(2_000 * 0.62)
    expect(first.length).toBeLessThan(2_000 * 0.78)
    expect(again).toEqual(first)
    expect(other).not.toEqual(first)
    expect([...first].sort((a, b) => a - b)).toEqual(first)
  })

  it('loss with length32 framing drops whole length-prefixed messages', async () => {
    const sink = await startSink()
    const proxy = await proxyTo(sink.address, 5, 'lossy32')
    proxy.addToxic({ type: 'loss', stream: 'upstream', attributes: { probability: 0.5, framing: 'length32' } })
    const messages = Array.from({ length: 500 }, (_, i) => randomBytes(1 + (i % 300), i))
    const wire = Buffer.concat(
      messages.map((m) => {
        const header = Buffer.alloc(4)
        header.writeUInt32BE(m.length)
        return Buffer.concat([header, m])
      }),
    )
    const client = await connect(proxy.listen)
    // Dribble it in odd-sized writes so headers and bodies straddle chunks.
    for (let at = 0; at < wire.length; at += 777) client.write(wire.subarray(at, at + 777))
    client.end()
    await expect.poll(() => sink.received.length).toBe(1)
    const got = (await sink.received[0]) as Buffer
    const kept: Buffer[] = []
    for (let at = 0; at < got.length; ) {
      const length = got.readUInt32BE(at)
      kept.push(got.subarray(at + 4, at + 4 + length))
      at += 4 + length
    }
    expect(kept.length).toBeGreaterThan(500 * 0.35)
    expect(kept.length).toBeLessThan(500 * 0.65)
    let next = 0
    for (const message of kept) {
      while (next < messages.length && !messages[next]?.equals(message)) next++
      expect(next).toBeLessThan(messages.length)
      next++
    }
  })

  it('partition passes nothing while present and everything sent after removal', async () => {
    const echo = await startEcho()
    const proxy = await proxyTo(echo.address)
    const client = await connect(proxy.listen)
    expect(await roundTrip(client, 'before\n')).toBeLessThan(1_000)
    proxy.addToxic({ type: 'partition', stream: 'upstream' })
    proxy.addToxic({ type: 'partition', stream: 'downstream' })
    const rec = record(client)
    client.write('lost\n')
    await sleep(300)
    expect(rec.bytes().length).toBe(0)
    expect(client.destroyed).toBe(false)
    proxy.removeToxic('partition_upstream')
    proxy.removeToxic('partition_downstream')
    await roundTrip(client, 'after\n')
    expect(rec.bytes().toString()).toBe('after\n')
  })

  it('partition in one direction cuts only that direction', async () => {
    const sink = await startSink()
    const proxy = await proxyTo(sink.address)
    proxy.addToxic({ type: 'partition', stream: 'upstream' })
    const client = await connect(proxy.listen)
    client.write('dropped\n')
    await sleep(200)
    proxy.removeToxic('partition_upstream')
    client.end('kept\n')
    await expect.poll(() => sink.received.length).toBe(1)
    expect((await sink.received[0])?.toString()).toBe('kept\n')
  })

  it('toxicity 0 never applies', async () => {
    const echo = await startEcho()
    const proxy = await proxyTo(echo.address)
    proxy.addToxic({ type: 'latency', stream: 'downstream', toxicity: 0, attributes: { latency: 1_000 } })
    proxy.addToxic({ type: 'timeout', stream: 'upstream', toxicity: 0, attributes: { timeout: 1 } })
    for (let i = 0; i < 10; i++) {
      const client = await connect(proxy.listen)
      expect(await roundTrip(client, `ping ${i}\n`)).toBeLessThan(500)
      client.destroy()
    }
  })

  it('toxicity 0.5 applies to some connections, decided per connection from the seed', async () => {
    const echo = await startEcho()
    const slowCount = async (seed: number) => {
      const proxy = await proxyTo(echo.address, seed, `half-${seed}`)
      proxy.addToxic({ type: 'latency', stream: 'downstream', toxicity: 0.5, attributes: { latency: 100 } })
      const slow: boolean[] = []
      for (let i = 0; i < 12; i++) {
        const client = await connect(proxy.listen)
        slow.push((await roundTrip(client, 'x')) >= 100)
        client.destroy()
      }
      await proxy.stop()
      return slow
    }
    const first = await slowCount(11)
    expect(first.filter(Boolean).length).toBeGreaterThan(1)
    expect(first.filter(Boolean).length).toBeLessThan(11)
    expect(await slowCount(11)).toEqual(first)
  })
})

describe('lifecycle and validation', () => {
  it('disabling closes the listener and open connections; enabling rebinds the same address', async () => {
    const echo = await startEcho()
    const proxy = await proxyTo(echo.address)
    const listen = proxy.listen
    const client = await connect(listen)
    const rec = record(client)
    await proxy.setEnabled(false)
    expect(proxy.enabled).toBe(false)
    await rec.closed
    await expect(connect(listen)).rejects.toMatchObject({ code: 'ECONNREFUSED' })
    await proxy.setEnabled(true)
    expect(proxy.listen).toBe(listen)
    const again = await connect(listen)
    expect(await roundTrip(again, 'back')).toBeLessThan(1_000)
  })

  it('update to a new upstream restarts the listener', async () => {
    const echo = await startEcho()
    const greeter = await startServer((socket) => socket.end('hi\n'))
    const proxy = await proxyTo(echo.address)
    await proxy.update({ upstream: greeter.address })
    const client = await connect(proxy.listen)
    const rec = record(client)
    await rec.closed
    expect(rec.bytes().toString()).toBe('hi\n')
  })

  it('names the bad field and value', async () => {
    const echo = await startEcho()
    const proxy = await proxyTo(echo.address)
    expect(() => proxy.addToxic({ type: 'latency', attributes: { latency: 'abc' } })).toThrow('"latency" must be an integer between 0 and 3600000. Got "abc".')
    expect(() => proxy.addToxic({ type: 'latency', attributes: { latency: 1e300 } })).toThrow('"latency" must be an integer between 0 and 3600000. Got 1e+300.')
    expect(() => proxy.addToxic({ type: 'latency', attributes: { latency: 1.5 } })).toThrow('"latency" must be an integer between 0 and 3600000. Got 1.5.')
    expect(() => proxy.addToxic({ type: 'limit_data', attributes: { bytes: 1.5 } })).toThrow('"bytes" must be an integer between 0 and 1099511627776. Got 1.5.')
    expect(() => proxy.addToxic({ type: 'bandwidth', attributes: { rate: 10_000_001 } })).toThrow('"rate" must be an integer between 0 and 10000000. Got 10000001.')
    expect(() => proxy.addToxic({ type: 'slicer', attributes: { average_size: 1_048_577 } })).toThrow('"average_size" must be an integer between 1 and 1048576. Got 1048577.')
    expect(() => proxy.addToxic({ type: 'loss', attributes: { probability: 1.5 } })).toThrow('"probability" must be a number between 0 and 1. Got 1.5.')
    expect(() => proxy.addToxic({ type: 'loss', attributes: { framing: 'crlf' } })).toThrow('"framing" must be one of "newline", "length32". Got "crlf".')
    // toxiproxy accepts a size_variation equal to (or above) average_size.
    expect(proxy.addToxic({ name: 'even', type: 'slicer', attributes: { average_size: 10, size_variation: 10 } }).attributes).toEqual({ average_size: 10, size_variation: 10, delay: 0 })
    expect(() => proxy.addToxic({ name: 'a b', type: 'noop' })).toThrow(
      '"name" must be 1 to 64 characters of A-Z, a-z, 0-9, "_", "." and "-", other than "." and "..". Got "a b".',
    )
    expect(() => proxy.addToxic({ type: 'latency', stream: 'sideways' })).toThrow('"stream" must be "upstream" or "downstream". Got "sideways".')
    expect(() => proxy.addToxic({ type: 'latency', toxicity: 2 })).toThrow('"toxicity" must be a number between 0 and 1. Got 2.')
    expect(() => proxy.addToxic({ type: 'latency', attributes: { latnecy: 1 } })).toThrow('Unknown attribute "latnecy" for toxic type "latency". Known: latency, jitter.')
    expect(() => proxy.addToxic({ type: 'jam' })).toThrow('Unknown toxic type "jam".')
    proxy.addToxic({ type: 'latency' })
    expect(() => proxy.addToxic({ type: 'latency' })).toThrow('Toxic "latency_downstream" already exists on proxy "test".')
    expect(() => proxy.removeToxic('nope')).toThrow('No toxic "nope" on proxy "test".')
    await expect(createTcpProxy({ name: 'bad', listen: 'nowhere', upstream: echo.address, prng: createPrng(1) })).rejects.toThrow(
      '"listen" must be "host:port" with a port from 0 to 65535. Got "nowhere".',
    )
  })
})
