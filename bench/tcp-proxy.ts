/**
 * The TCP fault proxy with no toxic against a direct connection, side by side in one run:
 * bulk throughput (256 MiB into a local sink, 3 rounds each) and 64-byte ping/pong round
 * trips (n = 5,000 each). The proxy runs in a child process, so on a 2-core box the client
 * and servers keep one core and the proxy gets the other, as it would in a real setup.
 *   npx tsx bench/tcp-proxy.ts
 */
import { fork } from 'node:child_process'
import * as net from 'node:net'
import { createTcpProxy } from '../src/proxy/tcp/proxy.js'
import { createPrng } from '../src/util/prng.js'
import { median, percentile, report } from './stats.js'

const BULK_BYTES = 256 * 1024 * 1024
const BULK_ROUNDS = 3
const WRITE_BYTES = 64 * 1024
const PINGS = 5_000
const PING_BYTES = 64

if (process.argv[2] === 'proxy-child') {
  // Child: one proxy per upstream given, addresses sent back to the parent.
  const upstreams = process.argv.slice(3)
  const prng = createPrng(1)
  const listens: string[] = []
  for (const [i, upstream] of upstreams.entries())
    listens.push((await createTcpProxy({ name: `bench-${i}`, listen: '127.0.0.1:0', upstream, prng })).listen)
  process.send?.({ listens })
} else {
  await main()
}

async function main() {
  const sink = await serve((socket) => {
    socket.on('data', () => undefined)
    socket.on('end', () => socket.end())
  })
  const echo = await serve((socket) => socket.pipe(socket))
  const child = fork(process.argv[1] as string, ['proxy-child', `127.0.0.1:${sink.port}`, `127.0.0.1:${echo.port}`], { stdio: 'inherit' })
  try {
    const [sinkProxy, echoProxy] = await new Promise<string[]>((resolve, reject) => {
      child.once('message', (m) => resolve((m as { listens: string[] }).listens))
      child.once('exit', (code) => reject(new Error(`proxy child exited with ${code}`)))
    })
    const direct = { sink: `127.0.0.1:${sink.port}`, echo: `127.0.0.1:${echo.port}` }
    const proxied = { sink: sinkProxy as string, echo: echoProxy as string }

    const bulkDirect: number[] = []
    const bulkProxied: number[] = []
    for (let round = 0; round < BULK_ROUNDS; round++) {
      bulkDirect.push(await bulk(direct.sink))
      bulkProxied.push(await bulk(proxied.sink))
    }
    const pingDirect = await pings(direct.echo)
    const pingProxied = await pings(proxied.echo)

    report(`bulk transfer, ${BULK_BYTES / 2 ** 20} MiB × ${BULK_ROUNDS} rounds (MB/s)`, [
      ['direct', bulkDirect],
      ['through proxy, no toxic', bulkProxied],
    ])
    report(`ping/pong ${PING_BYTES} B, n=${PINGS} (ms per round trip)`, [
      ['direct', pingDirect],
      ['through proxy, no toxic', pingProxied],
    ])
    const row = (label: string, a: string, b: string, c: string) => console.log(`  ${label.padEnd(26)}${a.padStart(12)}${b.padStart(14)}${c.padStart(16)}`)
    console.log(`\ntcp proxy vs direct (node ${process.version}, proxy in a child process)`)
    row('', 'direct', 'proxied', 'ratio / added')
    row('bulk MB/s (median)', median(bulkDirect).toFixed(0), median(bulkProxied).toFixed(0), `${(median(bulkProxied) / median(bulkDirect)).toFixed(2)}x`)
    for (const [label, stat] of [
      ['ping/pong median ms', median],
      ['ping/pong p99 ms', (xs: number[]) => percentile(xs, 99)],
    ] as const)
      row(label, stat(pingDirect).toFixed(3), stat(pingProxied).toFixed(3), `+${(stat(pingProxied) - stat(pingDirect)).toFixed(3)} ms`)
  } finally {
    child.kill()
    sink.close()
    echo.close()
  }
}

async function serve(onConnection: (socket: net.Socket) => void) {
  const server = net.createServer((socket) => {
    socket.setNoDelay(true)
    onConnection(socket)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { port: (server.address() as net.AddressInfo).port, close: () => server.close() }
}

function connect(address: string): Promise<net.Socket> {
  const at = address.lastIndexOf(':')
  const socket = net.connect({ host: address.slice(0, at), port: Number(address.slice(at + 1)) })
  socket.setNoDelay(true)
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket))
    socket.once('error', reject)
  })
}

/** Writes BULK_BYTES with back-pressure, then waits for the sink's close; returns MB/s. */
async function bulk(address: string): Promise<number> {
  const socket = await connect(address)
  const block = Buffer.alloc(WRITE_BYTES, 0x61)
  const t0 = performance.now()
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
  socket.resume()
  for (let sent = 0; sent < BULK_BYTES; sent += WRITE_BYTES)
    if (!socket.write(block)) await new Promise((resolve) => socket.once('drain', resolve))
  socket.end()
  await closed
  return BULK_BYTES / 1e6 / ((performance.now() - t0) / 1000)
}

/** Sequential ping/pong round trips on one connection; returns each in ms. */
async function pings(address: string): Promise<number[]> {
  const socket = await connect(address)
  const ping = Buffer.alloc(PING_BYTES, 0x70)
  const times: number[] = []
  let got = 0
  let done: (() => void) | undefined
  socket.on('data', (c: Buffer) => {
    got += c.length
    if (got >= PING_BYTES && done) {
      got -= PING_BYTES
      const d = done
      done = undefined
      d()
    }
  })
  for (let i = 0; i < PINGS + 100; i++) {
    const t0 = performance.now()
    await new Promise<void>((resolve) => {
      done = resolve
      socket.write(ping)
    })
    if (i >= 100) times.push(performance.now() - t0) // the first 100 warm up
  }
  socket.destroy()
  return times
}
