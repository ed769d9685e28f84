/**
 * The TCP fault proxy with no toxic against a direct connection, a bare `socket.pipe` relay and
 * haproxy in tcp mode (Debian; skipped with the install line when missing), side by side in one
 * run: bulk throughput (256 MiB into a sink, 5 rounds each, order rotated), the hop's CPU per
 * GiB in those rounds, and 64-byte ping/pong round trips (n = 5,000 each, 3 rounds, order
 * rotated). Each part runs in its own process: this one only generates load (bulk writer, ping
 * client), one child holds the sink and echo servers, one the forkchaos proxies and the pipe
 * relays, and haproxy its own; so the load generator never shares an event loop with a server
 * or a hop.
 *   npx tsc -p tsconfig.json && node dist/bench/tcp-proxy.js
 * `BENCH_TCP_BEFORE=<another build>/dist/src/proxy/tcp/proxy.js` adds that build's proxy as a row.
 */
import { type ChildProcess, fork } from 'node:child_process'
import * as net from 'node:net'
import { pathToFileURL } from 'node:url'
import { createTcpProxy } from '../src/proxy/tcp/proxy.js'
import { createPrng } from '../src/util/prng.js'
import { cpuMsOfTree, haproxy, INSTALL, installed, type Native, removeWorkDir, workDir } from './rpc-proxy-natives.js'
import { median, percentile, report } from './stats.js'

const BULK_BYTES = 256 * 1024 * 1024
const BULK_ROUNDS = 5
const WRITE_BYTES = 64 * 1024
const PINGS = 5_000
const PING_ROUNDS = 3
const PING_BYTES = 64

type Hops = { proxies: string[]; pipes: string[]; before: string[] }

if (process.argv[2] === 'servers') {
  // Child: the bulk sink and the ping echo.
  const sink = await serve((socket) => {
    socket.on('data', () => undefined)
    socket.on('end', () => socket.end())
  })
  const echo = await serve((socket) => socket.pipe(socket))
  process.send?.({ sink, echo })
} else if (process.argv[2] === 'hops') {
  // Child: a forkchaos proxy (and the `before` build's, if given) and a bare pipe relay per upstream.
  const upstreams = process.argv.slice(3)
  const prng = createPrng(1)
  const hops: Hops = { proxies: [], pipes: [], before: [] }
  const before = process.env.BENCH_TCP_BEFORE
  const beforeCreate = before ? ((await import(pathToFileURL(before).href)) as { createTcpProxy: typeof createTcpProxy }).createTcpProxy : undefined
  for (const [i, upstream] of upstreams.entries()) {
    hops.proxies.push((await createTcpProxy({ name: `bench-${i}`, listen: '127.0.0.1:0', upstream, prng })).listen)
    if (beforeCreate) hops.before.push((await beforeCreate({ name: `before-${i}`, listen: '127.0.0.1:0', upstream, prng })).listen)
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
    hops.pipes.push(`127.0.0.1:${(relay.address() as net.AddressInfo).port}`)
  }
  process.send?.(hops)
} else {
  await main()
}

function child<T>(args: string[]): { process: ChildProcess; ready: Promise<T> } {
  const p = fork(process.argv[1] as string, args, { stdio: 'inherit' })
  const ready = new Promise<T>((resolve, reject) => {
    p.once('message', (m) => resolve(m as T))
    p.once('exit', (code) => reject(new Error(`bench child ${args[0]} exited with ${code}`)))
  })
  return { process: p, ready }
}

