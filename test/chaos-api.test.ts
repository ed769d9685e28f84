import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
// @ts-expect-error: the package ships no types
import parsePrometheusTextFormat from 'parse-prometheus-text-format'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createMetrics } from '../src/metrics/metrics.js'
import { createChaosApi } from '../src/proxy/chaos-api.js'
import { type RpcProxy, startRpcProxy } from '../src/proxy/jsonrpc/proxy.js'
import { type ControlServer, startControlServer } from '../src/proxy/server.js'
import { createProxyRegistry } from '../src/proxy/tcp/registry.js'
import { type AnvilInstance, startAnvil } from '../src/targets/anvil.js'
import { createPrng } from '../src/util/prng.js'

let anvil: AnvilInstance
let proxy: RpcProxy
let server: ControlServer
let chaos: ReturnType<typeof createChaosApi>

beforeAll(async () => {
  anvil = await startAnvil({ label: 'chaos-api' })
  const metrics = createMetrics()
  proxy = await startRpcProxy({ upstream: anvil.url, prng: createPrng(1), name: 'anvil', onRequest: (e) => metrics.observeRpc('anvil', e) })
  metrics.watchRpcProxy('anvil', () => proxy.stats().requests)
  const tcp = createProxyRegistry({ prng: createPrng(2) })
  chaos = createChaosApi({ tcp, rpc: new Map([['anvil', proxy]]), metrics, prng: createPrng(3) })
  server = await startControlServer({ listen: '127.0.0.1:0', proxies: tcp, registerRoutes: [chaos.register] })
})
afterAll(async () => {
  await chaos?.revertAll()
  await server?.close()
  await proxy?.close()
  await anvil?.stop()
})

const api = async (method: string, route: string, body?: unknown) => {
  const res = await fetch(`${server.url}${route}`, { method, ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}) })
  const text = await res.text()
  return { status: res.status, body: text ? JSON.parse(text) : undefined }
}
const timedCall = async (url: string) => {
  const t = performance.now()
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}' })
  expect((await res.json()).result).toBe('0x7a69')
  return performance.now() - t
}

describe('chaos API', () => {
  it('injects an rpc fault that takes effect, lists it, reverts it with an MTTR', async () => {
    const injected = await api('POST', '/chaos/inject', { type: 'rpc.latency', target: 'anvil', params: { latencyMs: 150 } })
    expect(injected.status).toBe(201)
    expect(injected.body).toMatchObject({ id: expect.any(String), tStart: expect.any(Number) })
    expect(await timedCall(proxy.url)).toBeGreaterThanOrEqual(140)
    const listed = await api('GET', '/chaos/experiments')
    expect(listed.body.active.map((e: { id: string }) => e.id)).toContain(injected.body.id)
    const reverted = await api('POST', `/chaos/revert/${injected.body.id}`)
    expect(reverted.status).toBe(200)
    expect(reverted.body).toMatchObject({ tStop: expect.any(Number), mttrMs: expect.any(Number), verdict: 'held' })
    expect(await timedCall(proxy.url)).toBeLessThan(140)
    expect((await api('GET', '/chaos/experiments')).body.history.at(-1)).toMatchObject({ id: injected.body.id, verdict: 'held' })
  })

  it('injects a TCP toxic on a toxiproxy-API proxy and reverts it on schedule', async () => {
    const created = await api('POST', '/proxies', { name: 'anvil-tcp', listen: '127.0.0.1:0', upstream: `127.0.0.1:${anvil.port}` })
    expect(created.status).toBe(201)
    const url = `http://${created.body.listen}`
    const injected = await api('POST', '/chaos/inject', { type: 'tcp.latency', target: 'anvil-tcp', params: { latency: 200, stream: 'downstream' }, durationMs: 600 })
    expect(injected.status).toBe(201)
    expect((await api('GET', '/chaos/experiments')).body.schedule.map((e: { id: string }) => e.id)).toContain(injected.body.id)
    expect(await timedCall(url)).toBeGreaterThanOrEqual(190)
    await new Promise((r) => setTimeout(r, 900))
    const { body } = await api('GET', '/chaos/experiments')
    expect(body.active.map((e: { id: string }) => e.id)).not.toContain(injected.body.id)
    expect(body.history.find((e: { id: string }) => e.id === injected.body.id)?.verdict).toBe('held')
    expect(await timedCall(url)).toBeLessThan(190)
  })

  it('answers bad input with 4xx naming the field, and keeps working', async () => {
    expect(await api('POST', '/chaos/inject', '{not json')).toMatchObject({ status: 400, body: { error: expect.stringMatching(/malformed JSON/) } })
    expect(await api('POST', '/chaos/inject', { type: 'rpc.explode', target: 'anvil' })).toMatchObject({ status: 400, body: { error: expect.stringMatching(/unknown fault type "rpc.explode"; expected one of rpc.latency/) } })
    expect(await api('POST', '/chaos/inject', { type: 'rpc.latency', target: 'anvil', params: { latencyMs: 'slow' } })).toMatchObject({ status: 400, body: { error: expect.stringMatching(/`latencyMs` must be a number/) } })
    expect(await api('POST', '/chaos/inject', { type: 'rpc.latency', target: 'nope', params: { latencyMs: 1 } })).toMatchObject({ status: 404 })
    expect(await api('POST', '/chaos/inject', { type: 'tcp.latency', target: 'anvil-tcp', params: { latency: -5 } })).toMatchObject({ status: 400, body: { error: expect.stringMatching(/latency/) } })
    expect(await api('POST', '/chaos/revert/x999')).toMatchObject({ status: 404 })
    expect((await api('GET', '/chaos/experiments')).body.active).toEqual([])
    expect(await timedCall(proxy.url)).toBeLessThan(1_000)
  })

  it('serves /metrics that a Prometheus text parser reads, with per-method counts and fault windows', async () => {
    for (let i = 0; i < 5; i++) await timedCall(proxy.url)
    const res = await fetch(`${server.url}/metrics`)
    expect(res.headers.get('content-type')).toMatch(/text\/plain/)
    const families = parsePrometheusTextFormat(await res.text()) as { name: string; metrics: { labels?: Record<string, string>; value?: string; buckets?: unknown }[] }[]
    const byName = new Map(families.map((f) => [f.name, f]))
    const requests = byName.get('forkchaos_rpc_requests_total')?.metrics.find((m) => m.labels?.method === 'eth_chainId' && m.labels?.outcome === 'ok')
    expect(Number(requests?.value)).toBeGreaterThanOrEqual(5)
    expect(byName.get('forkchaos_rpc_request_duration_seconds')?.metrics.length).toBeGreaterThan(0)
    const windows = byName.get('forkchaos_fault_window')?.metrics ?? []
    expect(windows.some((m) => m.labels?.type === 'rpc.latency' && m.value === '0')).toBe(true)
    expect(byName.get('forkchaos_rpc_in_flight_requests')?.metrics[0]?.value).toBe('0')
  })
})

