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
  oddNumericIds,
  MAX_JSON_DEPTH,
  outcomeOf,
  planCall,
  planRequest,
  type RequestPlan,
  readRequest,
  resolveCalls,
  ruleMatches,
  safeParse,
  scanJson,
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
 *
 * The fast path: while no rule is installed (looked at per message, so a rule takes effect on the
 * next frame either way), a message within the depth limit goes upstream, and an answer to the
 * client, as soon as it is read, and the work that only feeds stats and events — parsing it for
 * its methods and ids, matching answers to calls — waits until the proxy's WebSocket traffic has
 * been quiet for `LAZY_QUIET_MS` (at most `LAZY_MAX_LAG_MS` or `LAZY_MAX_PENDING` frames later).
 * Events keep the times the frames passed; `stats()` counts what is pending first, so it is never
 * behind. Anything the proxy itself answers or changes is not deferred: a connection's pending
 * frames are counted before any other of its frames is handled.
 */
export type WebSocketBridge = {
  /** Terminates every client and upstream socket. */
  close(): void
  connections(): number
  /** Counts every frame the fast path has passed but not yet counted. */
  flush(): void
}

/** Client frames waiting for the upstream socket to open; more close the client with 1013. */
const MAX_BACKLOG_FRAMES = 1_000
/** Frames waiting behind a `slow-consumer` throttle; more disconnect the client (as nodes drop slow consumers). */
const MAX_QUEUED_FRAMES = 10_000
/** Pass-through calls awaiting their answer, and subscriptions a drop rule counts, per connection (a 10,000-call batch and its neighbours fit). */
const MAX_TRACKED = 50_000
/** After a client's close frame, how long the proxy waits for upstream's reaction before it ends both sockets. */
const CLOSE_MIRROR_MS = 5_000
/** Fast-path frames are counted once the proxy's WebSocket traffic has been quiet this long… */
const LAZY_QUIET_MS = 20
/** …or when the oldest of them has waited this long… */
const LAZY_MAX_LAG_MS = 1_000
/** …or when a connection has this many waiting. */
const LAZY_MAX_PENDING = 4_096

/**
 * The client side of a bridge. ws answers a peer's close frame at once with its own; this socket
 * hands that moment to the bridge instead (`onPeerClose`), so the client meets what upstream does:
 * answers still in flight are delivered, then upstream's close frame (and code) or, where upstream
 * just drops the connection (Anvil does), a dropped connection (1006). A WebSocketServer option
 * (`WebSocket`) supplies the class; the override is the only change.
 */
class BridgedSocket extends WebSocket {
  /** Called once, instead of ws's automatic close, when a close is asked for by ws itself (the client's close frame, or a protocol error). */
  onPeerClose: ((code: number | undefined, reason: string | Buffer | undefined) => void) | undefined
  override close(code?: number, reason?: string | Buffer) {
    const handler = this.onPeerClose
    this.onPeerClose = undefined
    if (handler && this.readyState === WebSocket.OPEN) return handler(code, reason)
    super.close(code, reason)
  }
  /** A close the bridge decided on. */
  closeNow(code?: number, reason?: string) {
    this.onPeerClose = undefined
    super.close(code, reason)
  }
}