async function main() {
  const dir = workDir()
  const natives: Native[] = []
  const servers = child<{ sink: number; echo: number }>(['servers'])
  let hopsChild: ChildProcess | undefined
  try {
    const { sink, echo } = await servers.ready
    const hopsStart = child<Hops>(['hops', `127.0.0.1:${sink}`, `127.0.0.1:${echo}`])
    hopsChild = hopsStart.process
    const hops = await hopsStart.ready
    const hopPid = hopsChild.pid as number
    type Path = { name: string; sink: string; echo: string; pid?: number }
    const paths: Path[] = [
      { name: 'direct', sink: `127.0.0.1:${sink}`, echo: `127.0.0.1:${echo}` },
      { name: 'forkchaos, no toxic', sink: hops.proxies[0] as string, echo: hops.proxies[1] as string, pid: hopPid },
    ]
    if (hops.before.length) paths.push({ name: 'forkchaos before', sink: hops.before[0] as string, echo: hops.before[1] as string, pid: hopPid })
    paths.push({ name: 'bare socket.pipe', sink: hops.pipes[0] as string, echo: hops.pipes[1] as string, pid: hopPid })
    if (installed('haproxy')) {
      const [h1, h2] = [await haproxy(dir, 'tcp', sink), await haproxy(dir, 'tcp', echo)] as [Native, Native]
      natives.push(h1, h2)
      paths.push({ name: 'haproxy, tcp mode', sink: `127.0.0.1:${h1.port}`, echo: `127.0.0.1:${h2.port}`, pid: h1.pid })
    } else console.log(`haproxy is not installed: no haproxy row. Install: ${INSTALL}`)

    const bulks = new Map(paths.map((p) => [p.name, [] as number[]]))
    const cpus = new Map(paths.map((p) => [p.name, [] as number[]]))
    for (let round = 0; round < BULK_ROUNDS; round++)
      for (let k = 0; k < paths.length; k++) {
        const p = paths[(k + round) % paths.length] as Path
        const cpu0 = p.pid ? cpuMsOfTree(p.pid) : 0
        bulks.get(p.name)?.push(await bulk(p.sink))
        if (p.pid) cpus.get(p.name)?.push(((cpuMsOfTree(p.pid) - cpu0) * 2 ** 30) / BULK_BYTES)
      }
    const pingsOf = new Map(paths.map((p) => [p.name, [] as number[]]))
    for (let round = 0; round < PING_ROUNDS; round++)
      for (let k = 0; k < paths.length; k++) {
        const p = paths[(k + round) % paths.length] as Path
        pingsOf.get(p.name)?.push(...(await pings(p.echo)))
      }

    report(`bulk transfer, ${BULK_BYTES / 2 ** 20} MiB × ${BULK_ROUNDS} rounds (MB/s)`, paths.map((p) => [p.name, bulks.get(p.name) ?? []]))
    report(`ping/pong ${PING_BYTES} B, n=${PINGS} × ${PING_ROUNDS} rounds (ms per round trip)`, paths.map((p) => [p.name, pingsOf.get(p.name) ?? []]))
    const row = (label: string, cells: string[]) => console.log(`  ${label.padEnd(22)}${cells.map((c, i) => c.padStart([10, 11, 14, 16, 16][i] ?? 12)).join('')}`)
    console.log(`
tcp proxy vs direct (node ${process.version}, generator, servers and each hop in their own processes)`)
    row('path', ['bulk MB/s', '× direct', 'hop CPU ms/GiB', 'ping p50 added', 'ping p99 added'])
    const direct = paths[0] as Path
    const dBulk = median(bulks.get(direct.name) ?? [])
    const dPing = pingsOf.get(direct.name) ?? []
    for (const p of paths) {
      const b = median(bulks.get(p.name) ?? [])
      const ps = pingsOf.get(p.name) ?? []
      const added = (stat: (xs: number[]) => number) => {
        const d = stat(ps) - stat(dPing)
        return p === direct ? `${stat(ps).toFixed(3)} ms` : `${d < 0 ? '−' : '+'}${Math.abs(d).toFixed(3)} ms`
      }
      const cpu = cpus.get(p.name) ?? []
      row(p.name, [b.toFixed(0), (b / dBulk).toFixed(2), cpu.length ? median(cpu).toFixed(0) : '—', added(median), added((xs) => percentile(xs, 99))])
    }
    console.log(`  bulk MB/s per round: ${paths.map((p) => `${p.name} ${(bulks.get(p.name) ?? []).map((x) => x.toFixed(0)).join('/')}`).join('; ')}`)
  } finally {
    hopsChild?.kill()
    servers.process.kill()
    for (const n of natives) await n.stop()
    removeWorkDir(dir)
  }
}

async function serve(onConnection: (socket: net.Socket) => void): Promise<number> {
  const server = net.createServer((socket) => {
    socket.setNoDelay(true)
    // haproxy's start-up probe and each ping run's end reset their connections.
    socket.on('error', () => undefined)
    onConnection(socket)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return (server.address() as net.AddressInfo).port
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
