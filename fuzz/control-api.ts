/**
 * Fuzzes the control server of `forkchaos proxy` (toxiproxy API, chaos API, /metrics) through
 * the CLI's own code path (`startProxyServer`), in-process, on 127.0.0.1 port 0, with one TCP
 * proxy and one JSON-RPC proxy from a config, as a user would start it.
 *
 * Requests come from fast-check with the run's seed: methods, paths with odd escapes and
 * segments, and bodies — random JSON, deep nesting, huge and fractional numbers, wrong types,
 * malformed text, oversized bodies, and proxy / toxic / inject bodies mutated from valid ones.
 * They go one after another over one keep-alive connection (so a connection left dirty by an
 * answer shows up on the next request).
 *
 * Counted: crashes (a 5xx, an error answer without a JSON `{error, status}` body, a reset
 * connection, an unhandled rejection), hangs (no answer within 2 s), and accepted-but-invalid
 * (a 2xx for a request that breaks a limit the server states: name rule, attribute bounds and
 * integers, toxicity, durationMs, params size, JSON depth, body size, browser agent). The oracle
 * below restates those limits on its own, from the documentation, rather than importing them.
 *
 * Only loopback is ever touched: every `listen` and `upstream` the fuzz sends comes from a pool
 * of 127.0.0.1 / localhost / [::1] addresses or is malformed, and no generated string holds a
 * `:`, so nothing can name another host. At the end the server is stopped and every listener a
 * proxy ever reported is checked to be closed.
 */
import * as http from 'node:http'
import * as net from 'node:net'
import fc from 'fast-check'
import { startProxyServer } from '../src/cli/commands/proxy.js'
import type { FuzzTally, FuzzTarget } from './types.js'
import { jsonDepth } from './oracle/json.js'

/** An answer slower than this is a hang. */
const HANG_MS = 2_000
const EXAMPLES_MAX = 8

// ─── The oracle: the limits the server states, restated ───────────────────────────────────────
const NAME = /^[A-Za-z0-9_.-]{1,64}$/
const validName = (v: unknown) => typeof v === 'string' && NAME.test(v) && v !== '.' && v !== '..'
const HOUR_MS = 3_600_000
/** Toxic attributes: [min, max, integer]. */
const ATTRIBUTES: Record<string, Record<string, [number, number, boolean] | readonly string[]>> = {
  latency: { latency: [0, HOUR_MS, true], jitter: [0, HOUR_MS, true] },
  bandwidth: { rate: [0, 10_000_000, true] },
  slow_close: { delay: [0, HOUR_MS, true] },
  timeout: { timeout: [0, HOUR_MS, true] },
  reset_peer: { timeout: [0, HOUR_MS, true] },
  slicer: { average_size: [1, 1_048_576, true], size_variation: [0, 1_048_576, true], delay: [0, 10_000_000, true] },
  limit_data: { bytes: [0, 2 ** 40, true] },
  noop: {},
  loss: { probability: [0, 1, false], framing: ['newline', 'length32'] },
  partition: {},
}
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/** Why a toxic body must be refused, or undefined when it may be accepted. */
function toxicViolation(body: unknown, requireType = true): string | undefined {
  if (!isObject(body)) return 'not an object'
  // null means "the default" (downstream), as a JSON null leaves toxiproxy's default in place.
  if (body.stream !== undefined && body.stream !== null && body.stream !== 'upstream' && body.stream !== 'downstream') return 'stream'
  if (body.name !== undefined && body.name !== '' && !validName(body.name)) return 'name'
  if (requireType && (typeof body.type !== 'string' || !Object.hasOwn(ATTRIBUTES, body.type))) return 'type'
  if (body.toxicity !== undefined && !(typeof body.toxicity === 'number' && body.toxicity >= 0 && body.toxicity <= 1)) return 'toxicity'
  if (body.attributes !== undefined && body.attributes !== null && !isObject(body.attributes)) return 'attributes'
  return attributesViolation(String(body.type), (body.attributes ?? {}) as Record<string, unknown>)
}
function attributesViolation(type: string, attributes: Record<string, unknown>): string | undefined {
  const specs = ATTRIBUTES[type]
  if (!specs) return undefined
  for (const [key, value] of Object.entries(attributes)) {
    const spec = Object.hasOwn(specs, key) ? specs[key] : undefined
    if (!spec) return `unknown attribute ${key}`
    if (value === undefined) continue
    if (typeof spec[0] === 'string') {
      if (!(spec as readonly string[]).includes(value as string)) return key
      continue
    }
    const [min, max, integer] = spec as [number, number, boolean]
    if (typeof value !== 'number' || !(value >= min && value <= max) || (integer && !Number.isInteger(value))) return `${key}=${JSON.stringify(value)}`
  }
  return undefined
}
function injectViolation(body: unknown): string | undefined {
  if (!isObject(body)) return 'not an object'
  for (const key of Object.keys(body)) if (!['type', 'target', 'params', 'durationMs'].includes(key)) return `unknown field ${key}`
  const { durationMs, params = {}, type } = body
  if (durationMs !== undefined && !(typeof durationMs === 'number' && Number.isInteger(durationMs) && durationMs >= 1 && durationMs <= 86_400_000)) return 'durationMs'
  if (!isObject(params)) return 'params'
  if (Buffer.byteLength(JSON.stringify(params)) > 4_096) return 'params size'
  if (typeof type === 'string' && type.startsWith('tcp.')) {
    const { stream, toxicity, ...attributes } = params
    return toxicViolation({ type: type.slice(4), stream, toxicity, attributes })
  }
  return undefined
}

