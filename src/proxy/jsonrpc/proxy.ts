import * as http from 'node:http'
import * as https from 'node:https'
import * as net from 'node:net'
import type { AddressInfo, Socket } from 'node:net'
import { InfraError, InputError } from '../../errors.js'
import type { Prng } from '../../util/prng.js'
import { redactUrl } from '../../util/redact.js'
import {
  alignResponses,
  type CallInfo,
  type CallPlan,
  errorReply,
  type Forward,
  hasId,
  hexToBigInt,
  httpErrorAnswer,
  type InstalledRule,
  idOf,
  isRecord,
  malformedBody,
  oddNumericIds,
  outcomeOf,
  parseRule,
  parseWithin,
  planCall,
  planRequest,
  type RequestPlan,
  type Rule,
  type RuleSpec,
  readRequest,
  resolveCalls,
  safeParse,
  share,
  tagIds,
  type TruncateAction,
} from './rules.js'
import { createFastPath } from './fast-path.js'
import { attachWebSocket, clientOf } from './ws.js'

/**
 * A JSON-RPC fault proxy: HTTP and WebSocket on one port in front of any endpoint. Calls that no
 * rule matches go through byte for byte (request body, status, response body); matched calls
 * are degraded by the rule's action (see `rules.ts`). Every JSON-RPC call (every batch element)
 * is reported once through `onRequest`.
 */
export type RpcProxyOptions = {
  /** The endpoint to degrade (`http://` or `https://`). Its WebSocket is the same host and path over `ws://` / `wss://`. */
  upstream: string
  /** `host:port` to listen on. Default `127.0.0.1:0` (a free port). */
  listen?: string
  /** The seeded stream every probability draw comes from (each rule forks its own). */
  prng: Prng
  /** What reports and errors call this proxy. Default `rpc-proxy`. */
  name?: string
  /** Called once per JSON-RPC call when it is answered, dropped or abandoned. Exceptions are ignored. */
  onRequest?: (event: RpcEvent) => void
  /** Bodies and WebSocket messages over this size are refused (413 / close 1009). Default 5 MiB. */
  maxBodyBytes?: number
  /** An upstream that sends nothing for this long gets the call a 504. Default 120 s. */
  upstreamTimeoutMs?: number
  /** Upstream HTTP connections kept at most (keep-alive). Default 256. */
  maxSockets?: number
  /** Client WebSocket connections at most; more get HTTP 503 on upgrade. Default 1,024. */
  maxWebSockets?: number
}

/** One JSON-RPC call as it went through the proxy, for metrics. */
export type RpcEvent = {
  /** The call's method; `(invalid)` for bodies or batch elements that are not calls, `(oversized)` for refused bodies. */
  method: string
  /** The `x-forkchaos-client` header (HTTP request or WebSocket upgrade), else the remote address. */
  client: string
  /** From the request's arrival to its answer leaving (or being given up), in ms. A batch shares one value. */
  latencyMs: number
  /** `ok`: answered with a result; `error`: a JSON-RPC error, an HTTP error or a broken body; `dropped`: no (complete) answer. */
  outcome: 'ok' | 'error' | 'dropped'
  /** Rules that took effect on this call, in insertion order. */
  ruleIds: string[]
  /** Request bytes; a batch's bytes are split evenly over its elements. */
  bytesIn: number
  /** Answer bytes sent; split evenly over a batch's elements. */
  bytesOut: number
}

export type RpcProxyStats = {
  /** JSON-RPC calls received (batch elements count one each). */
  requests: number
  /** Calls sent upstream. */
  forwarded: number
  /** Requests held open by `hang` rules right now. */
  hanging: number
  /** WebSocket notifications swallowed by `drop-subscription` rules. */
  notificationsDropped: number
  /** Per method (at most 1,000 names; the rest count under `(other)`). */
  byMethod: Record<string, { requests: number; errors: number }>
}

export type RpcProxy = {
  readonly name: string
  /** `http://127.0.0.1:PORT` */
  readonly url: string
  /** `ws://127.0.0.1:PORT` */
  readonly wsUrl: string
  /** Validates and installs a rule; returns its id (`rule-1`, `rule-2`, …). Later rules rank after earlier ones. */
  addRule(rule: RuleSpec): string
  /** Removes a rule and releases the requests its `hang` holds. Returns false for an unknown id. Idempotent. */
  removeRule(id: string): boolean
  clearRules(): void
  rules(): Rule[]
  stats(): RpcProxyStats
  /** Releases held requests, closes every connection and the listener. Idempotent. */
  close(): Promise<void>
}

