/**
 * The JSON-RPC proxy with no rule, beside native proxies, in one run (issue 13): wrk (one thread,
 * 64 connections, POSTing `eth_chainId`) against direct / forkchaos / node-http-proxy / nginx /
 * haproxy (http mode), first with an upstream that is never the bottleneck (nginx answering one
 * fixed JSON-RPC answer; a tiny Node server in its own process where nginx is missing), then with
 * Anvil. Every hop runs in its own process; its CPU time per request is read from /proc. Rounds
 * rotate the order; medians over rounds. A missing anchor is skipped with the install line.
 *   npx tsc -p tsconfig.json && node dist/bench/rpc-proxy-anchors.js     (BENCH_SECONDS=5 BENCH_ROUNDS=3 BENCH_CONNECTIONS=64)
 * BENCH_BEFORE=/path/to/other/checkout/dist/src/proxy/jsonrpc/proxy.js (comma-separated for several)
 * adds a row for each of those builds' proxy (an earlier commit built in a second worktree),
 * measured in the same rounds.
 */
import { type ChildProcess, fork } from 'node:child_process'
import * as http from 'node:http'
import * as os from 'node:os'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { startRpcProxy } from '../src/proxy/jsonrpc/proxy.js'
import { startAnvil } from '../src/targets/anvil.js'
import { createPrng } from '../src/util/prng.js'
import { cpuMsOfTree, haproxy, INSTALL, installed, type Native, nginxFixedAnswer, nginxProxy, removeWorkDir, workDir, wrk } from './rpc-proxy-natives.js'
import { median } from './stats.js'

const SECONDS = Math.max(1, Number(process.env.BENCH_SECONDS ?? 5))
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3))
const CONNECTIONS = Math.max(1, Number(process.env.BENCH_CONNECTIONS ?? 64))
const BODY = '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}'
const ANSWER = '{"jsonrpc":"2.0","id":1,"result":"0x7a69"}'
const BEFORE = (process.env.BENCH_BEFORE ?? '').split(',').filter(Boolean)

/** A hop in its own process: `forkchaos` (the proxy, no rule), `http-proxy` (node-http-proxy with a keep-alive agent) or `fixed` (the tiny upstream). */
async function child(which: string, upstream: string) {
  let server: http.Server
  let close: () => Promise<void>
  if (which === 'forkchaos' || which.startsWith('forkchaos-before-')) {
    const other = BEFORE[Number(which.slice('forkchaos-before-'.length))] as string
    const start = which === 'forkchaos' ? startRpcProxy : ((await import(other)) as { startRpcProxy: typeof startRpcProxy }).startRpcProxy
    const proxy = await start({ upstream, prng: createPrng(1), name: 'bench' })
    process.send?.({ url: proxy.url })
    close = () => proxy.close()
  } else {
    if (which === 'http-proxy') {
      type HttpProxy = { web(req: http.IncomingMessage, res: http.ServerResponse): void; on(event: 'error', fn: (e: Error, req: unknown, res: http.ServerResponse) => void): void }
      const { createProxyServer } = createRequire(import.meta.url)('http-proxy') as { createProxyServer(o: { target: string; agent: http.Agent }): HttpProxy }
      const proxy = createProxyServer({ target: upstream, agent: new http.Agent({ keepAlive: true, maxSockets: 256 }) })
      proxy.on('error', (_e, _req, res) => {
        res.writeHead?.(502)
        res.end?.()
      })
      server = http.createServer((req, res) => proxy.web(req, res))
    } else server = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(ANSWER))
    server.keepAliveTimeout = 60_000
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    process.send?.({ url: `http://127.0.0.1:${(server.address() as { port: number }).port}` })
    close = () => new Promise((resolve) => server.close(() => resolve()))
  }
  process.once('message', async () => {
    await close()
    process.exit(0)
  })
}

type Hop = { name: string; url: string; pid: number | undefined; stop(): Promise<void> }

async function forked(which: string, upstream: string, name: string): Promise<Hop> {
  const c: ChildProcess = fork(fileURLToPath(import.meta.url), [], { env: { ...process.env, FORKCHAOS_BENCH_ROLE: which, FORKCHAOS_BENCH_UPSTREAM: upstream } })
  const { url } = await new Promise<{ url: string }>((resolve, reject) => c.once('message', (m) => resolve(m as { url: string })).once('exit', (code) => reject(new Error(`${name} exited with ${code}`))))
  return {
    name,
    url,
    pid: c.pid,
    stop: async () => {
      if (c.exitCode !== null) return
      const gone = new Promise((resolve) => c.once('exit', resolve))
      c.send('stop')
      const timer = setTimeout(() => c.kill('SIGKILL'), 3_000)
      await gone
      clearTimeout(timer)
    },
  }
}

const signed = (x: number) => `${x < 0 ? '−' : '+'}${Math.abs(x).toFixed(2)}`

const nativeHop = (name: string, n: Native): Hop => ({ name, url: `http://127.0.0.1:${n.port}/`, pid: n.pid, stop: () => n.stop() })