// ─── Generators ────────────────────────────────────────────────────────────────────────────────
/** Strings without ':' (so none is a host:port), with odd characters and lone surrogates. */
const oddString = fc.oneof(
  fc.string({ maxLength: 12 }).map((s) => s.replaceAll(':', '')),
  fc.constantFrom('', '.', '..', '%', '%ZZ', '\ud800', '💥', 'a/b', 'a b', '\u0000', 'x'.repeat(65), 'upstream', 'downstream', 'latency', 'null', '{', '__proto__', 'constructor'),
)
const oddNumber = fc.oneof(
  fc.constantFrom(0, 1, -1, 0.5, 1.5, 100, 1e9, 1e300, -1e300, 2 ** 53 + 2, 3_600_000, 3_600_001, 1_048_576, 1_048_577, 2 ** 40, 2 ** 40 + 1, 86_400_000, 86_400_001, 10_000_001),
  fc.integer({ min: -10, max: 5_000 }),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
)
const json: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    oddNumber,
    oddString,
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(oddString, tie('value'), { maxKeys: 4 }),
  ),
})).value

const names = fc.oneof(fc.constantFrom('base', 'p1', 'p2', 'p3', 'a.b-c_9', 'nope'), oddString)
const toxicTypes = fc.oneof(fc.constantFrom(...Object.keys(ATTRIBUTES)), oddString)
const streams = fc.constantFrom('upstream', 'downstream', undefined, 'sideways')

/** A valid toxic of each type, then (maybe) one field replaced or added. */
function toxicBody(): fc.Arbitrary<Record<string, unknown>> {
  const attrs = fc.dictionary(fc.constantFrom('latency', 'jitter', 'rate', 'delay', 'timeout', 'bytes', 'average_size', 'size_variation', 'probability', 'framing', 'extra'), fc.oneof(oddNumber, fc.integer({ min: 0, max: 500 }), json), { maxKeys: 3 })
  return fc
    .record({
      name: fc.option(fc.oneof(fc.constantFrom('t1', 't2', 'latency_downstream'), oddString), { nil: undefined }),
      type: toxicTypes,
      stream: streams,
      toxicity: fc.option(fc.oneof(fc.double({ min: 0, max: 1, noNaN: true }), oddNumber), { nil: undefined }),
      attributes: fc.option(attrs, { nil: undefined }),
    })
    .chain((base) => mutate(base))
}
/** A toxic type with in-range attributes (often at a bound), the basis for mutation. */
const validToxic = fc.constantFrom(...Object.keys(ATTRIBUTES)).chain((type) =>
  fc
    .record(
      Object.fromEntries(
        Object.entries(ATTRIBUTES[type] ?? {}).map(([key, spec]) => [
          key,
          typeof spec[0] === 'string'
            ? fc.constantFrom(...(spec as readonly string[]))
            : (() => {
                const [min, max, integer] = spec as [number, number, boolean]
                // Small values keep the proxy fast; bounds test the edges.
                return fc.oneof(integer ? fc.integer({ min, max: Math.min(max, min + 300) }) : fc.double({ min, max, noNaN: true }), fc.constantFrom(min, max))
              })(),
        ]),
      ),
      { requiredKeys: [] },
    )
    .map((attributes) => ({ type, attributes })),
)