/** Request bodies over this are refused with 413. */
export const MAX_BODY_BYTES = 5 * 1024 * 1024
/** How long the upstream head (for `stale`) is reused. */
export const HEAD_CACHE_MS = 50
/** The most an answer is buffered when a rule has to change, cut or throttle it. */
const MAX_BUFFERED_ANSWER_BYTES = 256 * 1024 * 1024
/** A refused body is read (and dropped) up to this size so the client can read the 413; past it the socket is closed. */
const MAX_DISCARD_BYTES = 64 * 1024 * 1024
/** Pass-through answers up to this size are also parsed to tell ok from error for events. */
const MAX_CLASSIFIED_BYTES = 1024 * 1024
const MAX_METHOD_NAMES = 1_000

/** One call's record for stats and events. */
export type CallRecord = { readonly method: string; readonly outcome: RpcEvent['outcome']; readonly ruleIds: readonly string[] }

/** What the WebSocket side shares with the HTTP side. */
export type ProxyCore = {
  readonly installed: () => readonly InstalledRule[]
  readonly head: () => Promise<bigint>
  readonly arrive: (methods: readonly string[]) => void
  /** `t1`: when the answer left (default now; the WebSocket fast path records later than that). */
  readonly record: (calls: readonly CallRecord[], client: string, t0: number, bytesIn: number, bytesOut: number, t1?: number) => void
  readonly forwarded: (calls: number) => void
  readonly notificationDropped: () => void
  /** Registers a request a `hang` rule holds; `release` ends it. Returns the unregister function. */
  readonly hold: (ruleId: string, release: () => void) => () => void
  /** A timer the proxy clears on close; returns its cancel function. */
  readonly after: (ms: number, fn: () => void) => () => void
  readonly maxBodyBytes: number
  readonly upstreamTimeoutMs: number
}

