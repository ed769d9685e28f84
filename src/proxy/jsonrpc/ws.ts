import type { IncomingMessage, Server } from 'node:http'
import type { Duplex } from 'node:stream'
import { type RawData, WebSocket, WebSocketServer } from 'ws'
import type { CallRecord, ProxyCore, RpcEvent } from './proxy.js'
import {
  alignResponses,
  type CallInfo,
  type CallPlan,
  errorFor,
  errorReply,
  type Forward,
  fires,
  hasId,
  httpErrorAsRpcError,
  idOf,
  isRecord,
  malformedBody,
  outcomeOf,
  planCall,
  planRequest,
  type RequestPlan,
  readRequest,
  resolveCalls,
  ruleMatches,
  safeParse,
  share,
  type TruncateAction,
  tagIds,
} from './rules.js'

/**
 * The WebSocket side of the JSON-RPC proxy, on the HTTP port (upgrade). Each client gets its
 * own upstream socket; frames pass both ways. Client messages go through the same rules as
 * HTTP calls; answers are routed back by id. Subscription notifications (`eth_subscription`)
 * pass through, subject to `drop-subscription` (the subscription goes silent, the socket stays
 * open) and `slow-consumer` (whole frames, delayed so the rate holds, in order).
 *
 * Where HTTP would answer with a status, WebSocket calls get the JSON-RPC error that status
 * carries (`http-error`); `truncate` sends the cut text as one frame; `hang` never answers the
 * message and keeps the socket open.
 */
export type WebSocketBridge = {
  /** Terminates every client and upstream socket. */
  close(): void
  connections(): number
}

/** Client frames waiting for the upstream socket to open; more close the client with 1013. */
const MAX_BACKLOG_FRAMES = 1_000
/** Frames waiting behind a `slow-consumer` throttle; more disconnect the client (as nodes drop slow consumers). */
const MAX_QUEUED_FRAMES = 10_000
/** Pass-through calls awaiting their answer, and subscriptions a drop rule counts, per connection. */
const MAX_TRACKED = 10_000