async function main() {
  if (!installed('wrk')) {
    console.log(`wrk is not installed: it is this bench's load generator, so nothing was measured. Install: ${INSTALL}`)
    return
  }
  const dir = workDir()
  const started: Hop[] = []
  const stopAll = async () => {
    for (const h of started.splice(0).reverse()) await h.stop().catch(() => {})
  }
  const onSignal = () => void stopAll().finally(() => process.exit(130))
  process.once('SIGINT', onSignal).once('SIGTERM', onSignal)
  const skipped: string[] = []
  try {
    const hasNginx = installed('nginx')
    const hasHaproxy = installed('haproxy')
    if (!hasNginx) skipped.push(`nginx (the fixed-answer upstream is a tiny Node server instead; no nginx row). Install: ${INSTALL}`)
    if (!hasHaproxy) skipped.push(`haproxy (no haproxy row). Install: ${INSTALL}`)
    const anvil = await startAnvil({ label: 'bench-rpc-anchors' })
    started.push({ name: 'anvil', url: anvil.url, pid: undefined, stop: () => anvil.stop() })
    const fixed = hasNginx ? nativeHop('fixed', await nginxFixedAnswer(dir, ANSWER)) : await forked('fixed', '', 'fixed')
    started.push(fixed)
    const upstreams = [
      { title: hasNginx ? 'cheap upstream (nginx, one fixed answer)' : 'cheap upstream (a tiny Node server, one fixed answer)', url: fixed.url },
      { title: 'Anvil upstream', url: anvil.url },
    ]
    console.log(`\nJSON-RPC proxy, no rule: wrk -t1 -c${CONNECTIONS} -d${SECONDS}s POST eth_chainId; ${ROUNDS} rounds, medians; node ${process.version}; load average ${os.loadavg().map((l) => l.toFixed(1)).join(' / ')} on ${os.cpus().length} cores`)
    for (const up of upstreams) {
      const port = Number(new URL(up.url).port)
      const hops: Hop[] = [{ name: 'direct', url: up.url, pid: undefined, stop: async () => {} }]
      hops.push(await forked('forkchaos', up.url, 'forkchaos JSON-RPC proxy'))
      for (const i of BEFORE.keys()) hops.push(await forked(`forkchaos-before-${i}`, up.url, `forkchaos, build ${i + 1}`))
      if (BEFORE.length > 0) console.log(BEFORE.map((b, i) => `  build ${i + 1}: ${b}`).join('\n'))
      hops.push(await forked('http-proxy', up.url, 'node-http-proxy (keep-alive)'))
      if (hasNginx) hops.push(nativeHop('nginx reverse proxy', await nginxProxy(dir, port)))
      if (hasHaproxy) hops.push(nativeHop('haproxy, http mode', await haproxy(dir, 'http', port)))
      started.push(...hops.slice(1))
      const rows = new Map(hops.map((h) => [h.name, [] as { rps: number; p50: number; cpuUs: number | undefined; errors: string | undefined }[]]))
      await wrk(up.url, BODY, 1, CONNECTIONS, dir) // warm-up, not counted
      for (let r = 0; r < ROUNDS; r++)
        for (let k = 0; k < hops.length; k++) {
          const hop = hops[(k + r) % hops.length] as Hop
          const before = hop.pid === undefined ? 0 : cpuMsOfTree(hop.pid)
          const w = await wrk(hop.url, BODY, SECONDS, CONNECTIONS, dir)
          const cpuMs = hop.pid === undefined ? undefined : cpuMsOfTree(hop.pid) - before
          const total = w.requestsPerSecond * SECONDS
          rows.get(hop.name)?.push({ rps: w.requestsPerSecond, p50: w.p50Ms, cpuUs: cpuMs === undefined ? undefined : (cpuMs * 1000) / total, errors: w.errors })
        }
      const directRps = median((rows.get('direct') ?? []).map((x) => x.rps))
      const directP50 = median((rows.get('direct') ?? []).map((x) => x.p50))
      console.log(`\n${up.title}`)
      console.log(`  ${'path'.padEnd(30)}${'req/s'.padStart(10)}${'p50 ms'.padStart(10)}${'× direct'.padStart(10)}${'added p50'.padStart(11)}${'hop CPU/req'.padStart(13)}`)
      for (const h of hops) {
        const rs = rows.get(h.name) ?? []
        const rps = median(rs.map((x) => x.rps))
        const p50 = median(rs.map((x) => x.p50))
        const cpu = rs[0]?.cpuUs === undefined ? '—' : `${median(rs.map((x) => x.cpuUs ?? 0)).toFixed(0)} µs`
        const errors = [...new Set(rs.map((x) => x.errors).filter(Boolean))].join('; ')
        console.log(
          `  ${h.name.padEnd(30)}${rps.toFixed(0).padStart(10)}${p50.toFixed(2).padStart(10)}${(rps / directRps).toFixed(2).padStart(10)}${(h.name === 'direct' ? '—' : signed(p50 - directP50)).padStart(11)}${cpu.padStart(13)}${errors ? `  (${errors})` : ''}`,
        )
      }
      const ours = median((rows.get('forkchaos JSON-RPC proxy') ?? []).map((x) => x.rps))
      const nhp = median((rows.get('node-http-proxy (keep-alive)') ?? []).map((x) => x.rps))
      console.log(`  forkchaos / node-http-proxy: ${(ours / nhp).toFixed(2)}×`)
      for (const i of BEFORE.keys()) console.log(`  forkchaos / build ${i + 1}: ${(ours / median((rows.get(`forkchaos, build ${i + 1}`) ?? []).map((x) => x.rps))).toFixed(2)}×`)
      for (const h of hops.slice(1)) {
        await h.stop()
        started.splice(started.indexOf(h), 1)
      }
    }
    for (const s of skipped) console.log(`  skipped: ${s}`)
  } finally {
    await stopAll()
    removeWorkDir(dir)
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal)
  }
}

const role = process.env.FORKCHAOS_BENCH_ROLE
if (role) await child(role, process.env.FORKCHAOS_BENCH_UPSTREAM ?? '')
else await main()