export async function startRpcProxy(options: RpcProxyOptions): Promise<RpcProxy> {
  const name = options.name ?? 'rpc-proxy'
  const upstream = parseUpstream(options.upstream)
  const { host, port } = parseListen(options.listen ?? '127.0.0.1:0')
  const maxBodyBytes = positiveInteger(options.maxBodyBytes ?? MAX_BODY_BYTES, 'maxBodyBytes')
  const upstreamTimeoutMs = positiveInteger(options.upstreamTimeoutMs ?? 120_000, 'upstreamTimeoutMs')
  const maxSockets = positiveInteger(options.maxSockets ?? 256, 'maxSockets')
  const maxWebSockets = positiveInteger(options.maxWebSockets ?? 1_024, 'maxWebSockets')
  const lib = upstream.protocol === 'https:' ? https : http
  const agent = new lib.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets })

  // ─── Rules, held requests, timers, stats ───────────────────────────────────────────────────
  const installed: InstalledRule[] = []
  let ruleCount = 0
  const held = new Map<string, Set<() => void>>()
  const timers = new Set<NodeJS.Timeout>()
  let closed = false
  const counters = { requests: 0, forwarded: 0, notificationsDropped: 0 }
  const byMethod = new Map<string, { requests: number; errors: number }>()
  const methodEntry = (method: string) => {
    let entry = byMethod.get(method)
    if (!entry) {
      const key = byMethod.size < MAX_METHOD_NAMES ? method : '(other)'
      entry = byMethod.get(key) ?? { requests: 0, errors: 0 }
      byMethod.set(key, entry)
    }
    return entry
  }

  const after = (ms: number, fn: () => void) => {
    if (closed) return () => {}
    const t = setTimeout(() => {
      timers.delete(t)
      fn()
    }, ms)
    timers.add(t)
    return () => {
      clearTimeout(t)
      timers.delete(t)
    }
  }
  // After close the promise never settles: whatever awaited it is abandoned with its sockets.
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      after(ms, resolve)
    })

  const releaseRule = (ruleId: string) => {
    const set = held.get(ruleId)
    held.delete(ruleId)
    for (const release of set ?? []) release()
  }

  const core: ProxyCore = {
    installed: () => installed,
    head: () => head(),
    arrive(methods) {
      counters.requests += methods.length
      for (const m of methods) methodEntry(m).requests++
    },
    record(calls, client, t0, bytesIn, bytesOut, t1 = performance.now()) {
      const latencyMs = t1 - t0
      calls.forEach((call, i) => {
        if (call.outcome !== 'ok') methodEntry(call.method).errors++
        if (!options.onRequest) return
        try {
          options.onRequest({
            method: call.method,
            client,
            latencyMs,
            outcome: call.outcome,
            ruleIds: [...call.ruleIds],
            bytesIn: share(bytesIn, calls.length, i),
            bytesOut: share(bytesOut, calls.length, i),
          })
        } catch {
          // A metrics callback must never take the proxy down.
        }
      })
    },
    forwarded: (n) => {
      counters.forwarded += n
    },
    notificationDropped: () => {
      counters.notificationsDropped++
    },
    hold(ruleId, release) {
      let set = held.get(ruleId)
      if (!set) held.set(ruleId, (set = new Set()))
      const entry = () => release()
      set.add(entry)
      return () => {
        held.get(ruleId)?.delete(entry)
      }
    },
    after,
    maxBodyBytes,
    upstreamTimeoutMs,
  }

  // ─── Upstream ──────────────────────────────────────────────────────────────────────────────
  const upstreamPath = (reqUrl: string | undefined) => {
    const base = upstream.pathname
    if (!reqUrl || reqUrl === '/') return base + upstream.search
    return base.replace(/\/$/, '') + reqUrl
  }

  /**
   * One upstream HTTP exchange; a reused keep-alive socket the server had just closed is retried
   * once (Node's advice). `plain` drops the client's `accept-encoding`: the proxy has to read the answer.
   */
  const upstreamRequest = (req: http.IncomingMessage | undefined, body: Buffer, plain = false, retried = false): Promise<http.IncomingMessage> =>
    new Promise((resolve, reject) => {
      const r = lib.request(
        {
          protocol: upstream.protocol,
          hostname: upstream.hostname,
          port: upstream.port,
          method: req?.method ?? 'POST',
          path: upstreamPath(req?.url),
          headers: requestHeaders(req, body.length, upstream.host, plain),
          agent,
          timeout: upstreamTimeoutMs,
        },
        resolve,
      )
      r.on('timeout', () => r.destroy(new UpstreamTimeout()))
      r.on('error', (error: NodeJS.ErrnoException) => {
        if (!retried && r.reusedSocket && error.code === 'ECONNRESET') resolve(upstreamRequest(req, body, plain, true))
        else reject(error)
      })
      r.end(body)
    })

  let headCache: { at: number; value: Promise<bigint> } | undefined
  const head = () => {
    const now = performance.now()
    if (headCache && now - headCache.at < HEAD_CACHE_MS) return headCache.value
    const value = (async () => {
      const up = await upstreamRequest(undefined, Buffer.from('{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}'))
      const text = (await readAll(up, MAX_CLASSIFIED_BYTES)).toString('utf8')
      const reply = safeParse(text)
      const n = reply.ok && isRecord(reply.value) ? hexToBigInt(reply.value.result) : undefined
      if (n === undefined) throw new Error(`upstream eth_blockNumber answered ${text.slice(0, 200)}`)
      return n
    })()
    headCache = { at: now, value }
    value.catch(() => {
      if (headCache?.value === value) headCache = undefined
    })
    return value
  }

  // ─── HTTP ──────────────────────────────────────────────────────────────────────────────────
  let seq = 0
  const nextId = () => `forkchaos-${++seq}`

  async function handle(req: http.IncomingMessage, res: http.ServerResponse) {
    const t0 = performance.now()
    const client = clientOf(req)
    res.on('error', () => {})
    let gone = false
    res.on('close', () => {
      if (!res.writableFinished) gone = true
    })

    const read = await readBody(req, maxBodyBytes)
    if (read === 'aborted') return
    if (read === 'too-large') {
      core.arrive(['(oversized)'])
      const body = JSON.stringify(errorReply(null, { code: -32600, message: `request body too large: over ${maxBodyBytes} bytes` }))
      res.writeHead(413, { 'content-type': 'application/json', connection: 'close' })
      res.end(body)
      core.record([{ method: '(oversized)', outcome: 'error', ruleIds: [] }], client, t0, 0, Buffer.byteLength(body))
      return
    }
    const body = read
    const { batch, elements, infos, methods, refused, refusals } = readRequest(body, client)
    core.arrive(methods)
    const rules = installed.slice()
    const plans = rules.length === 0 && refusals === 0 ? [] : infos.map((info) => info && planCall(rules, info))
    const plan = planRequest(plans, refusals)
    const records = (outcomes: readonly RpcEvent['outcome'][]) =>
      methods.map((method, i): CallRecord => ({ method, outcome: outcomes[i] ?? 'error', ruleIds: ruleIdsOf(plans[i], plan) }))
    const all = (outcome: RpcEvent['outcome']) => records(methods.map(() => outcome))
    const finish = (outcomes: readonly RpcEvent['outcome'][], bytesOut: number) =>
      core.record(records(outcomes), client, t0, body.length, bytesOut)

    if (plan.delayMs > 0) await sleep(plan.delayMs)
    if (gone) return core.record(all('dropped'), client, t0, body.length, 0)

    if (plan.whole) {
      const { action, ruleId } = plan.whole
      if (action.type === 'hang') {
        const unhold = core.hold(ruleId, () => res.destroy())
        res.on('close', () => {
          unhold()
          core.record(all('dropped'), client, t0, body.length, 0)
        })
        return
      }
      const answer =
        action.type === 'http-error'
          ? httpErrorAnswer(action, batch ? null : idOf(elements[0]))
          : { status: 200, headers: { 'content-type': 'application/json' }, body: malformedBody(elements, batch) }
      const out = Buffer.from(answer.body)
      const sent = await deliver(res, answer.status, answer.headers, out, plan)
      return core.record(all(sent === 'sent' ? 'error' : 'dropped'), client, t0, body.length, sent === 'gone' ? 0 : out.length)
    }

    try {
      if (!plan.rewrites && !plan.truncate && plan.bytesPerSecond === undefined) {
        // Pass-through: the answer streams back unchanged.
        const up = await upstreamRequest(req, body)
        core.forwarded(methods.length)
        if (gone || res.destroyed) {
          // Drain it so the keep-alive socket goes back to the pool.
          up.resume()
          return finish(methods.map(() => 'dropped'), 0)
        }
        res.writeHead(up.statusCode ?? 502, responseHeaders(up.headers))
        const sample: Buffer[] = []
        let size = 0
        up.on('data', (chunk: Buffer) => {
          size += chunk.length
          if (size <= MAX_CLASSIFIED_BYTES) sample.push(chunk)
        })
        await new Promise<void>((resolve) => {
          up.on('error', () => res.destroy())
          res.on('close', () => {
            if (!res.writableFinished) up.destroy()
            resolve()
          })
          up.pipe(res)
        })
        if (!res.writableFinished) return finish(methods.map(() => 'dropped'), size)
        const text = size <= MAX_CLASSIFIED_BYTES ? Buffer.concat(sample).toString('utf8') : undefined
        return finish(classify(up.statusCode ?? 502, text, elements, infos, batch, methods.length), size)
      }

      if (!plan.rewrites) {
        // Same bytes, but cut or throttled on the way back.
        const up = await upstreamRequest(req, body)
        core.forwarded(methods.length)
        const answer = await readAll(up, MAX_BUFFERED_ANSWER_BYTES)
        const sent = await deliver(res, up.statusCode ?? 502, responseHeaders(up.headers), answer, plan)
        const outcomes = sent === 'sent' ? classify(up.statusCode ?? 502, answer.toString('utf8'), elements, infos, batch, methods.length) : methods.map(() => 'dropped' as const)
        return finish(outcomes, sent === 'gone' ? 0 : sent === 'cut' ? cutLength(answer.length, plan.truncate) : answer.length)
      }

      // Answers put together here keep the upstream's headers (CORS and the like), not its length or encoding.
      let upstreamHeaders: http.OutgoingHttpHeaders = {}
      const forward: Forward = async (calls, asBatch) => {
        const { sent, keys } = tagIds(calls, nextId)
        const up = await upstreamRequest(req, Buffer.from(JSON.stringify(asBatch ? sent : sent[0])), true)
        core.forwarded(calls.length)
        const raw = await readAll(up, MAX_BUFFERED_ANSWER_BYTES)
        const status = up.statusCode ?? 502
        upstreamHeaders = responseHeaders(up.headers)
        if (status === 204 || (status === 200 && raw.length === 0)) return calls.map(() => undefined)
        // An answer nested deeper than the proxy could write back is handed over as it is.
        const reply = status === 200 ? parseWithin(raw) : { ok: false as const }
        if (!reply.ok) throw new UpstreamAnswer(status, responseHeaders(up.headers), raw)
        return alignResponses(calls, keys, reply.value)
      }
      let answers: (unknown | undefined)[]
      try {
        ;({ answers } = await resolveCalls({ elements, infos, plans, batch, head, forward, refused, oddIds: oddNumericIds(body) }))
      } catch (error) {
        if (!(error instanceof UpstreamAnswer)) throw error
        // Upstream did not answer with JSON-RPC: hand its answer over as it is.
        const sent = await deliver(res, error.status, error.headers, error.body, plan)
        return finish(methods.map(() => (sent === 'sent' ? 'error' : 'dropped')), sent === 'gone' ? 0 : error.body.length)
      }
      const list = batch ? answers.filter((a) => a !== undefined) : answers[0]
      const empty = list === undefined || (Array.isArray(list) && list.length === 0)
      const out = empty ? Buffer.alloc(0) : Buffer.from(JSON.stringify(list))
      const { 'content-length': _length, 'content-encoding': _encoding, ...kept } = upstreamHeaders
      const sent = await deliver(res, empty ? 204 : 200, empty ? kept : { ...kept, 'content-type': 'application/json' }, out, plan)
      const outcomes = answers.map((a, i) =>
        sent !== 'sent' ? ('dropped' as const) : a === undefined && infos[i] && !hasId(elements[i]) ? ('ok' as const) : outcomeOf(a),
      )
      return finish(outcomes, sent === 'gone' ? 0 : sent === 'cut' ? cutLength(out.length, plan.truncate) : out.length)
    } catch (error) {
      const status = error instanceof UpstreamTimeout ? 504 : 502
      const reason = error instanceof UpstreamTimeout ? 'timed out' : (error as NodeJS.ErrnoException).code ?? (error as Error).message
      if (res.headersSent) {
        res.destroy()
        return finish(methods.map(() => 'dropped'), 0)
      }
      const out = Buffer.from(JSON.stringify(errorReply(null, { code: -32603, message: `forkchaos proxy: upstream request failed (${reason})` })))
      res.writeHead(status, { 'content-type': 'application/json' })
      res.end(out)
      return finish(methods.map(() => 'error'), out.length)
    }
  }

  /** Writes an answer, cut and/or throttled as the plan says. */
  async function deliver(
    res: http.ServerResponse,
    status: number,
    headers: http.OutgoingHttpHeaders,
    body: Buffer,
    plan: Pick<RequestPlan, 'truncate' | 'bytesPerSecond'>,
  ): Promise<'sent' | 'cut' | 'gone'> {
    if (res.destroyed) return 'gone'
    res.writeHead(status, status === 204 ? headers : { ...headers, 'content-length': body.length })
    const cut = plan.truncate ? body.subarray(0, cutLength(body.length, plan.truncate)) : body
    if (plan.bytesPerSecond !== undefined) {
      const slice = Math.max(1, Math.round(plan.bytesPerSecond / 20))
      for (let offset = 0; offset < cut.length; offset += slice) {
        if (res.destroyed) return 'gone'
        const piece = cut.subarray(offset, offset + slice)
        await write(res, piece)
        await sleep((piece.length / plan.bytesPerSecond) * 1000)
      }
    } else if (cut.length > 0) await write(res, cut)
    if (res.destroyed) return 'gone'
    if (plan.truncate) {
      // Close mid-body: the client got fewer bytes than Content-Length promised.
      res.flushHeaders()
      res.socket?.end()
      after(1_000, () => res.destroy())
      return 'cut'
    }
    await new Promise<void>((resolve) => res.end(resolve))
    return 'sent'
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch(() => {
      // Never crash on input: whatever escaped ends this one request.
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'application/json' })
        res.end(JSON.stringify(errorReply(null, { code: -32603, message: 'forkchaos proxy: internal error' })))
      } else res.destroy()
    })
  })
  server.keepAliveTimeout = 65_000
  const sockets = new Set<Socket>()
  server.on('connection', (socket: Socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  server.on('clientError', (_error, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n')
    socket.destroy()
  })

  const wsUpstream = new URL(upstream.href)
  wsUpstream.protocol = upstream.protocol === 'https:' ? 'wss:' : 'ws:'
  const bridge = attachWebSocket({ server, core, upstreamUrl: wsUpstream, maxConnections: maxWebSockets })

  // Rule-free HTTP/1.1 calls take the fast path (bytes over pooled upstream connections); it hands
  // a connection to Node's server above at the first request it does not handle simply.
  const fast =
    upstream.protocol === 'http:'
      ? createFastPath({
          upstream,
          installed: () => installed,
          handOff: (socket) => {
            server.emit('connection', socket)
            socket.resume()
          },
          maxBodyBytes,
          upstreamTimeoutMs,
          maxSockets,
          metrics: {
            arrive(method) {
              counters.requests++
              methodEntry(method).requests++
            },
            forwarded(n) {
              counters.forwarded += n
            },
            answered(method, outcome, client, t0, bytesIn, bytesOut) {
              if (outcome !== 'ok') methodEntry(method).errors++
              if (!options.onRequest) return
              try {
                options.onRequest({ method, client: client(), latencyMs: performance.now() - t0, outcome, ruleIds: [], bytesIn, bytesOut })
              } catch {
                // A metrics callback must never take the proxy down.
              }
            },
          },
        })
      : undefined
  const listener = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    if (fast) fast.accept(socket)
    else server.emit('connection', socket)
  })

  await new Promise<void>((resolve, reject) => {
    listener.once('error', (cause) =>
      reject(new InfraError('The JSON-RPC proxy could not listen.', { context: { Proxy: name, Listen: `${host}:${port}`, Reason: cause.message }, cause })),
    )
    listener.listen(port, host, () => resolve())
  })
  const address = listener.address() as AddressInfo
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address

  let closing: Promise<void> | undefined
  return {
    name,
    url: `http://${shown}:${address.port}`,
    wsUrl: `ws://${shown}:${address.port}`,
    addRule(spec) {
      const id = `rule-${++ruleCount}`
      const rule = parseRule(spec, id)
      installed.push({ rule, order: ruleCount, prng: options.prng.fork(id) })
      return id
    },
    removeRule(id) {
      const index = installed.findIndex((r) => r.rule.id === id)
      if (index >= 0) installed.splice(index, 1)
      releaseRule(id)
      return index >= 0
    },
    clearRules() {
      for (const r of installed.splice(0)) releaseRule(r.rule.id)
    },
    rules: () => installed.map((r) => r.rule),
    stats: () => {
      bridge.flush() // WebSocket calls not yet counted (fast path): counted now, so stats are never behind
      return {
        ...counters,
        hanging: [...held.values()].reduce((n, set) => n + set.size, 0),
        byMethod: Object.fromEntries([...byMethod].map(([m, v]) => [m, { ...v }])),
      }
    },
    close: () =>
      (closing ??= (async () => {
        closed = true
        for (const id of [...held.keys()]) releaseRule(id)
        for (const t of timers) clearTimeout(t)
        timers.clear()
        bridge.close()
        const done = new Promise<void>((resolve) => listener.close(() => resolve()))
        fast?.close()
        for (const socket of sockets) socket.destroy()
        agent.destroy()
        await done
      })()),
  }
}

