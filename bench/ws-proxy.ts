/**
 * WebSocket answers through the JSON-RPC fault proxy against direct to Anvil, with mixed traffic
 * (`bench/ws-mix.ts`: binary frames, empty and 10,000-element batches, huge ids, 50,000-deep
 * nesting, subscriptions): 10 connections × 300 messages, all sent at once, per round. Three
 * endpoints side by side in one run: Anvil itself, the forkchaos proxy with no rule, and a bare
 * `ws` relay (each frame passed on untouched: what a user would pick instead). Proxy and relay run
 * in a child process each, so they share no event loop with the clients or each other, and each
 * hop's CPU time per round is printed too (it moves far less with the machine's load than latency
 * does). Rounds rotate the order; medians over rounds.
 *   npx tsc -p tsconfig.json && node dist/bench/ws-proxy.js      (BENCH_ROUNDS=5 for more rounds)
 */
import { type ChildProcess, fork } from 'node:child_process'
import * as http from 'node:http'
import type { AddressInfo } from 'node:net'
import * as os from 'node:os'
import { fileURLToPath } from 'node:url'
import WebSocket, { WebSocketServer } from 'ws'
import { startRpcProxy } from '../src/proxy/jsonrpc/proxy.js'
import { startAnvil } from '../src/targets/anvil.js'
import { createPrng } from '../src/util/prng.js'
import { median, percentile } from './stats.js'
import { mixedMessages, runConnection } from './ws-mix.js'

const CONNECTIONS = 10
const MESSAGES = 300
const ROUNDS = Math.max(3, Number(process.env.BENCH_ROUNDS ?? 3))
const TIMEOUT_MS = 60_000
const SEED = 7

const upstream = process.env.FORKCHAOS_BENCH_UPSTREAM
const role = process.env.FORKCHAOS_BENCH_ROLE
if (upstream) {
  // A child: the proxy or the bare relay, in front of the same Anvil, each in its own process so
  // that each one's CPU time per round can be read (`process.cpuUsage`), which a busy machine
  // changes far less than it changes latency.
  const hop =
    role === 'relay'
      ? await startRelay(upstream.replace(/^http/, 'ws'))
      : await startRpcProxy({ upstream, prng: createPrng(SEED), name: 'bench' }).then((p) => ({ url: p.wsUrl, close: () => p.close() }))
  process.send?.({ url: hop.url })
  process.on('message', async (m) => {
    if (m === 'cpu') {
      const { user, system } = process.cpuUsage()
      process.send?.({ cpuMs: (user + system) / 1000 })
      return
    }
    await hop.close()
    process.exit(0)
  })
} else {
  const anvil = await startAnvil({ label: 'bench-ws-proxy' })
  // BENCH_CPU_PROF=<dir> writes a CPU profile of the proxy's process there.
  const prof = process.env.BENCH_CPU_PROF
  const spawnHop = (which: 'proxy' | 'relay') =>
    fork(fileURLToPath(import.meta.url), [], {
      env: { ...process.env, FORKCHAOS_BENCH_UPSTREAM: anvil.url, FORKCHAOS_BENCH_ROLE: which },
      execArgv: prof && which === 'proxy' ? [...process.execArgv, '--cpu-prof', `--cpu-prof-dir=${prof}`] : process.execArgv,
    })
  const children = { proxy: spawnHop('proxy'), relay: spawnHop('relay') }
  const ask = <T>(child: ChildProcess, message?: string) =>
    new Promise<T>((resolve, reject) => {
      // One listener pair per question, both removed with the answer (no listener piles up over rounds).
      const onMessage = (m: unknown) => {
        child.off('error', onError)
        resolve(m as T)
      }
      const onError = (error: Error) => {
        child.off('message', onMessage)
        reject(error)
      }
      child.once('message', onMessage).once('error', onError)
      if (message) child.send(message)
    })
  try {
    const [proxyUrl, relayUrl] = await Promise.all([ask<{ url: string }>(children.proxy), ask<{ url: string }>(children.relay)])
    const endpoints = [
      { name: 'direct to Anvil', url: anvil.url.replace(/^http/, 'ws'), deep: 'null-id' as const, child: undefined },
      { name: 'forkchaos proxy', url: proxyUrl.url, deep: 'id' as const, child: children.proxy },
      { name: 'bare ws relay', url: relayUrl.url, deep: 'null-id' as const, child: children.relay },
    ]
    /** The hop's CPU time over one round, ms (its lazy work for the round included: read after a quiet second). */
    const cpuOf = async (child: ChildProcess | undefined, run: () => Promise<Round>): Promise<Round> => {
      if (!child) return run()
      const before = await ask<{ cpuMs: number }>(child, 'cpu')
      const r = await run()
      await new Promise((resolve) => setTimeout(resolve, 1_000))
      const after = await ask<{ cpuMs: number }>(child, 'cpu')
      return { ...r, cpuMs: after.cpuMs - before.cpuMs }
    }
    const rows = new Map(endpoints.map((e) => [e.name, [] as Round[]]))
    await round(endpoints[0] as (typeof endpoints)[number], 0) // warm-up, not counted
    for (let r = 0; r < ROUNDS; r++)
      for (let k = 0; k < endpoints.length; k++) {
        const e = endpoints[(k + r) % endpoints.length] as (typeof endpoints)[number]
        rows.get(e.name)?.push(await cpuOf(e.child, () => round(e, r + 1)))
      }

    const load = os.loadavg().map((l) => l.toFixed(1)).join(' / ')
    console.log(`\nWebSocket mixed traffic (${CONNECTIONS} connections × ${MESSAGES} messages, all sent at once; ${ROUNDS} rounds, medians; seed ${SEED}; load average ${load} on ${os.cpus().length} cores)`)
    const summary = (name: string) => {
      const rs = rows.get(name) ?? []
      return {
        span: median(rs.map((r) => r.spanMedianMs)),
        spanMax: median(rs.map((r) => r.spanMaxMs)),
        p50: median(rs.map((r) => r.p50Ms)),
        p99: median(rs.map((r) => r.p99Ms)),
        missing: rs.reduce((n, r) => n + r.missing, 0),
        cpu: rs[0]?.cpuMs === undefined ? undefined : median(rs.map((r) => r.cpuMs ?? 0)),
      }
    }
    for (const e of endpoints) {
      const s = summary(e.name)
      console.log(
        `  ${e.name.padEnd(16)} first→last answer: median ${s.span.toFixed(0).padStart(5)} ms, slowest connection ${s.spanMax.toFixed(0).padStart(5)} ms · per call p50 ${s.p50.toFixed(1).padStart(6)} ms  p99 ${s.p99.toFixed(1).padStart(6)} ms · unanswered ${s.missing}${s.cpu === undefined ? '' : ` · hop CPU ${s.cpu.toFixed(0)} ms a round`}`,
      )
    }
    const d = summary('direct to Anvil')
    for (const name of ['forkchaos proxy', 'bare ws relay']) {
      const s = summary(name)
      console.log(
        `  ratio ${name} / direct: first→last ${(s.span / d.span).toFixed(2)} (slowest ${(s.spanMax / d.spanMax).toFixed(2)}) · p50 ${(s.p50 / d.p50).toFixed(2)} · p99 ${(s.p99 / d.p99).toFixed(2)}`,
      )
    }
    for (const child of Object.values(children)) child.send('stop')
  } finally {
    await new Promise((r) => setTimeout(r, 200))
    for (const child of Object.values(children)) if (child.exitCode === null) child.kill()
    await anvil.stop()
  }
}

