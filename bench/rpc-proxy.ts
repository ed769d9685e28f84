/**
 * JSON-RPC fault proxy overhead with no rule installed: 64 concurrent keep-alive clients send
 * `eth_chainId` for ~10 s straight to Anvil, then ~10 s through the proxy, side by side in one
 * run. The proxy runs in a child process so it does not share an event loop with the load.
 *   npx tsx bench/rpc-proxy.ts            (BENCH_PHASE_MS=3000 for a quick run)
 */
import { fork } from 'node:child_process'
import * as http from 'node:http'
import { fileURLToPath } from 'node:url'
import { startRpcProxy } from '../src/proxy/jsonrpc/proxy.js'
import { startAnvil } from '../src/targets/anvil.js'
import { createPrng } from '../src/util/prng.js'
import { median, percentile } from './stats.js'

const CLIENTS = 64
const PHASE_MS = Number(process.env.BENCH_PHASE_MS ?? 10_000)
const WARMUP_MS = 1_000
const SEED = 1
const body = Buffer.from('{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}')

const upstream = process.env.FORKCHAOS_BENCH_UPSTREAM
if (upstream) {
  // The proxy side: start, report the URL, close when told.
  const proxy = await startRpcProxy({ upstream, prng: createPrng(SEED), name: 'bench' })
  process.send?.(proxy.url)
  process.once('message', async () => {
    const stats = proxy.stats()
    await proxy.close()
    process.send?.({ requests: stats.requests, forwarded: stats.forwarded }, () => process.exit(0))
  })
} else {
  const anvil = await startAnvil({ label: 'bench-rpc-proxy' })
  // fork() passes on this process's execArgv, so the child runs from source under tsx too.
  const child = fork(fileURLToPath(import.meta.url), [], { env: { ...process.env, FORKCHAOS_BENCH_UPSTREAM: anvil.url } })
  try {
    const proxyUrl = await new Promise<string>((resolve, reject) => child.once('message', (m) => resolve(m as string)).once('error', reject))
    const direct = await load(anvil.url)
    const proxied = await load(proxyUrl)
    child.send('stop')
    const counts = await new Promise<{ requests: number; forwarded: number }>((resolve) =>
      child.once('message', (m) => resolve(m as { requests: number; forwarded: number })),
    )

    const row = (label: string, r: Result) =>
      console.log(
        `  ${label.padEnd(18)} n=${String(r.latenciesMs.length).padStart(7)}  ${r.perSecond.toFixed(0).padStart(6)} req/s  median ${median(r.latenciesMs).toFixed(3)} ms  p99 ${percentile(r.latenciesMs, 99).toFixed(3)} ms  errors ${r.errors}`,
      )
    console.log(`\nJSON-RPC proxy overhead, no rule (${CLIENTS} clients, eth_chainId, ${PHASE_MS / 1000} s each way, seed ${SEED})`)
    row('direct to Anvil', direct)
    row('through proxy', proxied)
    console.log(
      `  added latency      median ${(median(proxied.latenciesMs) - median(direct.latenciesMs)).toFixed(3)} ms  p99 ${(percentile(proxied.latenciesMs, 99) - percentile(direct.latenciesMs, 99)).toFixed(3)} ms`,
    )
    console.log(`  throughput ratio   proxy / direct = ${(proxied.perSecond / direct.perSecond).toFixed(2)}`)
    console.log(`  proxy counted      ${counts.requests} calls, ${counts.forwarded} forwarded (incl. warm-up)`)
  } finally {
    if (child.exitCode === null) child.kill()
    await anvil.stop()
  }
}

type Result = { latenciesMs: number[]; perSecond: number; errors: number }

/** CLIENTS loops, each waiting for its answer before the next call: warm-up, then a measured phase. */
async function load(url: string): Promise<Result> {
  const target = new URL(url)
  const agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS })
  const once = () =>
    new Promise<void>((resolve, reject) => {
      const req = http.request(
        {
          hostname: target.hostname,
          port: target.port,
          path: '/',
          method: 'POST',
          agent,
          headers: { 'content-type': 'application/json', 'content-length': body.length },
        },
        (res) => {
          res.resume()
          res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`status ${res.statusCode}`))))
          res.on('error', reject)
        },
      )
      req.on('error', reject)
      req.end(body)
    })
  const run = async (ms: number, latencies: number[] | undefined) => {
    let errors = 0
    const until = performance.now() + ms
    await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        while (performance.now() < until) {
          const t0 = performance.now()
          try {
            await once()
            latencies?.push(performance.now() - t0)
          } catch {
            errors++
          }
        }
      }),
    )
    return errors
  }
  await run(WARMUP_MS, undefined)
  const latenciesMs: number[] = []
  const t0 = performance.now()
  const errors = await run(PHASE_MS, latenciesMs)
  const elapsedS = (performance.now() - t0) / 1000
  agent.destroy()
  return { latenciesMs, perSecond: latenciesMs.length / elapsedS, errors }
}