// ─── Helpers ─────────────────────────────────────────────────────────────────────────────────

class UpstreamTimeout extends Error {
  override name = 'UpstreamTimeout'
  constructor() {
    super('upstream timed out')
  }
}

/** Upstream answered, but not with JSON-RPC the proxy can edit; the client gets it as it is. */
class UpstreamAnswer extends Error {
  override name = 'UpstreamAnswer'
  constructor(
    readonly status: number,
    readonly headers: http.OutgoingHttpHeaders,
    readonly body: Buffer,
  ) {
    super(`upstream answered ${status}`)
  }
}

function ruleIdsOf(plan: CallPlan | undefined, request: RequestPlan): string[] {
  const ids = plan?.ruleIds ?? []
  const whole = request.whole?.ruleId
  return whole && !ids.includes(whole) ? [...ids, whole] : ids
}

/** Tells ok from error per call from a pass-through answer. */
function classify(
  status: number,
  text: string | undefined,
  elements: readonly unknown[],
  infos: readonly (CallInfo | undefined)[],
  batch: boolean,
  count: number,
): ('ok' | 'error')[] {
  const every = (o: 'ok' | 'error') => Array.from({ length: count }, () => o)
  if (status < 200 || status >= 300) return every('error')
  if (text === undefined || !text.includes('"error"')) return elements.length === 0 ? every('error') : every('ok')
  const reply = safeParse(text)
  if (!reply.ok) return every('error')
  if (!batch) return [outcomeOf(reply.value)]
  if (!Array.isArray(reply.value)) return every('error')
  const byId = new Map<string, unknown>()
  for (const r of reply.value) if (isRecord(r) && r.id !== null && r.id !== undefined) byId.set(JSON.stringify(r.id), r)
  return elements.map((el, i) => {
    if (!infos[i]) return 'error'
    if (!hasId(el)) return 'ok'
    return outcomeOf(byId.get(JSON.stringify(idOf(el))))
  })
}