describe('forkchaos proxy (CLI)', () => {
  it('starts from a config, serves the APIs, and on SIGINT reverts active faults and exits 130', async () => {
    const root = fileURLToPath(new URL('..', import.meta.url))
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forkchaos-proxy-'))
    const config = path.join(dir, 'proxy.yaml')
    fs.writeFileSync(config, `rpc:\n  - { name: anvil, upstream: "${anvil.url}" }\n`)
    const child = spawn(process.execPath, ['bin/forkchaos.js', 'proxy', '--listen', '127.0.0.1:0', '--config', config, '--seed', '5'], { cwd: root })
    let out = ''
    child.stdout.on('data', (c: Buffer) => (out += c.toString()))
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
    try {
      const deadline = Date.now() + 20_000
      while (!/Ctrl-C/.test(out) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
      const control = /control (http:\/\/[\d.:]+)/.exec(out)?.[1] as string
      const rpcUrl = /rpc anvil\s+(http:\/\/[\d.:]+)/.exec(out)?.[1] as string
      const inj = await fetch(`${control}/chaos/inject`, { method: 'POST', body: JSON.stringify({ type: 'rpc.error', target: 'anvil', params: { http: 503 } }) })
      expect(inj.status).toBe(201)
      expect((await fetch(rpcUrl, { method: 'POST', body: '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}' })).status).toBe(503)
      child.kill('SIGINT')
      expect(await exited).toBe(130)
    } finally {
      child.kill('SIGKILL')
    }
  })

  it('refuses a bad config with exit 2, naming the file and the field', async () => {
    const root = fileURLToPath(new URL('..', import.meta.url))
    const config = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'forkchaos-proxy-')), 'bad.yaml')
    fs.writeFileSync(config, 'rpc:\n  - { name: a, upstream: "ftp://x" }\n')
    const child = spawn(process.execPath, ['bin/forkchaos.js', 'proxy', '--listen', '127.0.0.1:0', '--config', config], { cwd: root })
    let err = ''
    child.stderr.on('data', (c: Buffer) => (err += c.toString()))
    expect(await new Promise((r) => child.once('exit', r))).toBe(2)
    expect(err).toContain(`${config}: \`rpc[0].upstream\` must be an http(s) URL. Got \`"ftp://x"\`.`)
  })
})