export function attachWebSocket(options: {
  server: Server
  core: ProxyCore
  upstreamUrl: URL
  maxConnections: number
}): WebSocketBridge {
  const { server, core, upstreamUrl } = options
  const wss = new WebSocketServer({ noServer: true, maxPayload: core.maxBodyBytes, perMessageDeflate: false })
  const connections = new Set<() => void>()

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => {})
    if (connections.size >= options.maxConnections) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 0\r\n\r\n')
      return
    }
    wss.handleUpgrade(req, socket, head, (client) => bridge(client, req))
  })

  function bridge(client: WebSocket, req: IncomingMessage) {
    const name = clientOf(req)
    const target = new URL(upstreamUrl.href)
    if (req.url && req.url !== '/') {
      const asked = new URL(req.url, 'http://x')
      target.pathname = target.pathname.replace(/\/$/, '') + asked.pathname
      target.search = asked.search
    }
    const upstream = new WebSocket(target, { perMessageDeflate: false, handshakeTimeout: core.upstreamTimeoutMs })
    let upstreamOpened = false
    let closed = false
    const backlog: { data: string | Buffer; binary: boolean }[] = []
    const tracked = new Map<string, Tracked>()
    const exchanges = new Map<string, { done: (reply: unknown) => void; fail: (error: Error) => void }>()
    const subscriptions = new Map<string, { active: boolean; seen: number }>()
    const holds = new Map<() => void, () => void>()
    let seq = 0
    const nextId = () => `forkchaos-${++seq}`
    const outbox = createOutbox(client, core.after, () => client.terminate())

    const shut = () => {
      if (closed) return
      closed = true
      connections.delete(terminate)
      for (const { fail } of exchanges.values()) fail(new Error('connection closed'))
      exchanges.clear()
      for (const t of tracked.values()) core.record([{ method: t.method, outcome: 'dropped', ruleIds: t.ruleIds }], name, t.t0, t.bytesIn, 0)
      tracked.clear()
      for (const [release, unhold] of holds) {
        unhold()
        release()
      }
      outbox.clear()
      if (upstream.readyState === WebSocket.OPEN) upstream.close(1000)
      else upstream.terminate()
      if (client.readyState === WebSocket.OPEN) client.close(1001, 'upstream gone')
    }
    const terminate = () => {
      client.terminate()
      upstream.terminate()
      shut()
    }
    connections.add(terminate)

    const toUpstream = (data: string | Buffer, binary = false) => {
      if (upstream.readyState === WebSocket.OPEN) upstream.send(data, { binary })
      else if (upstream.readyState === WebSocket.CONNECTING) {
        if (backlog.length >= MAX_BACKLOG_FRAMES) {
          client.close(1013, 'upstream not ready')
          shut()
        } else backlog.push({ data, binary })
      }
    }

    upstream.on('open', () => {
      upstreamOpened = true
      for (const { data, binary } of backlog.splice(0)) upstream.send(data, { binary })
    })
    upstream.on('error', () => {})
    upstream.on('close', (code, reason) => {
      if (client.readyState === WebSocket.OPEN) {
        if (!upstreamOpened) client.close(1014, 'upstream unavailable')
        else if (isSendableCloseCode(code)) client.close(code, reason.toString('utf8').slice(0, 120))
        else client.terminate() // upstream went away abnormally (1006): so does the client
      }
      shut()
    })
    client.on('error', () => {})
    client.on('close', shut)

    // ─── Client → upstream ─────────────────────────────────────────────────────────────────
    client.on('message', (data: RawData, isBinary: boolean) => {
      const t0 = performance.now()
      const buffer = toBuffer(data)
      if (isBinary) return toUpstream(buffer, true)
      const text = buffer.toString('utf8')
      const request = readRequest(text, name)
      core.arrive(request.methods)
      const rules = core.installed().slice()
      const plans = rules.length === 0 ? [] : request.infos.map((info) => info && planCall(rules, info))
      const plan = planRequest(plans)
      if (!plan.affected) {
        passThrough(text, request, plans, plan, t0, buffer.length)
        return
      }
      handleAffected(text, request, plans, plan, t0, buffer.length).catch((error: Error) => {
        if (closed) return
        const answers = request.elements.map((el) => (hasId(el) ? errorReply(idOf(el), { code: -32603, message: `forkchaos proxy: ${error.message}` }) : undefined))
        send(request.batch, answers, {}, (sent) =>
          core.record(request.methods.map((method, i) => ({ method, outcome: sent ? 'error' : 'dropped', ruleIds: plans[i]?.ruleIds ?? [] })), name, t0, buffer.length, 0),
        )
      })
    })

    /** Forwards the text as it is and remembers its calls so their answers can be reported (and cut or throttled). */
    function passThrough(text: string, request: ReturnType<typeof readRequest>, plans: readonly (CallPlan | undefined)[], plan: RequestPlan, t0: number, bytesIn: number) {
      const n = request.methods.length
      request.elements.forEach((el, i) => {
        const info = request.infos[i]
        const method = request.methods[i] as string
        const ruleIds = plans[i]?.ruleIds ?? []
        // Notifications and non-calls get no answer that could be matched to them.
        if (!info || !hasId(el)) return core.record([{ method, outcome: info ? 'ok' : 'error', ruleIds }], name, t0, share(bytesIn, n, i), 0)
        const key = JSON.stringify(idOf(el) ?? null)
        const previous = tracked.get(key)
        if (previous) core.record([{ method: previous.method, outcome: 'dropped', ruleIds: previous.ruleIds }], name, previous.t0, previous.bytesIn, 0)
        tracked.delete(key)
        if (tracked.size >= MAX_TRACKED) {
          const [oldest, entry] = tracked.entries().next().value as [string, Tracked]
          tracked.delete(oldest)
          core.record([{ method: entry.method, outcome: 'dropped', ruleIds: entry.ruleIds }], name, entry.t0, entry.bytesIn, 0)
        }
        tracked.set(key, { method, ruleIds, t0, bytesIn: share(bytesIn, n, i), truncate: plan.truncate, bytesPerSecond: plan.bytesPerSecond })
      })
      if (request.elements.length === 0) core.record([{ method: '(invalid)', outcome: 'error', ruleIds: [] }], name, t0, bytesIn, 0)
      core.forwarded(n)
      toUpstream(text)
    }

    async function handleAffected(
      text: string,
      request: ReturnType<typeof readRequest>,
      plans: readonly (CallPlan | undefined)[],
      plan: RequestPlan,
      t0: number,
      bytesIn: number,
    ) {
      const { batch, elements, infos, methods } = request
      const wholeId = plan.whole?.ruleId
      const ruleIdsOf = (i: number) => {
        const ids = plans[i]?.ruleIds ?? []
        return wholeId && !ids.includes(wholeId) ? [...ids, wholeId] : ids
      }
      const record = (outcomes: readonly RpcEvent['outcome'][], bytesOut: number) =>
        core.record(
          methods.map((method, i): CallRecord => ({ method, outcome: outcomes[i] ?? 'error', ruleIds: ruleIdsOf(i) })),
          name,
          t0,
          bytesIn,
          bytesOut,
        )
      const dropped = () => record(methods.map(() => 'dropped'), 0)

      if (plan.delayMs > 0) await new Promise<void>((resolve) => core.after(plan.delayMs, resolve))
      if (closed) return dropped()

      if (plan.whole) {
        const { action, ruleId } = plan.whole
        if (action.type === 'hang') {
          let released = false
          const release = () => {
            if (released) return
            released = true
            holds.delete(release)
            dropped()
          }
          holds.set(release, core.hold(ruleId, release))
          return
        }
        if (action.type === 'malformed') {
          const out = malformedBody(elements, batch)
          return outbox.send(out, false, plan.bytesPerSecond, (sent) => record(methods.map(() => (sent ? 'error' : 'dropped')), Buffer.byteLength(out)))
        }
        const error = httpErrorAsRpcError(action)
        const answers = elements.map((el, i) => (!infos[i] ? errorReply(null, errorFor(-32600)) : hasId(el) ? errorReply(idOf(el), error) : undefined))
        return send(batch, answers, plan, (sent, bytesOut) => record(answers.map((a) => (!sent ? 'dropped' : a === undefined ? 'ok' : 'error')), bytesOut))
      }

      if (!plan.rewrites) return passThrough(text, request, plans, plan, t0, bytesIn)

      const forward: Forward = (calls, asBatch) =>
        new Promise((resolve, reject) => {
          if (closed) return reject(new Error('connection closed'))
          const { sent, keys } = tagIds(calls, nextId)
          const live = keys.filter((k): k is string => k !== undefined)
          toUpstream(JSON.stringify(asBatch ? sent : sent[0]))
          core.forwarded(calls.length)
          if (live.length === 0) return resolve(calls.map(() => undefined))
          const settle = () => {
            cancel()
            for (const k of live) exchanges.delete(k)
          }
          const exchange = {
            done: (reply: unknown) => {
              settle()
              resolve(alignResponses(calls, keys, reply))
            },
            fail: (error: Error) => {
              settle()
              reject(error)
            },
          }
          const cancel = core.after(core.upstreamTimeoutMs, () => exchange.fail(new Error('upstream timed out')))
          for (const k of live) exchanges.set(k, exchange)
        })
      const { answers } = await resolveCalls({ elements, infos, plans, batch, head: core.head, forward, forwardInvalid: false })
      send(batch, answers, plan, (sent, bytesOut) =>
        record(
          answers.map((a, i) => (!sent ? 'dropped' : a === undefined && infos[i] && !hasId(elements[i]) ? 'ok' : outcomeOf(a))),
          bytesOut,
        ),
      )
    }

    /** Sends answers (a batch array or one object), cut and throttled as the plan says. */
    function send(
      batch: boolean,
      answers: readonly (unknown | undefined)[],
      effects: { truncate?: TruncateAction | undefined; bytesPerSecond?: number | undefined },
      done: (sent: boolean, bytesOut: number) => void,
    ) {
      const list = batch ? answers.filter((a) => a !== undefined) : answers[0]
      if (list === undefined || (Array.isArray(list) && list.length === 0)) return done(true, 0)
      const text = cutText(JSON.stringify(list), effects.truncate)
      outbox.send(text, false, effects.bytesPerSecond, (sent) => done(sent && !effects.truncate, Buffer.byteLength(text)))
    }

    // ─── Upstream → client ─────────────────────────────────────────────────────────────────
    upstream.on('message', (data: RawData, isBinary: boolean) => {
      const buffer = toBuffer(data)
      if (isBinary) return outbox.send(buffer, true)
      const text = buffer.toString('utf8')
      const parsed = safeParse(text)
      if (!parsed.ok) return outbox.send(text, false)
      const value = parsed.value
      const list = Array.isArray(value) ? value : [value]
      for (const r of list) {
        const exchange = isRecord(r) && typeof r.id === 'string' ? exchanges.get(r.id) : undefined
        if (exchange) return exchange.done(value)
      }
      if (isRecord(value) && value.method === 'eth_subscription' && isRecord(value.params)) return notify(text, value.params.subscription)

      const answered: { entry: Tracked; answer: unknown }[] = []
      for (const r of list) {
        if (!isRecord(r) || r.id === undefined || r.id === null) continue
        const key = JSON.stringify(r.id)
        const entry = tracked.get(key)
        if (!entry) continue
        tracked.delete(key)
        answered.push({ entry, answer: r })
      }
      const truncate = answered.find((a) => a.entry.truncate)?.entry.truncate
      const rates = answered.map((a) => a.entry.bytesPerSecond).filter((r): r is number => r !== undefined)
      const out = cutText(text, truncate)
      outbox.send(out, false, rates.length ? Math.min(...rates) : undefined, (sent) => {
        const bytesOut = Buffer.byteLength(out)
        answered.forEach(({ entry, answer }, i) => {
          const outcome = !sent || truncate ? 'dropped' : outcomeOf(answer)
          core.record([{ method: entry.method, outcome, ruleIds: entry.ruleIds }], name, entry.t0, entry.bytesIn, share(bytesOut, answered.length, i))
        })
      })
    })

    function notify(text: string, subscription: unknown) {
      const info: CallInfo = { method: 'eth_subscription', client: name, batchIndex: undefined }
      const alias: CallInfo = { ...info, method: 'eth_subscribe' }
      let drop = false
      let rate: number | undefined
      for (const installed of core.installed()) {
        const { rule } = installed
        const action = rule.action
        if (action.type !== 'drop-subscription' && action.type !== 'slow-consumer') continue
        if (!ruleMatches(rule.match, info) && !ruleMatches(rule.match, alias)) continue
        if (action.type === 'slow-consumer') {
          if (fires(installed)) rate = Math.min(rate ?? Number.POSITIVE_INFINITY, action.bytesPerSecond)
          continue
        }
        const key = `${rule.id}\u0000${JSON.stringify(subscription)}`
        let state = subscriptions.get(key)
        if (!state) {
          state = { active: fires(installed), seen: 0 }
          subscriptions.set(key, state)
          if (subscriptions.size > MAX_TRACKED) subscriptions.delete(subscriptions.keys().next().value as string)
        }
        if (!state.active) continue
        if (state.seen >= (action.afterMessages ?? 0)) drop = true
        else state.seen++
      }
      if (drop) return core.notificationDropped()
      outbox.send(text, false, rate)
    }
  }

  return {
    close() {
      for (const terminate of [...connections]) terminate()
      wss.close()
    },
    connections: () => connections.size,
  }
}