export function attachWebSocket(options: {
  server: Server
  core: ProxyCore
  upstreamUrl: URL
  maxConnections: number
}): WebSocketBridge {
  const { server, core, upstreamUrl } = options
  const wss = new WebSocketServer({ noServer: true, maxPayload: core.maxBodyBytes, perMessageDeflate: false, WebSocket: BridgedSocket })
  const connections = new Set<() => void>()

  // ─── The fast path's deferred counting, for every connection ─────────────────────────────────
  /** Connections with frames not yet counted, each with its count function. */
  const lazy = new Set<() => void>()
  let lastFrame = 0
  let oldestPending = 0
  let lazyTimer: (() => void) | undefined
  const flushAll = () => {
    lazyTimer?.()
    lazyTimer = undefined
    for (const count of [...lazy]) count()
  }
  const lazyCheck = () => {
    lazyTimer = undefined
    const now = performance.now()
    if (now - lastFrame >= LAZY_QUIET_MS || now - oldestPending >= LAZY_MAX_LAG_MS) return flushAll()
    lazyTimer = core.after(Math.max(1, LAZY_QUIET_MS - (now - lastFrame)), lazyCheck)
  }
  /** A connection has a frame waiting to be counted. */
  const deferred = (count: () => void) => {
    lastFrame = performance.now()
    if (lazy.size === 0) oldestPending = lastFrame
    lazy.add(count)
    lazyTimer ??= core.after(LAZY_QUIET_MS, lazyCheck)
  }

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => {})
    if (connections.size >= options.maxConnections) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 0\r\n\r\n')
      return
    }
    wss.handleUpgrade(req, socket, head, (client) => bridge(client as BridgedSocket, req, socket))
  })

  function bridge(client: BridgedSocket, req: IncomingMessage, clientSocket: Duplex) {
    const name = clientOf(req)
    const target = new URL(upstreamUrl.href)
    if (req.url && req.url !== '/') {
      const asked = new URL(req.url, 'http://x')
      target.pathname = target.pathname.replace(/\/$/, '') + asked.pathname
      target.search = asked.search
    }
    // A zero mask: ws then skips XOR-ing every byte the client sent (a third of the relay's CPU for
    // large messages). Masking guards browsers' traffic against caching intermediaries; this link is
    // the proxy's own, to an upstream it was pointed at.
    const upstream = new WebSocket(target, { perMessageDeflate: false, handshakeTimeout: core.upstreamTimeoutMs, generateMask: (mask) => mask.fill(0) })
    let upstreamOpened = false
    let closed = false
    const backlog: { data: string | Buffer; binary: boolean }[] = []
    const tracked = new Map<string, Tracked>()
    const exchanges = new Map<string, { done: (reply: unknown) => void; fail: (error: Error) => void }>()
    const subscriptions = new Map<string, { active: boolean; seen: number }>()
    const holds = new Map<() => void, () => void>()
    let seq = 0
    const nextId = () => `forkchaos-${++seq}`
    const toClient = coalesce(clientSocket)
    let toUpstreamSocket = () => {}
    upstream.on('upgrade', (res: IncomingMessage) => {
      toUpstreamSocket = coalesce(res.socket)
    })
    const outbox = createOutbox(client, core.after, () => client.terminate(), toClient)

    // Frames the fast path passed, in the order they passed, to be counted (see WebSocketBridge).
    type Pending = { answer: false; data: Buffer; t0: number } | { answer: true; data: Buffer; t1: number; sent: boolean }
    let pending: Pending[] = []
    const count = () => {
      lazy.delete(count)
      const frames = pending
      pending = []
      for (const frame of frames) {
        if (!frame.answer) {
          const request = readRequest(frame.data, name)
          core.arrive(request.methods)
          passThrough(frame.data, request, [], NO_PLAN, frame.t0, frame.data.length, false)
        } else countAnswer(frame.data, frame.sent, frame.t1)
      }
    }
    const defer = (frame: Pending) => {
      pending.push(frame)
      if (pending.length === 1) deferred(count)
      else if (pending.length >= LAZY_MAX_PENDING) count()
      else lastFrame = performance.now()
    }
    /** Tracked calls whose answer a rule cuts or throttles: while there are any, answers take the full path. */
    let effectful = 0

    const shut = () => {
      if (closed) return
      count()
      closed = true
      connections.delete(terminate)
      for (const { fail } of exchanges.values()) fail(new Error('connection closed'))
      exchanges.clear()
      for (const t of tracked.values()) core.record([{ method: t.method, outcome: 'dropped', ruleIds: t.ruleIds }], name, t.t0, t.bytesIn, 0)
      tracked.clear()
      effectful = 0
      for (const [release, unhold] of holds) {
        unhold()
        release()
      }
      outbox.clear()
      cancelMirror()
      if (upstream.readyState === WebSocket.OPEN) upstream.close(1000)
      else upstream.terminate()
      if (client.readyState === WebSocket.OPEN) client.closeNow(1001, 'upstream gone')
    }
    const terminate = () => {
      client.terminate()
      upstream.terminate()
      shut()
    }
    connections.add(terminate)

    // The client sent its close frame: pass it upstream and let upstream's reaction answer it (upstream 'close' below).
    let cancelMirror = () => {}
    client.onPeerClose = (code, reason) => {
      const forward = () => {
        if (code === undefined || code === 1005) upstream.close()
        else upstream.close(code, reason)
      }
      if (upstream.readyState === WebSocket.OPEN || upstream.readyState === WebSocket.CONNECTING) {
        // Still connecting: the close follows the backlog once upstream is open.
        if (upstream.readyState === WebSocket.OPEN) forward()
        else upstream.once('open', forward)
        cancelMirror = core.after(CLOSE_MIRROR_MS, terminate)
      } else {
        upstream.terminate()
        client.closeNow(code === 1005 ? undefined : code, typeof reason === 'string' ? reason : reason?.toString('utf8'))
      }
    }

    const toUpstream = (data: string | Buffer, binary = false) => {
      if (upstream.readyState === WebSocket.OPEN) {
        toUpstreamSocket()
        upstream.send(data, { binary })
      }
      else if (upstream.readyState === WebSocket.CONNECTING) {
        if (backlog.length >= MAX_BACKLOG_FRAMES) {
          client.closeNow(1013, 'upstream not ready')
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
        if (!upstreamOpened) client.closeNow(1014, 'upstream unavailable')
        else if (code === 1005) client.closeNow() // an empty close frame, as upstream sent it
        else if (isSendableCloseCode(code)) client.closeNow(code, reason.toString('utf8').slice(0, 120))
        else client.terminate() // upstream dropped the connection without a close frame (1006): so does the client's
      }
      shut()
    })
    client.on('error', (error: Error & { code?: string }) => {
      // A frame the proxy refused (too large, bad UTF-8): ws asked to close with its code; close now, not upstream's way.
      if (client.readyState === WebSocket.OPEN) client.closeNow(closeCodeOf(error))
    })
    client.on('close', shut)

    // ─── Client → upstream ─────────────────────────────────────────────────────────────────
    client.on('message', (data: RawData, isBinary: boolean) => {
      const t0 = performance.now()
      const buffer = toBuffer(data)
      if (isBinary) return toUpstream(buffer, true)
      if (core.installed().length === 0 && withinDepth(buffer)) {
        // The fast path: upstream gets it now; it is counted later (see WebSocketBridge).
        defer({ answer: false, data: buffer, t0 })
        return toUpstream(buffer)
      }
      // Rules may act on calls the fast path passed (their answers): count those first. Without a rule,
      // this is a call nested past the limit, which only the proxy answers and nothing tracks.
      if (core.installed().length > 0) count()
      // Depth is checked on the bytes before anything is parsed; the bytes go upstream as they came.
      const request = readRequest(buffer, name)
      core.arrive(request.methods)
      const rules = core.installed().slice()
      const plans = rules.length === 0 && request.refusals === 0 ? [] : request.infos.map((info) => info && planCall(rules, info))
      const plan = planRequest(plans, request.refusals)
      if (!plan.affected) {
        passThrough(buffer, request, plans, plan, t0, buffer.length)
        return
      }
      handleAffected(buffer, request, plans, plan, t0, buffer.length).catch((error: Error) => {
        if (closed) return
        const answers = request.elements.map((el) => (hasId(el) ? errorReply(idOf(el), { code: -32603, message: `forkchaos proxy: ${error.message}` }) : undefined))
        send(request.batch, answers, {}, (sent) =>
          core.record(request.methods.map((method, i) => ({ method, outcome: sent ? 'error' : 'dropped', ruleIds: plans[i]?.ruleIds ?? [] })), name, t0, buffer.length, 0),
        )
      })
    })

    /** Forwards the text as it is and remembers its calls so their answers can be reported (and cut or throttled). */
    function passThrough(
      text: Buffer,
      request: ReturnType<typeof readRequest>,
      plans: readonly (CallPlan | undefined)[],
      plan: Pick<RequestPlan, 'truncate' | 'bytesPerSecond'>,
      t0: number,
      bytesIn: number,
      send = true,
    ) {
      const n = request.methods.length
      request.elements.forEach((el, i) => {
        const info = request.infos[i]
        const method = request.methods[i] as string
        const ruleIds = plans[i]?.ruleIds ?? []
        // Notifications and non-calls get no answer that could be matched to them.
        if (!info || !hasId(el)) return core.record([{ method, outcome: info ? 'ok' : 'error', ruleIds }], name, t0, share(bytesIn, n, i), 0, send ? undefined : t0)
        const key = JSON.stringify(idOf(el) ?? null)
        const previous = untrack(key)
        if (previous) core.record([{ method: previous.method, outcome: 'dropped', ruleIds: previous.ruleIds }], name, previous.t0, previous.bytesIn, 0)
        if (tracked.size >= MAX_TRACKED) {
          // The oldest tenth at once: taking one at a time from the front of a Map costs a walk over every deleted slot before it.
          let n = 0
          for (const oldest of tracked.keys()) {
            if (n++ >= MAX_TRACKED / 10) break
            const entry = untrack(oldest) as Tracked
            core.record([{ method: entry.method, outcome: 'dropped', ruleIds: entry.ruleIds }], name, entry.t0, entry.bytesIn, 0)
          }
        }
        if (plan.truncate || plan.bytesPerSecond !== undefined) effectful++
        tracked.set(key, { method, ruleIds, t0, bytesIn: share(bytesIn, n, i), truncate: plan.truncate, bytesPerSecond: plan.bytesPerSecond })
      })
      if (request.elements.length === 0) core.record([{ method: '(invalid)', outcome: 'error', ruleIds: [] }], name, t0, bytesIn, 0, send ? undefined : t0)
      core.forwarded(n)
      if (send) toUpstream(text)
    }

    /** Forgets a tracked call (its answer came, or it is given up), keeping `effectful` right. */
    function untrack(key: string): Tracked | undefined {
      const entry = tracked.get(key)
      if (!entry) return undefined
      tracked.delete(key)
      if (entry.truncate || entry.bytesPerSecond !== undefined) effectful--
      return entry
    }

    async function handleAffected(
      text: Buffer,
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
        const answers = elements.map((el, i) => {
          const refusal = request.refused[i]
          if (refusal) return errorReply(idOf(el), refusal)
          return !infos[i] ? errorReply(null, errorFor(-32600)) : hasId(el) ? errorReply(idOf(el), error) : undefined
        })
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
      const { answers } = await resolveCalls({ elements, infos, plans, batch, head: core.head, forward, refused: request.refused, oddIds: oddNumericIds(text) })
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
      if (exchanges.size === 0 && effectful === 0 && outbox.idle() && core.installed().length === 0) {
        // The fast path: the client gets it now; the calls it answers are found later (see WebSocketBridge).
        const sent = outbox.send(buffer, false)
        defer({ answer: true, data: buffer, t1: performance.now(), sent })
        return
      }
      count()
      // Not JSON: the client gets it as it is. (JSON.parse reads any depth; only ids are re-serialised here, through keyOf.)
      const parsed = safeParse(buffer.toString('utf8'))
      if (!parsed.ok) return outbox.send(buffer, false)
      const value = parsed.value
      const list = Array.isArray(value) ? value : [value]
      for (const r of list) {
        const exchange = isRecord(r) && typeof r.id === 'string' ? exchanges.get(r.id) : undefined
        if (exchange) return exchange.done(value)
      }
      if (isRecord(value) && value.method === 'eth_subscription' && isRecord(value.params)) return notify(buffer, value.params.subscription)

      const answered: { entry: Tracked; answer: unknown }[] = []
      for (const r of list) {
        if (!isRecord(r) || r.id === undefined || r.id === null) continue
        const key = keyOf(r.id)
        const entry = key === undefined ? undefined : untrack(key)
        if (!entry) continue
        answered.push({ entry, answer: r })
      }
      const truncate = answered.find((a) => a.entry.truncate)?.entry.truncate
      const rates = answered.map((a) => a.entry.bytesPerSecond).filter((r): r is number => r !== undefined)
      const out = truncate ? cutText(buffer.toString('utf8'), truncate) : buffer
      outbox.send(out, false, rates.length ? Math.min(...rates) : undefined, (sent) => {
        const bytesOut = Buffer.byteLength(out)
        answered.forEach(({ entry, answer }, i) => {
          const outcome = !sent || truncate ? 'dropped' : outcomeOf(answer)
          core.record([{ method: entry.method, outcome, ruleIds: entry.ruleIds }], name, entry.t0, entry.bytesIn, share(bytesOut, answered.length, i))
        })
      })
    })

    /**
     * Records the calls an answer the fast path sent answered, as the full path would have when it
     * sent it (no exchange was waiting and no rule was installed then, so it was no notification
     * a rule acts on, and nothing was cut or throttled).
     */
    function countAnswer(data: Buffer, sent: boolean, t1: number) {
      const parsed = safeParse(data.toString('utf8'))
      if (!parsed.ok) return
      const list = Array.isArray(parsed.value) ? parsed.value : [parsed.value]
      const answered: { entry: Tracked; answer: unknown }[] = []
      for (const r of list) {
        if (!isRecord(r) || r.id === undefined || r.id === null) continue
        const key = keyOf(r.id)
        const entry = key === undefined ? undefined : untrack(key)
        if (entry) answered.push({ entry, answer: r })
      }
      answered.forEach(({ entry, answer }, i) => {
        const outcome = !sent ? 'dropped' : outcomeOf(answer)
        core.record([{ method: entry.method, outcome, ruleIds: entry.ruleIds }], name, entry.t0, entry.bytesIn, share(data.length, answered.length, i), t1)
      })
    }

    function notify(text: Buffer, subscription: unknown) {
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
    flush: flushAll,
  }
}

