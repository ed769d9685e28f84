/**
 * The TCP fault proxy with no toxic against a direct connection, a bare `socket.pipe` relay and
 * haproxy in tcp mode (Debian; skipped with the install line when missing), side by side in one
 * run: bulk throughput (256 MiB into a local sink, 3 rounds each, order rotated) and 64-byte
 * ping/pong round trips (n = 5,000 each). The proxy and the pipe relay run in a child process
 * (haproxy in its own), so on a 2-core box the client and servers keep one core and the hop gets
 * the other, as it would in a real setup.
 *   npx tsc -p tsconfig.json && node dist/bench/tcp-proxy.js
 */
import { fork } from 'node:child_process'
import * as net from 'node:net'
import { createTcpProxy } from '../src/proxy/tcp/proxy.js'
import { createPrng } from '../src/util/prng.js'
import { haproxy, INSTALL, installed, type Native, removeWorkDir, workDir } from './rpc-proxy-natives.js'
import { median, percentile, report } from './stats.js'

const BULK_BYTES = 256 * 1024 * 1024
const BULK_ROUNDS = 3
const WRITE_BYTES = 64 * 1024
const PINGS = 5_000
const PING_BYTES = 64

if (process.argv[2] === 'proxy-child') {
  // Child: a forkchaos proxy and a bare pipe relay per upstream given, addresses sent back to the parent.
  const upstreams = process.argv.slice(3)
  const prng = createPrng(1)
  const proxies: string[] = []
  const pipes: string[] = []
  for (const [i, upstream] of upstreams.entries()) {
    proxies.push((await createTcpProxy({ name: `bench-${i}`, listen: '127.0.0.1:0', upstream, prng })).listen)
    const at = upstream.lastIndexOf(':')
    const relay = net.createServer((client) => {
      client.setNoDelay(true)
      const up = net.connect({ host: upstream.slice(0, at), port: Number(upstream.slice(at + 1)) })
      up.setNoDelay(true)
      client.pipe(up).on('error', () => client.destroy())
      up.pipe(client).on('error', () => up.destroy())
      client.on('error', () => up.destroy())
    })
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve))
    pipes.push(`127.0.0.1:${(relay.address() as net.AddressInfo).port}`)
  }
  process.send?.({ proxies, pipes })
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
  const dir = workDir()
  const natives: Native[] = []
  try {
    const { proxies, pipes } = await new Promise<{ proxies: string[]; pipes: string[] }>((resolve, reject) => {
      child.once('message', (m) => resolve(m as { proxies: string[]; pipes: string[] }))
      child.once('exit', (code) => reject(new Error(`proxy child exited with ${code}`)))
    })
    const paths: { name: string; sink: string; echo: string }[] = [
      { name: 'direct', sink: `127.0.0.1:${sink.port}`, echo: `127.0.0.1:${echo.port}` },
      { name: 'forkchaos, no toxic', sink: proxies[0] as string, echo: proxies[1] as string },
      { name: 'bare socket.pipe', sink: pipes[0] as string, echo: pipes[1] as string },
    ]
    if (installed('haproxy')) {
      const [h1, h2] = [await haproxy(dir, 'tcp', sink.port), await haproxy(dir, 'tcp', echo.port)] as [Native, Native]
      natives.push(h1, h2)
      paths.push({ name: 'haproxy, tcp mode', sink: `127.0.0.1:${h1.port}`, echo: `127.0.0.1:${h2.port}` })
    } else console.log(`haproxy is not installed: no haproxy row. Install: ${INSTALL}`)

    const bulks = new Map(paths.map((p) => [p.name, [] as number[]]))
    for (let round = 0; round < BULK_ROUNDS; round++)
      for (let k = 0; k < paths.length; k++) {
        const p = paths[(k + round) % paths.length] as (typeof paths)[number]
        bulks.get(p.name)?.push(await bulk(p.sink))
      }
    const pingsOf = new Map<string, number[]>()
    for (const p of paths) pingsOf.set(p.name, await pings(p.echo))

    report(`bulk transfer, ${BULK_BYTES / 2 ** 20} MiB × ${BULK_ROUNDS} rounds (MB/s)`, paths.map((p) => [p.name, bulks.get(p.name) ?? []]))
    report(`ping/pong ${PING_BYTES} B, n=${PINGS} (ms per round trip)`, paths.map((p) => [p.name, pingsOf.get(p.name) ?? []]))
    const row = (label: string, a: string, b: string, c: string, d: string) => console.log(`  ${label.padEnd(22)}${a.padStart(10)}${b.padStart(11)}${c.padStart(16)}${d.padStart(16)}`)
    console.log(`
tcp proxy vs direct (node ${process.version}, hops in their own processes)`)
    row('path', 'bulk MB/s', '× direct', 'ping p50 added', 'ping p99 added')
    const direct = paths[0] as (typeof paths)[number]
    const dBulk = median(bulks.get(direct.name) ?? [])
    const dPing = pingsOf.get(direct.name) ?? []
    for (const p of paths) {
      const b = median(bulks.get(p.name) ?? [])
      const ps = pingsOf.get(p.name) ?? []
      const added = (stat: (xs: number[]) => number) => {
        const d = stat(ps) - stat(dPing)
        return p === direct ? `${stat(ps).toFixed(3)} ms` : `${d < 0 ? '−' : '+'}${Math.abs(d).toFixed(3)} ms`
      }
      row(p.name, b.toFixed(0), (b / dBulk).toFixed(2), added(median), added((xs) => percentile(xs, 99)))
    }
  } finally {
    child.kill()
    for (const n of natives) await n.stop()
    removeWorkDir(dir)
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