type Tracked = {
  method: string
  ruleIds: readonly string[]
  t0: number
  bytesIn: number
  truncate: TruncateAction | undefined
  bytesPerSecond: number | undefined
}

/**
 * Frames to one client, in order. A throttled frame waits until its bytes would have arrived
 * at `bytesPerSecond`; frames behind it wait too.
 */
function createOutbox(ws: WebSocket, after: ProxyCore['after'], overflow: () => void) {
  type Item = { data: string | Buffer; binary: boolean; waitMs: number; sent: ((sent: boolean) => void) | undefined }
  const queue: Item[] = []
  let busy = false
  const deliver = (item: Item) => {
    const open = ws.readyState === WebSocket.OPEN
    if (open) ws.send(item.data, { binary: item.binary })
    item.sent?.(open)
  }
  const pump = () => {
    const item = queue.shift()
    if (!item) {
      busy = false
      return
    }
    busy = true
    if (item.waitMs <= 0) {
      deliver(item)
      pump()
    } else
      after(item.waitMs, () => {
        deliver(item)
        pump()
      })
  }
  return {
    send(data: string | Buffer, binary: boolean, bytesPerSecond?: number, sent?: (sent: boolean) => void) {
      const waitMs = bytesPerSecond ? (Buffer.byteLength(data) / bytesPerSecond) * 1000 : 0
      const item = { data, binary, waitMs, sent }
      if (!busy && queue.length === 0 && waitMs === 0) return deliver(item)
      if (queue.length >= MAX_QUEUED_FRAMES) {
        sent?.(false)
        return overflow()
      }
      queue.push(item)
      if (!busy) pump()
    },
    clear() {
      for (const item of queue.splice(0)) item.sent?.(false)
    },
  }
}

/** The `x-forkchaos-client` header (request or upgrade), else the remote address. */
export function clientOf(req: IncomingMessage): string {
  const header = req.headers['x-forkchaos-client']
  const named = Array.isArray(header) ? header[0] : header
  return named || req.socket.remoteAddress || 'unknown'
}

/** The first `bytes` of a text (default half), at most all but one byte; a split character becomes U+FFFD so the frame stays valid text. */
function cutText(text: string, truncate: TruncateAction | undefined): string {
  if (!truncate) return text
  const bytes = Buffer.from(text)
  const n = Math.max(0, Math.min(truncate.bytes ?? Math.floor(bytes.length / 2), bytes.length - 1))
  return bytes.subarray(0, n).toString('utf8')
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data
  if (Array.isArray(data)) return Buffer.concat(data)
  return Buffer.from(data)
}

const isSendableCloseCode = (code: number) =>
  (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999)