const NO_PLAN: Pick<RequestPlan, 'truncate' | 'bytesPerSecond'> = { truncate: undefined, bytesPerSecond: undefined }

/** Whether no call in the text nests past the depth limit (what the fast path may pass on unread). Text that is not JSON passes: upstream answers it. */
function withinDepth(b: Buffer): boolean {
  // Nesting past the limit takes two bytes a level: shorter text (most calls) needs no look.
  if (b.length < 2 * (MAX_JSON_DEPTH + 1)) return true
  const shape = scanJson(b)
  return shape === undefined || shape.depth <= (shape.batch ? MAX_JSON_DEPTH + 1 : MAX_JSON_DEPTH)
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
function createOutbox(ws: WebSocket, after: ProxyCore['after'], overflow: () => void, beforeWrite: () => void) {
  type Item = { data: string | Buffer; binary: boolean; waitMs: number; sent: ((sent: boolean) => void) | undefined }
  const queue: Item[] = []
  let busy = false
  const deliver = (item: Item) => {
    const open = ws.readyState === WebSocket.OPEN
    if (open) {
      beforeWrite()
      ws.send(item.data, { binary: item.binary })
    }
    item.sent?.(open)
    return open
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
    /** Returns whether the frame went out now (false: queued, or the socket is closed). */
    send(data: string | Buffer, binary: boolean, bytesPerSecond?: number, sent?: (sent: boolean) => void): boolean {
      const waitMs = bytesPerSecond ? (Buffer.byteLength(data) / bytesPerSecond) * 1000 : 0
      const item = { data, binary, waitMs, sent }
      if (!busy && queue.length === 0 && waitMs === 0) return deliver(item)
      if (queue.length >= MAX_QUEUED_FRAMES) {
        sent?.(false)
        overflow()
        return false
      }
      queue.push(item)
      if (!busy) pump()
      return false
    },
    /** Nothing queued: a frame sent now goes out at once. */
    idle: () => !busy && queue.length === 0,
    clear() {
      for (const item of queue.splice(0)) item.sent?.(false)
    },
  }
}

/**
 * Frames written in one turn of the event loop leave in one write: a burst of client messages
 * (many frames in one TCP read) goes upstream in one syscall instead of one per frame, and back.
 * Call the returned function before each write; the socket is corked until the turn ends.
 */
function coalesce(socket: Duplex): () => void {
  let corked = false
  const uncork = () => {
    corked = false
    socket.uncork()
  }
  return () => {
    if (corked || socket.destroyed) return
    corked = true
    socket.cork()
    process.nextTick(uncork)
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

/** An id as a map key; undefined for one nested too deep to write (only an upstream could send that). */
function keyOf(id: unknown): string | undefined {
  try {
    return JSON.stringify(id)
  } catch {
    return undefined
  }
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data
  if (Array.isArray(data)) return Buffer.concat(data)
  return Buffer.from(data)
}

/** The close code ws gives a frame it refused. */
function closeCodeOf(error: Error & { code?: string }): number {
  if (error.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') return 1009
  if (error.code === 'WS_ERR_INVALID_UTF8') return 1007
  return 1002
}

const isSendableCloseCode = (code: number) =>
  (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999)