/** `base`, or base with one key set to a random value. */
function mutate(base: Record<string, unknown>): fc.Arbitrary<Record<string, unknown>> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.constant(base) },
    fc.tuple(fc.constantFrom(...Object.keys(base), 'extra', 'name', 'enabled'), json).map(([key, value]) => ({ ...base, [key]: value })),
  )
}

type Spec = {
  method: string
  path: string
  /** `oversize:<n>` stands for n bytes built at send time. */
  body?: string
  browser?: boolean
  /** Why the server must refuse this request, when the oracle knows. */
  mustRefuse?: string
}

function requests(pools: { upstreams: string[]; listens: string[] }): fc.Arbitrary<Spec> {
  const upstream = fc.oneof(fc.constantFrom(...pools.upstreams), fc.constantFrom('nowhere', '127.0.0.1:0', '127.0.0.1:99999', ''), fc.constant(undefined))
  const listen = fc.oneof(fc.constantFrom(...pools.listens), fc.constantFrom('nowhere', '127.0.0.1:-1', '127.0.0.1:65536'), fc.constant(undefined))
  const enc = (name: string) => {
    try {
      return encodeURIComponent(name)
    } catch {
      return '%ED%A0%80'
    }
  }
  const proxyBody = fc.record({ name: names, listen, upstream, enabled: fc.option(fc.boolean(), { nil: undefined }) }).chain(mutate)
  const validInject = fc
    .tuple(validToxic, fc.constantFrom('base', 'p1'), streams, fc.option(fc.integer({ min: 1, max: 500 }), { nil: undefined }))
    .map(([toxic, target, stream, durationMs]) => ({ type: `tcp.${toxic.type}`, target, params: { ...toxic.attributes, ...(stream ? { stream } : {}) }, ...(durationMs ? { durationMs } : {}) }))
    .chain(mutate)
  const injectBody = fc
    .record({
      type: fc.oneof(
        toxicTypes.map((t) => `tcp.${t}`),
        fc.constantFrom('rpc.latency', 'rpc.error', 'rpc.timeout', 'rpc.stale', 'rpc.nope'),
      ),
      target: fc.constantFrom('base', 'rpc', 'p1', 'nope', ''),
      params: fc.oneof(
        fc.dictionary(fc.constantFrom('latency', 'jitter', 'stream', 'toxicity', 'rate', 'average_size', 'size_variation', 'probability', 'latencyMs', 'http', 'code', 'blocks', 'methods', 'bytes'), fc.oneof(oddNumber, json), { maxKeys: 3 }),
        json,
      ),
      durationMs: fc.option(fc.oneof(fc.integer({ min: 1, max: 300 }), oddNumber), { nil: undefined }),
    })
    .chain(mutate)
  const oddPath = fc
    .array(fc.constantFrom('proxies', 'toxics', 'chaos', 'inject', 'revert', 'experiments', 'base', 'x1', '', '.', '..', '%ZZ', '%2F', '%ED%A0%80', '%00', '%', 'a%2', '%C3%A9', '~'), { maxLength: 5 })
    .map((parts) => `/${parts.join('/')}`)
  const bodyText = fc.oneof(
    json.map((v) => JSON.stringify(v) ?? 'null'),
    fc.integer({ min: 30, max: 60_000 }).chain((depth) => fc.constantFrom('[', '{"a":').map((open) => open.repeat(depth) + (open === '[' ? ']' : '}').repeat(depth))),
    fc.constantFrom('{', '[1,', '"unterminated', 'nul', '{"a":1}}', '\u0000', 'NaN', '1e999999', '{"name":"x"'),
    fc.integer({ min: 1_048_577, max: 1_300_000 }).map((n) => `oversize:${n}`),
  )
  const toxicPath = names.map((p) => `/proxies/${enc(p)}/toxics`)
  const spec: fc.Arbitrary<Spec> = fc.oneof(
    { weight: 3, arbitrary: proxyBody.map((b) => ({ method: 'POST', path: '/proxies', body: JSON.stringify(b) })) },
    fc.array(proxyBody, { maxLength: 3 }).map((b) => ({ method: 'POST', path: '/populate', body: JSON.stringify(b) })),
    fc.tuple(fc.constantFrom('GET', 'DELETE', 'POST', 'PATCH'), names, proxyBody).map(([method, p, b]) => ({ method, path: `/proxies/${enc(p)}`, ...(method === 'POST' || method === 'PATCH' ? { body: JSON.stringify(b) } : {}) })),
    { weight: 4, arbitrary: fc.tuple(toxicPath, toxicBody()).map(([path, b]) => ({ method: 'POST', path, body: JSON.stringify(b) })) },
    fc.tuple(fc.constantFrom('GET', 'DELETE', 'POST', 'PATCH'), names, fc.oneof(fc.constantFrom('t1', 't2', 'latency_downstream', 'noop_downstream'), oddString), toxicBody()).map(([method, p, t, b]) => ({
      method,
      path: `/proxies/${enc(p)}/toxics/${enc(t)}`,
      ...(method === 'POST' || method === 'PATCH' ? { body: JSON.stringify({ toxicity: b.toxicity, attributes: b.attributes }) } : {}),
    })),
    { weight: 4, arbitrary: injectBody.map((b) => ({ method: 'POST', path: '/chaos/inject', body: JSON.stringify(b) })) },
    { weight: 4, arbitrary: validInject.map((b) => ({ method: 'POST', path: '/chaos/inject', body: JSON.stringify(b) })) },
    {
      weight: 3,
      arbitrary: fc
        .tuple(fc.constantFrom('base', 'p1', 'p2'), validToxic, fc.option(fc.constantFrom('t1', 't2'), { nil: undefined }), streams)
        .chain(([p, toxic, name, stream]) => mutate({ ...toxic, ...(name ? { name } : {}), ...(stream ? { stream } : {}) }).map((b) => ({ method: 'POST', path: `/proxies/${p}/toxics`, body: JSON.stringify(b) }))),
    },
    fc
      .tuple(fc.constantFrom('p1', 'p2', 'p3'), fc.constantFrom(...pools.listens), fc.constantFrom(...pools.upstreams))
      .map(([name, l, u]) => ({ method: 'POST', path: '/proxies', body: JSON.stringify({ name, listen: l, upstream: u }) })),
    fc.oneof(fc.integer({ min: 1, max: 60 }).map((n) => `x${n}`), oddString).map((id) => ({ method: 'POST', path: `/chaos/revert/${enc(id)}` })),
    fc.constantFrom('/chaos/experiments', '/metrics', '/proxies', '/version', '/chaos/experiments/x1').map((path) => ({ method: 'GET', path })),
    fc.constantFrom('/reset').map((path) => ({ method: 'POST', path })),
    fc.tuple(fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'), oddPath, fc.option(bodyText, { nil: undefined })).map(([method, path, body]) => ({ method, path, ...(body !== undefined && method !== 'HEAD' ? { body } : {}) })),
    fc.tuple(fc.constantFrom('/proxies', '/populate', '/chaos/inject', '/proxies/base/toxics', '/proxies/base', '/proxies/base/toxics/t1'), bodyText).map(([path, body]) => ({ method: 'POST', path, body })),
  )
  // About one request in 30 comes from a browser (weights, not a biased number draw).
  const browser = fc.oneof({ weight: 1, arbitrary: fc.constant(true) }, { weight: 29, arbitrary: fc.constant(false) })
  return fc.tuple(spec, browser).map(([s, fromBrowser]) => withOracle(fromBrowser ? { ...s, browser: true } : s))
}

/** Fills `mustRefuse` where a stated limit decides it. */
function withOracle(spec: Spec): Spec {
  const refuse = (why: string | undefined): Spec => (why ? { ...spec, mustRefuse: why } : spec)
  if (spec.browser) return refuse('browser user agent')
  const body = spec.body
  if (body?.startsWith('oversize:')) return refuse('body over 1 MiB')
  if (body !== undefined && jsonDepth(body) > 32) return refuse('JSON deeper than 32')
  let parsed: unknown
  try {
    parsed = body === undefined || body.trim() === '' ? undefined : JSON.parse(body)
  } catch {
    return spec.method === 'POST' || spec.method === 'PATCH' ? refuse('malformed JSON') : spec
  }
  if (spec.method !== 'POST' && spec.method !== 'PATCH') return spec
  if (spec.path === '/proxies') {
    if (!isObject(parsed)) return refuse('proxy body not an object')
    if (parsed.name !== undefined && parsed.name !== '' && parsed.name !== null && !validName(parsed.name)) return refuse('proxy name')
    return spec
  }
  if (/^\/proxies\/[^/]+\/toxics$/.test(spec.path)) return refuse(toxicViolation(parsed))
  if (spec.path === '/chaos/inject') return refuse(injectViolation(parsed))
  return spec
}

// ─── Sending ───────────────────────────────────────────────────────────────────────────────────
type Outcome = { kind: 'answer'; status: number; text: string; ms: number } | { kind: 'hang' } | { kind: 'error'; message: string }

function send(base: URL, agent: http.Agent, spec: Spec): Promise<Outcome> {
  const payload = spec.body?.startsWith('oversize:') ? Buffer.alloc(Number(spec.body.slice(9)), 0x20) : spec.body === undefined ? undefined : Buffer.from(spec.body)
  const t0 = performance.now()
  return new Promise((resolve) => {
    let done = false
    const finish = (outcome: Outcome) => {
      if (done) return
      done = true
      clearTimeout(timer)
      resolve(outcome)
    }
    const req = http.request(
      {
        host: base.hostname,
        port: Number(base.port),
        method: spec.method,
        path: spec.path,
        agent,
        // An explicit length: Node's client sends a GET or DELETE body without one, which is
        // no valid HTTP request at all (test/chaos-api.test.ts covers such bytes on their own).
        headers: {
          'user-agent': spec.browser ? 'Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0' : 'forkchaos-fuzz',
          ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => finish({ kind: 'answer', status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), ms: performance.now() - t0 }))
        res.on('error', (e) => finish({ kind: 'error', message: e.message }))
      },
    )
    const timer = setTimeout(() => {
      req.destroy()
      finish({ kind: 'hang' })
    }, HANG_MS)
    req.on('error', (e: NodeJS.ErrnoException) => {
      // The server may close the connection while a refused body is still being sent (it
      // answers 413 first); that is the documented behaviour, not a crash, when the body was
      // oversized. Anything else is.
      finish({ kind: 'error', message: e.code ?? e.message })
    })
    req.end(payload)
  })
}