function cutLength(length: number, truncate: TruncateAction | undefined): number {
  if (!truncate) return length
  return Math.max(0, Math.min(truncate.bytes ?? Math.floor(length / 2), length - 1))
}

function write(res: http.ServerResponse, chunk: Buffer): Promise<void> {
  return new Promise((resolve) => {
    res.write(chunk, () => resolve())
  })
}

function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer | 'too-large' | 'aborted'> {
  return new Promise((resolve) => {
    const declared = Number(req.headers['content-length'])
    let over = Number.isFinite(declared) && declared > limit
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (over || size > limit) {
        over = true
        chunks.length = 0
        if (size > MAX_DISCARD_BYTES) req.destroy()
        return
      }
      chunks.push(chunk)
    })
    req.on('end', () => resolve(over ? 'too-large' : Buffer.concat(chunks)))
    req.on('error', () => resolve('aborted'))
    req.on('close', () => resolve('aborted'))
  })
}

function readAll(stream: http.IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    stream.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size > limit) stream.destroy(new Error(`upstream answer over ${limit} bytes`))
      else chunks.push(chunk)
    })
    stream.on('end', () => resolve(Buffer.concat(chunks)))
    stream.on('error', reject)
    stream.on('aborted', () => reject(new Error('upstream answer aborted')))
  })
}

