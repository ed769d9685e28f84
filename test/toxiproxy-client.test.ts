import * as net from 'node:net'
import { type Latency, type Slicer, Toxiproxy, ToxiproxyError } from 'toxiproxy-node-client'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createToxiproxyClient, ToxiproxyApiError } from '../src/proxy/client.js'
import { type ControlServer, startControlServer } from '../src/proxy/server.js'
import { createPrng, type Prng } from '../src/util/prng.js'

// The npm toxiproxy-node-client, unchanged, against our control server: the API is
// compatible if that client's flows work and their effects show on real sockets.

let control: ControlServer
let echo: { address: string; close(): Promise<void> }
let toxiproxy: Toxiproxy
const sockets: net.Socket[] = []

beforeEach(async () => {
  control = await startControlServer({ listen: '127.0.0.1:0', prng: createPrng(1) })
  echo = await startEcho()
  toxiproxy = new Toxiproxy(control.url)
})

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy()
  await control.close()
  await echo.close()
})

async function startEcho() {
  const open = new Set<net.Socket>()
  const server = net.createServer((socket) => {
    open.add(socket)
    socket.on('close', () => open.delete(socket))
    socket.on('error', () => undefined)
    socket.pipe(socket)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    address: `127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy()
        server.close(() => resolve())
      }),
  }
}

async function connect(address: string): Promise<net.Socket> {
  const at = address.lastIndexOf(':')
  const socket = net.connect({ host: address.slice(0, at), port: Number(address.slice(at + 1)) })
  socket.setNoDelay(true)
  socket.on('error', () => undefined)
  sockets.push(socket)
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('error', reject)
  })
  return socket
}

/** Connects, sends `payload`, waits for the echo; returns the round trip in ms. */
async function echoThrough(address: string, payload = 'ping\n'): Promise<number> {
  const socket = await connect(address)
  const t0 = performance.now()
  await new Promise<void>((resolve, reject) => {
    let got = ''
    socket.on('data', (c: Buffer) => {
      got += c.toString()
      if (got === payload) resolve()
    })
    socket.once('close', () => reject(new Error(`closed after ${JSON.stringify(got)}`)))
    socket.write(payload)
  })
  socket.destroy()
  return performance.now() - t0
}

async function call(method: string, path: string, body?: string) {
  const response = await fetch(`${control.url}${path}`, { method, ...(body === undefined ? {} : { body, headers: { 'content-type': 'application/json' } }) })
  const text = await response.text()
  return { status: response.status, text, json: text === '' ? undefined : (JSON.parse(text) as unknown) }
}

describe('toxiproxy-node-client drives the proxies unchanged', () => {
  it('creates, lists, gets, updates and deletes a proxy', async () => {
    const proxy = await toxiproxy.createProxy({ name: 'echo', listen: '127.0.0.1:0', upstream: echo.address })
    expect(proxy.toJson()).toEqual({ name: 'echo', listen: expect.stringMatching(/^127\.0\.0\.1:\d+$/), upstream: echo.address, enabled: true })
    expect(await echoThrough(proxy.listen)).toBeLessThan(1_000)

    const all = await toxiproxy.getAll()
    expect(Object.keys(all)).toEqual(['echo'])
    expect(all.echo?.listen).toBe(proxy.listen)
    expect((await toxiproxy.get('echo')).toJson()).toEqual(proxy.toJson())

    const disabled = await proxy.update({ enabled: false, listen: proxy.listen, upstream: proxy.upstream })
    expect(disabled.enabled).toBe(false)
    await expect(connect(proxy.listen)).rejects.toMatchObject({ code: 'ECONNREFUSED' })
    const enabled = await disabled.update({ enabled: true, listen: proxy.listen, upstream: proxy.upstream })
    expect(enabled.toJson()).toEqual(proxy.toJson())
    expect(await echoThrough(proxy.listen)).toBeLessThan(1_000)

    await proxy.remove()
    expect(await toxiproxy.getAll()).toEqual({})
    await expect(toxiproxy.get('echo')).rejects.toThrow(new ToxiproxyError('Error', 'Request failed with status code 404'))
    await expect(connect(proxy.listen)).rejects.toMatchObject({ code: 'ECONNREFUSED' })
  })

  it('adds, reads, updates and removes a toxic, with real effect on a round trip', async () => {
    const proxy = await toxiproxy.createProxy({ name: 'echo', listen: '127.0.0.1:0', upstream: echo.address })
    const toxic = await proxy.addToxic<Latency>({ name: 'lag', type: 'latency', stream: 'downstream', toxicity: 1, attributes: { latency: 250, jitter: 0 } })
    expect(toxic.toJson()).toEqual({ name: 'lag', type: 'latency', stream: 'downstream', toxicity: 1, attributes: { latency: 250, jitter: 0 } })
    expect(await echoThrough(proxy.listen)).toBeGreaterThanOrEqual(250)

    expect((await proxy.getToxic<Latency>('lag')).toJson()).toEqual(toxic.toJson())
    const faster = await toxic.update({ ...toxic.toJson(), attributes: { latency: 60, jitter: 0 } })
    expect(faster.attributes).toEqual({ latency: 60, jitter: 0 })
    const ms = await echoThrough(proxy.listen)
    expect(ms).toBeGreaterThanOrEqual(60)
    expect(ms).toBeLessThan(250)

    await faster.remove()
    expect((await call('GET', '/proxies/echo/toxics')).json).toEqual([])
    expect(await echoThrough(proxy.listen)).toBeLessThan(250)
  })

  it('defaults a toxic to downstream, toxicity 1 and the name <type>_<stream>', async () => {
    const proxy = await toxiproxy.createProxy({ name: 'echo', listen: '127.0.0.1:0', upstream: echo.address })
    const toxic = await proxy.addToxic({ type: 'latency', attributes: { latency: 1, jitter: 0 } } as never)
    expect(toxic.toJson()).toEqual({ name: 'latency_downstream', type: 'latency', stream: 'downstream', toxicity: 1, attributes: { latency: 1, jitter: 0 } })
    const upstream = await proxy.addToxic({ type: 'bandwidth', stream: 'upstream' } as never)
    expect(upstream.name).toBe('bandwidth_upstream')
    // toxiproxy lists upstream toxics first.
    expect(((await call('GET', '/proxies/echo')).json as { toxics: { name: string }[] }).toxics.map((t) => t.name)).toEqual([
      'bandwidth_upstream',
      'latency_downstream',
    ])
  })

  it('reset enables every proxy and removes every toxic', async () => {
    const a = await toxiproxy.createProxy({ name: 'a', listen: '127.0.0.1:0', upstream: echo.address })
    const b = await toxiproxy.createProxy({ name: 'b', listen: '127.0.0.1:0', upstream: echo.address })
    await a.addToxic<Latency>({ name: 'lag', type: 'latency', stream: 'upstream', toxicity: 1, attributes: { latency: 500, jitter: 0 } })
    await b.update({ enabled: false, listen: b.listen, upstream: b.upstream })
    await toxiproxy.reset()
    const all = await toxiproxy.getAll()
    expect(all.b?.enabled).toBe(true)
    expect((await call('GET', '/proxies/a/toxics')).json).toEqual([])
    expect(await echoThrough(a.listen)).toBeLessThan(500)
    expect(await echoThrough(b.listen)).toBeLessThan(500)
  })

  it('populates proxies (201, { proxies }) and keeps an unchanged one as it is', async () => {
    const fixed = await getFreePort()
    const body = [
      { name: 'one', listen: `127.0.0.1:${fixed}`, upstream: echo.address },
      { name: 'two', listen: '127.0.0.1:0', upstream: echo.address },
    ]
    const proxies = await toxiproxy.populate(body)
    expect(Object.keys(proxies).sort()).toEqual(['one', 'two'])
    expect(proxies.one?.listen).toBe(`127.0.0.1:${fixed}`)
    expect(await echoThrough(proxies.two?.listen as string)).toBeLessThan(1_000)

    await proxies.one?.addToxic<Latency>({ name: 'lag', type: 'latency', stream: 'upstream', toxicity: 1, attributes: { latency: 1, jitter: 0 } })
    const raw = await call('POST', '/populate', JSON.stringify(body.slice(0, 1)))
    expect(raw.status).toBe(201)
    expect(raw.json).toEqual({ proxies: [expect.objectContaining({ name: 'one', listen: `127.0.0.1:${fixed}`, enabled: true })] })
    expect((raw.json as { proxies: { toxics: unknown[] }[] }).proxies[0]?.toxics).toHaveLength(1)
  })

  it('reports a version', async () => {
    expect(JSON.parse(await toxiproxy.getVersion())).toEqual({ version: expect.any(String) })
  })
})

// The flows of toxiproxy-node-client's own spec files (src/tests/*.spec.ts upstream; not in
// the npm package), restated here: each toxic type its specs add, with their attribute values,
// the 409s and 404s they expect by message, an upstream changed to a host that is never
// dialled, and populate with fixed ports.
describe("the client's own spec flows", () => {
  it('adds every toxic type with the attribute values its specs use, each read back as sent', async () => {
    const cases: [string, Record<string, number>][] = [
      ['latency', { latency: 1000, jitter: 100 }],
      ['bandwidth', { rate: 1000 }],
      ['slow_close', { delay: 1000 }],
      ['timeout', { timeout: 5000 }],
      // size_variation = average_size: toxiproxy accepts it, so must we.
      ['slicer', { average_size: 1000, delay: 1000, size_variation: 1000 }],
      ['reset_peer', { timeout: 1000 }],
      ['limit_data', { bytes: 42 }],
      ['noop', {}],
    ]
    for (const [type, attributes] of cases) {
      const proxy = await toxiproxy.createProxy({ name: `add-${type}-toxic-test`, listen: '127.0.0.1:0', upstream: 'localhost:6379' })
      const toxic = await proxy.addToxic({ type, attributes } as never)
      expect(toxic.toJson()).toEqual({ name: `${type}_downstream`, type, stream: 'downstream', toxicity: 1, attributes: expect.objectContaining(attributes) })
      await proxy.remove()
    }
    expect(await toxiproxy.getAll()).toEqual({})
  })

  it('a slicer with size_variation = average_size passes data intact', async () => {
    const proxy = await toxiproxy.createProxy({ name: 'sliced', listen: '127.0.0.1:0', upstream: echo.address })
    await proxy.addToxic<Slicer>({ name: 's', type: 'slicer', stream: 'downstream', toxicity: 1, attributes: { average_size: 4, size_variation: 4, delay: 100 } })
    expect(await echoThrough(proxy.listen, 'x'.repeat(500))).toBeLessThan(5_000)
  })

  it('CRUD for a toxic, duplicates get 409, a missing toxic 404', async () => {
    const proxy = await toxiproxy.createProxy({ name: 'remove-toxic-test', listen: '127.0.0.1:0', upstream: 'localhost:6379' })
    const toxic = await proxy.addToxic<Latency>({ type: 'latency', attributes: { latency: 1000, jitter: 100 } } as never)
    expect(toxic.name).toBe('latency_downstream')
    await expect(proxy.addToxic<Latency>({ type: 'latency', attributes: { latency: 1000, jitter: 100 } } as never)).rejects.toThrow('Request failed with status code 409')
    const updated = await toxic.update({ attributes: { latency: 12345, jitter: 42 } } as never)
    expect(updated.attributes).toEqual({ latency: 12345, jitter: 42 })
    await toxic.remove()
    await expect(proxy.getToxic('latency')).rejects.toThrow('Request failed with status code 404')
    await expect(toxiproxy.createProxy({ name: 'remove-toxic-test', listen: '127.0.0.1:0', upstream: 'localhost:6379' })).rejects.toThrow('Request failed with status code 409')
    await proxy.remove()
  })

  it('disables, then re-enables with a new upstream (never dialled), and populates fixed ports', async () => {
    const proxy = await toxiproxy.createProxy({ name: 'update-proxy-test', listen: '127.0.0.1:0', upstream: 'localhost:6379' })
    expect((await proxy.update({ enabled: false, listen: proxy.listen, upstream: proxy.upstream })).enabled).toBe(false)
    const moved = await proxy.update({ enabled: true, listen: proxy.listen, upstream: 'somehost:12345' })
    expect(moved.toJson()).toEqual({ name: 'update-proxy-test', listen: proxy.listen, upstream: 'somehost:12345', enabled: true })
    await moved.remove()
    const [p1, p2] = [await getFreePort(), await getFreePort()]
    await toxiproxy.populate([
      { name: 'get-all-test1', listen: `127.0.0.1:${p1}`, upstream: 'localhost:6379' },
      { name: 'get-all-test2', listen: `127.0.0.1:${p2}`, upstream: 'localhost:12345' },
    ])
    const all = await toxiproxy.getAll()
    expect(Object.fromEntries(Object.entries(all).map(([name, p]) => [name, [p.listen, p.upstream]]))).toEqual({
      'get-all-test1': [`127.0.0.1:${p1}`, 'localhost:6379'],
      'get-all-test2': [`127.0.0.1:${p2}`, 'localhost:12345'],
    })
    await toxiproxy.reset()
    expect(JSON.parse(await toxiproxy.getVersion())).toEqual({ version: '2.0.0+forkchaos.0.1.0' })
  })
})

describe('our own client', () => {
  it('runs the same flows', async () => {
    const client = createToxiproxyClient(control.url)
    const created = await client.createProxy({ name: 'echo', upstream: echo.address })
    expect(created.listen).toMatch(/^127\.0\.0\.1:\d+$/)
    expect(Object.keys(await client.listProxies())).toEqual(['echo'])
    expect((await client.getProxy('echo')).enabled).toBe(true)
    const toxic = await client.addToxic('echo', { type: 'latency', attributes: { latency: 120 } })
    expect(toxic).toEqual({ name: 'latency_downstream', type: 'latency', stream: 'downstream', toxicity: 1, attributes: { latency: 120, jitter: 0 } })
    expect(await echoThrough(created.listen)).toBeGreaterThanOrEqual(120)
    expect((await client.updateToxic('echo', 'latency_downstream', { toxicity: 0 })).toxicity).toBe(0)
    expect(await echoThrough(created.listen)).toBeLessThan(120)
    await client.removeToxic('echo', 'latency_downstream')
    expect((await client.updateProxy('echo', { enabled: false })).enabled).toBe(false)
    await client.reset()
    expect((await client.getProxy('echo')).enabled).toBe(true)
    expect((await client.populate([{ name: 'two', upstream: echo.address }])).map((p) => p.name)).toEqual(['two'])
    await client.deleteProxy('two')
    const error = await client.getProxy('two').catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ToxiproxyApiError)
    expect((error as ToxiproxyApiError).status).toBe(404)
    expect((error as ToxiproxyApiError).shortMessage).toBe('Toxiproxy API GET /proxies/two failed with 404: proxy not found: two')
  })
})

describe('bad input gets toxiproxy-shaped errors', () => {
  beforeEach(async () => {
    await toxiproxy.createProxy({ name: 'echo', listen: '127.0.0.1:0', upstream: echo.address })
  })

  it('malformed JSON → 400', async () => {
    const r = await call('POST', '/proxies', '{"name": "x", ')
    expect(r.status).toBe(400)
    expect(r.json).toEqual({ error: expect.stringMatching(/^malformed JSON body/), status: 400 })
  })

  it('unknown toxic type → 400 naming the type', async () => {
    const r = await call('POST', '/proxies/echo/toxics', JSON.stringify({ type: 'jam' }))
    expect(r).toMatchObject({ status: 400, json: { status: 400 } })
    expect((r.json as { error: string }).error).toMatchInlineSnapshot(
      `"invalid toxic type: Unknown toxic type "jam". Known: latency, bandwidth, slow_close, timeout, reset_peer, slicer, limit_data, noop, loss, partition."`,
    )
  })

  it('wrong attribute type → 400 naming the field', async () => {
    const r = await call('POST', '/proxies/echo/toxics', JSON.stringify({ type: 'latency', attributes: { latency: 'abc' } }))
    expect(r.json).toEqual({ error: 'bad request body: "latency" must be an integer between 0 and 3600000. Got "abc".', status: 400 })
    const update = await call('POST', '/proxies/echo/toxics/nope', JSON.stringify({ attributes: { latency: 1 } }))
    expect(update.json).toEqual({ error: 'toxic not found: nope', status: 404 })
  })

  it('missing fields → 400 as toxiproxy words them', async () => {
    expect((await call('POST', '/proxies', JSON.stringify({ name: 'x' }))).json).toEqual({ error: 'missing required field: upstream', status: 400 })
    expect((await call('POST', '/proxies', JSON.stringify({ upstream: echo.address }))).json).toEqual({ error: 'missing required field: name', status: 400 })
    expect((await call('POST', '/populate', JSON.stringify([{ name: 'x' }]))).json).toEqual({ error: 'missing required field: upstream at proxy 1', status: 400 })
  })

  it('unknown proxy → 404, duplicates → 409', async () => {
    expect((await call('GET', '/proxies/nope')).json).toEqual({ error: 'proxy not found: nope', status: 404 })
    expect((await call('DELETE', '/proxies/nope')).status).toBe(404)
    expect((await call('POST', '/proxies/nope/toxics', JSON.stringify({ type: 'latency' }))).status).toBe(404)
    const dup = await call('POST', '/proxies', JSON.stringify({ name: 'echo', listen: '127.0.0.1:0', upstream: echo.address }))
    expect(dup.json).toEqual({ error: 'proxy already exists: echo', status: 409 })
    await expect(toxiproxy.createProxy({ name: 'echo', listen: '127.0.0.1:0', upstream: echo.address })).rejects.toThrow('Request failed with status code 409')
    expect((await call('POST', '/proxies/echo/toxics', JSON.stringify({ type: 'latency' }))).status).toBe(200)
    expect((await call('POST', '/proxies/echo/toxics', JSON.stringify({ type: 'latency' }))).json).toEqual({
      error: 'toxic already exists: latency_downstream',
      status: 409,
    })
  })

  it('a listen port in use → 409', async () => {
    const taken = (await call('GET', '/proxies/echo')).json as { listen: string }
    const r = await call('POST', '/proxies', JSON.stringify({ name: 'clash', listen: taken.listen, upstream: echo.address }))
    expect(r.status).toBe(409)
    expect((r.json as { error: string }).error).toMatch(/^listen failed: .*EADDRINUSE/)
  })
})

describe('fuzz', () => {
  it('2,000 random bodies never crash the server: always a 2xx/4xx JSON answer, and the proxy still passes data', async () => {
    const seed = Number(process.env.FUZZ_SEED ?? 2_024)
    const prng = createPrng(seed)
    const main = await toxiproxy.createProxy({ name: 'main', listen: '127.0.0.1:0', upstream: echo.address })
    const statuses = new Map<number, number>()
    for (let i = 0; i < 2_000; i++) {
      const { method, path, body } = fuzzRequest(prng, echo.address)
      const r = await fetch(`${control.url}${path}`, { method, ...(body === undefined ? {} : { body }) })
      const text = await r.text()
      const where = `request ${i} (replay: FUZZ_SEED=${seed} npx vitest run test/toxiproxy-client.test.ts): ${method} ${path} ${body ?? ''}`
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1)
      expect(r.status < 300 || (r.status >= 400 && r.status < 500), `${where} → ${r.status} ${text}`).toBe(true)
      if (r.status === 204) continue
      const json = JSON.parse(text) as unknown
      if (r.status >= 400) expect(json, where).toEqual({ error: expect.any(String), status: r.status })
    }
    // Both outcomes happened: the fuzz reached past validation, and validation refused things.
    expect([...statuses.keys()].some((s) => s < 300)).toBe(true)
    expect([...statuses.keys()].some((s) => s >= 400)).toBe(true)
    expect((await call('POST', '/reset')).status).toBe(204)
    expect(await echoThrough(main.listen, 'still here\n')).toBeLessThan(1_000)
  })
})

async function getFreePort(): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as net.AddressInfo).port
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

const pick = <T>(prng: Prng, xs: readonly T[]): T => xs[prng.int(0, xs.length - 1)] as T

// Names and values the fuzz draws from. Strings never contain ':' except the listen pool's,
// so nothing binds beyond loopback; 'main' is only ever a target of toxic endpoints.
const proxyNames = ['f1', 'f2', 'f3', 'main', '', 'x'.repeat(300), 'a/b', 'ünï']
const toxicNames = ['t1', 't2', 'latency_downstream', 'loss_upstream', '']
const keys = ['name', 'listen', 'upstream', 'enabled', 'type', 'stream', 'toxicity', 'attributes', 'latency', 'jitter', 'rate', 'delay', 'timeout', 'bytes', 'average_size', 'size_variation', 'probability', 'framing', 'other']
const listens = ['127.0.0.1:0', '127.0.0.1:0', 'localhost:0', '127.0.0.1:99999', 'nowhere', '127.0.0.1:-1', '[::1]:0']
const types = ['latency', 'bandwidth', 'slow_close', 'timeout', 'reset_peer', 'slicer', 'limit_data', 'loss', 'partition', 'jam', '']
const strings = ['', 'upstream', 'downstream', 'newline', 'length32', 'abc', '💥', '\u0000', 'null', '{']

function fuzzValue(prng: Prng, depth: number, upstream: string): unknown {
  switch (prng.int(0, depth > 2 ? 4 : 6)) {
    case 0:
      return null
    case 1:
      return prng.next() < 0.5
    case 2:
      return pick(prng, [0, 1, -1, 0.5, 1.5, 1e9, -1e300, 2 ** 53, 100, 10_000])
    case 3:
      return pick(prng, [...strings, ...types, ...listens, upstream])
    case 4:
      return pick(prng, [[], {}, 'x'])
    case 5:
      return Array.from({ length: prng.int(0, 3) }, () => fuzzValue(prng, depth + 1, upstream))
    default:
      return Object.fromEntries(Array.from({ length: prng.int(0, 5) }, () => [pick(prng, keys), fuzzValue(prng, depth + 1, upstream)]))
  }
}

/** A body that is valid but for (at most) one field, so the fuzz reaches deep into handlers. */
function nearlyValid(prng: Prng, upstream: string, kind: 'proxy' | 'toxic' | 'update'): Record<string, unknown> {
  const base: Record<string, unknown> =
    kind === 'proxy'
      ? { name: pick(prng, proxyNames.filter((n) => n !== 'main')), listen: pick(prng, listens), upstream, enabled: prng.next() < 0.8 }
      : kind === 'toxic'
        ? { name: pick(prng, toxicNames), type: pick(prng, types), stream: pick(prng, ['upstream', 'downstream']), toxicity: prng.next(), attributes: {} }
        : { toxicity: prng.next(), attributes: {} }
  if (kind !== 'proxy') {
    const attributes = base.attributes as Record<string, unknown>
    for (let k = prng.int(0, 3); k > 0; k--) attributes[pick(prng, keys.slice(8))] = prng.next() < 0.8 ? prng.int(0, 300) : fuzzValue(prng, 2, upstream)
  }
  if (prng.next() < 0.5) base[pick(prng, keys)] = fuzzValue(prng, 1, upstream)
  return base
}

function fuzzRequest(prng: Prng, upstream: string): { method: string; path: string; body: string | undefined } {
  const proxy = pick(prng, proxyNames)
  const someProxy = encodeURIComponent(proxy === 'main' ? 'f1' : proxy)
  const toxicTarget = encodeURIComponent(pick(prng, ['main', 'f1', 'f2', 'nope']))
  const toxic = encodeURIComponent(pick(prng, toxicNames))
  const route = prng.int(0, 9)
  let method = 'POST'
  let path: string
  let kind: 'proxy' | 'toxic' | 'update' | 'populate' | 'none'
  if (route <= 1) [path, kind] = ['/proxies', 'proxy']
  else if (route === 2) [path, kind] = ['/populate', 'populate']
  else if (route === 3) [method, path, kind] = [pick(prng, ['POST', 'PATCH']), `/proxies/${someProxy}`, 'proxy']
  else if (route <= 5) [path, kind] = [`/proxies/${toxicTarget}/toxics`, 'toxic']
  else if (route === 6) [method, path, kind] = [pick(prng, ['POST', 'PATCH']), `/proxies/${toxicTarget}/toxics/${toxic}`, 'update']
  else if (route === 7) [method, path, kind] = [pick(prng, ['DELETE', 'GET']), pick(prng, [`/proxies/${someProxy}`, `/proxies/${toxicTarget}/toxics/${toxic}`]), 'none']
  else if (route === 8) [method, path, kind] = [pick(prng, ['POST', 'GET', 'PUT']), pick(prng, ['/reset', '/version', '/proxies', '/nowhere']), 'none']
  else [path, kind] = [pick(prng, ['/proxies', '/populate', `/proxies/${toxicTarget}/toxics`]), 'proxy']
  if (kind === 'none' || method === 'GET' || method === 'DELETE') return { method, path, body: undefined }
  const roll = prng.next()
  let body: string
  if (roll < 0.1) body = pick(prng, ['{', '[1,', '"unterminated', 'nul', '{"a":1}}', '\u0000\u0001', 'NaN', '1e999999'])
  else if (roll < 0.55)
    body = JSON.stringify(
      kind === 'populate' ? Array.from({ length: prng.int(0, 3) }, () => nearlyValid(prng, upstream, 'proxy')) : nearlyValid(prng, upstream, kind),
    )
  else body = JSON.stringify(fuzzValue(prng, 0, upstream)) ?? 'null'
  return { method, path, body }
}