type Round = { spanMedianMs: number; spanMaxMs: number; p50Ms: number; p99Ms: number; missing: number; cpuMs?: number }

/** One round: every connection at once, each with its own seeded mix. */
async function round(endpoint: { url: string; deep: 'id' | 'null-id' }, n: number): Promise<Round> {
  const prng = createPrng(SEED + n)
  const mixes = Array.from({ length: CONNECTIONS }, (_, c) => mixedMessages(prng.fork(`c${c}`), c, MESSAGES, endpoint.deep))
  const runs = await Promise.all(mixes.map((m) => runConnection(endpoint.url, m, TIMEOUT_MS)))
  const latencies = runs.flatMap((r) => r.latenciesMs)
  const spans = runs.map((r) => r.spanMs)
  return {
    spanMedianMs: median(spans),
    spanMaxMs: Math.max(...spans),
    p50Ms: median(latencies),
    p99Ms: percentile(latencies, 99),
    missing: runs.filter((r) => !r.complete).length,
  }
}

/** A bare relay: each client frame goes to its own upstream socket and back, untouched. */
async function startRelay(target: string): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer()
  const wss = new WebSocketServer({ server, perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 })
  wss.on('connection', (client) => {
    const up = new WebSocket(target, { perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 })
    const backlog: [Buffer, boolean][] = []
    up.on('open', () => {
      for (const [data, binary] of backlog.splice(0)) up.send(data, { binary })
    })
    client.on('message', (data, binary) => {
      if (up.readyState === WebSocket.OPEN) up.send(data as Buffer, { binary })
      else backlog.push([data as Buffer, binary])
    })
    up.on('message', (data, binary) => client.send(data as Buffer, { binary }))
    client.on('close', () => up.terminate())
    up.on('close', () => client.terminate())
    client.on('error', () => {})
    up.on('error', () => {})
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `ws://127.0.0.1:${port}`,
    close: async () => {
      for (const c of wss.clients) c.terminate()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