const hopByHop = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'host', 'expect'])

function requestHeaders(req: http.IncomingMessage | undefined, length: number, host: string, plain: boolean): http.OutgoingHttpHeaders {
  const headers: http.OutgoingHttpHeaders = {}
  for (const [k, v] of Object.entries(req?.headers ?? { 'content-type': 'application/json' }))
    if (v !== undefined && !hopByHop.has(k) && k !== 'x-forkchaos-client' && k !== 'content-length' && !(plain && k === 'accept-encoding')) headers[k] = v
  headers.host = host
  headers['content-length'] = length
  return headers
}

function responseHeaders(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {}
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !hopByHop.has(k)) out[k] = v
  return out
}

function parseUpstream(raw: string): URL {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw new InputError(`\`upstream\` must be an http:// or https:// URL. Got \`${JSON.stringify(redactUrl(String(raw)))}\`.`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new InputError(`\`upstream\` must be an http:// or https:// URL. Got \`${JSON.stringify(redactUrl(raw))}\`.`)
  return url
}

function parseListen(raw: string): { host: string; port: number } {
  const match = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(raw)
  const port = Number(match?.[2])
  if (!match || port > 65_535) throw new InputError(`\`listen\` must be host:port like "127.0.0.1:0". Got \`${JSON.stringify(raw)}\`.`)
  return { host: match[1] as string, port }
}

function positiveInteger(value: number, field: string): number {
  if (!Number.isSafeInteger(value) || value <= 0) throw new InputError(`\`${field}\` must be an integer > 0. Got \`${JSON.stringify(value)}\`.`)
  return value
}