/** A short, replayable line for a request. */
function describe(spec: Spec): string {
  const body = spec.body === undefined ? '' : spec.body.length > 120 ? ` ${spec.body.slice(0, 117)}...` : ` ${spec.body}`
  return `${spec.browser ? '[browser] ' : ''}${spec.method} ${spec.path}${body}`
}

export const controlApi: FuzzTarget = {
  name: 'control-api',
  async run({ count, seed }) {
    const tally: FuzzTally = { inputs: 0, crashes: 0, hangs: 0, acceptedInvalid: 0, examples: [] }
    const note = (what: string, spec: Spec, detail: string) => {
      if (tally.examples.length < EXAMPLES_MAX) tally.examples.push(`${what}: ${describe(spec)} → ${detail.slice(0, 200)}`)
    }
    const rejections: unknown[] = []
    const onRejection = (reason: unknown) => rejections.push(reason)
    process.on('unhandledRejection', onRejection)

    // A real upstream for the TCP proxies (echo) and one for the JSON-RPC proxy.
    const echo = net.createServer((s) => {
      s.on('error', () => undefined)
      s.pipe(s)
    })
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r))
    const echoAddress = `127.0.0.1:${(echo.address() as net.AddressInfo).port}`
    const chain = http.createServer((req, res) => {
      req.resume()
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end('{"jsonrpc":"2.0","id":1,"result":"0x7a69"}')
      })
    })
    await new Promise<void>((r) => chain.listen(0, '127.0.0.1', r))
    const chainUrl = `http://127.0.0.1:${(chain.address() as net.AddressInfo).port}`

    const running = await startProxyServer({
      listen: '127.0.0.1:0',
      seed,
      config: { rpc: [{ name: 'rpc', upstream: chainUrl }], tcp: [{ name: 'base', listen: '127.0.0.1:0', upstream: echoAddress }] },
    })
    const base = new URL(running.server.url)
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
    const listens = new Set<string>()
    // FUZZ_VERBOSE=1 prints how the answers were spread over routes and statuses.
    const spread = new Map<string, number>()
    try {
      const specs = fc.sample(requests({ upstreams: [echoAddress, '127.0.0.1:1', 'localhost:1'], listens: ['127.0.0.1:0', 'localhost:0', '[::1]:0'] }), { seed, numRuns: count })
      for (const spec of specs) {
        tally.inputs++
        const outcome = await send(base, agent, spec)
        if (outcome.kind === 'hang') {
          tally.hangs++
          note('hang', spec, `no answer within ${HANG_MS} ms`)
          continue
        }
        if (outcome.kind === 'error') {
          // Sending an oversized body may fail with EPIPE/ECONNRESET once the server has
          // answered 413 and closed: expected. Any other connection error is a crash.
          if (spec.body?.startsWith('oversize:') && (outcome.message === 'EPIPE' || outcome.message === 'ECONNRESET')) continue
          tally.crashes++
          note('connection error', spec, outcome.message)
          continue
        }
        const { status, text } = outcome
        const route = `${spec.method} ${spec.path.split('/').slice(0, 3).join('/')} ${status}`
        spread.set(route, (spread.get(route) ?? 0) + 1)
        let json: unknown
        try {
          json = text === '' ? undefined : JSON.parse(text)
        } catch {
          json = undefined
        }
        if (status >= 500) {
          tally.crashes++
          note(`${status}`, spec, text)
          continue
        }
        // A HEAD answer has no body by definition.
        if (status >= 400 && spec.method !== 'HEAD' && !(isObject(json) && typeof json.error === 'string' && json.status === status)) {
          tally.crashes++
          note(`${status} without a JSON error body`, spec, text)
          continue
        }
        if (spec.browser ? status !== 403 : status < 300 && spec.mustRefuse) {
          tally.acceptedInvalid++
          note(spec.browser ? `browser got ${status}, not 403` : `accepted (${status}) though ${spec.mustRefuse}`, spec, text)
        }
        // Remember every listener a proxy reported, to check it is closed at the end.
        if (status < 300 && isObject(json)) {
          for (const proxy of [json, ...(Array.isArray(json.proxies) ? json.proxies : []), ...Object.values(json)])
            if (isObject(proxy) && typeof proxy.listen === 'string' && proxy.enabled === true) listens.add(proxy.listen)
        }
      }
      if (process.env.FUZZ_VERBOSE) for (const [route, n] of [...spread].sort((a, b) => b[1] - a[1])) process.stderr.write(`${String(n).padStart(6)} ${route}\n`)
    } finally {
      agent.destroy()
      await running.close()
      await new Promise((r) => echo.close(r))
      await new Promise((r) => chain.close(r))
      process.off('unhandledRejection', onRejection)
    }
    for (const reason of rejections) {
      tally.crashes++
      if (tally.examples.length < EXAMPLES_MAX) tally.examples.push(`unhandled rejection: ${String(reason instanceof Error ? reason.stack : reason).slice(0, 300)}`)
    }
    if (running.tcp.list().length !== 0) {
      tally.crashes++
      tally.examples.push(`${running.tcp.list().length} proxies left after close`)
    }
    for (const listen of listens) {
      if (await accepts(listen)) {
        tally.crashes++
        if (tally.examples.length < EXAMPLES_MAX) tally.examples.push(`listener ${listen} still open after close`)
      }
    }
    return tally
  },
}

export default controlApi

/** Whether something still accepts connections at `host:port`. */
function accepts(listen: string): Promise<boolean> {
  const i = listen.lastIndexOf(':')
  const host = listen.slice(0, i).replace(/^\[(.*)\]$/, '$1') || '127.0.0.1'
  return new Promise((resolve) => {
    const socket = net.connect({ host, port: Number(listen.slice(i + 1)) })
    socket.setTimeout(1_000, () => {
      socket.destroy()
      resolve(false)
    })
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}
