import type { IncomingMessage, Server } from 'node:http'
import { isUtf8 } from 'node:buffer'
import * as net from 'node:net'
import type { Duplex } from 'node:stream'
import * as tls from 'node:tls'
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
  closingQuote,
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
import {
  acceptKey,
  closeCodeOf,
  closePayload,
  createFrameReader,
  type Frame,
  type FrameError,
  frameHeader,
  isSendableCloseCode,
  messagePayload,
  OPCODE,
} from './ws-frames.js'
import { type ScannedElement, scanMessage } from './scan.js'

/**
 * The WebSocket side of the JSON-RPC proxy, on the HTTP port (upgrade). Each client gets its
 * own upstream socket. Client messages go through the same rules as HTTP calls; answers are
 * routed back by id. Subscription notifications (`eth_subscription`) pass through, subject to
 * `drop-subscription` (the subscription goes silent, the socket stays open) and `slow-consumer`
 * (whole frames, delayed so the rate holds, in order).
 *
 * Where HTTP would answer with a status, WebSocket calls get the JSON-RPC error that status
 * carries (`http-error`); `truncate` sends the cut text as one frame; `hang` never answers the
 * message and keeps the socket open.
 *
 * A byte relay with frame boundaries (`ws-frames.ts`): the proxy answers the client's upgrade
 * itself and opens upstream over a raw socket (no extension negotiated either way), then reads
 * the frames of both streams. A client must mask its frames and a server must not; the proxy is
 * upstream's client and the client's server, so frames are valid forwarded exactly as they came.
 *
 * The fast path: while no rule is installed (looked at per message, so a rule takes effect on the
 * next message either way), a client text message within the depth limit goes upstream as the
 * bytes received, and so does an answer to the client; control frames (close, ping, pong) always
 * do, so the client meets upstream's own close (Anvil just drops the connection: 1006). The work
 * that only feeds stats and events — reading a message for its methods and ids (`scan.ts`: a walk
 * over its bytes that builds nothing, where JSON.parse built every value), matching answers to
 * calls — waits until the proxy's WebSocket traffic has been quiet for `LAZY_QUIET_MS` (at most
 * `LAZY_MAX_LAG_MS` or `LAZY_MAX_PENDING` messages later). Events keep the times the frames passed;
 * `stats()` counts what is pending first, so it is never behind. Anything the proxy itself answers
 * or changes takes the full path: parsed, planned, and sent in frames the proxy writes (to the
 * client only between upstream's messages, never inside a fragmented one); a connection's pending
 * messages are counted before any other of its messages is handled.
 */
export type WebSocketBridge = {
  /** Terminates every client and upstream socket. */
  close(): void
  connections(): number
  /** Counts every message the fast path has passed but not yet counted. */
  flush(): void
}

/** Client frames waiting for the upstream socket to open; more close the client with 1013. */
const MAX_BACKLOG_FRAMES = 1_000
/** Frames waiting behind a `slow-consumer` throttle (or for upstream's fragmented message to end); more disconnect the client (as nodes drop slow consumers). */
const MAX_QUEUED_FRAMES = 10_000
/** Pass-through calls awaiting their answer, and subscriptions a drop rule counts, per connection (a 10,000-call batch and its neighbours fit). */
const MAX_TRACKED = 50_000
/** After a close frame either way, how long the proxy waits for the other side's reaction before it ends both sockets. */
const CLOSE_MIRROR_MS = 5_000
/** A message from upstream, all fragments together, of at most 100 MiB (what ws allowed before); more closes both sides with 1009. */
const MAX_UPSTREAM_MESSAGE_BYTES = 100 * 1024 * 1024
/** Upstream's handshake answer (status line and headers) of at most 16 KiB. */
const MAX_HANDSHAKE_BYTES = 16 * 1024
/** Fast-path messages are counted once the proxy's WebSocket traffic has been quiet this long (a burst's answers first, its counting after)… */
const LAZY_QUIET_MS = 100
/** …or when the oldest of them has waited this long… */
const LAZY_MAX_LAG_MS = 1_000
/** …or when a connection has this many waiting. */
const LAZY_MAX_PENDING = 4_096
/** Counting goes in slices of about this long, with I/O between them. */
const LAZY_SLICE_MS = 2

export function attachWebSocket(options: {
  server: Server
  core: ProxyCore
  upstreamUrl: URL
  maxConnections: number
}): WebSocketBridge {
  const { server, core, upstreamUrl } = options
  const connections = new Set<() => void>()

  // ─── The fast path's deferred counting, for every connection ─────────────────────────────────
  /** Connections with messages not yet counted, each with its count function. */
  const lazy = new Set<(deadline?: number) => boolean>()
  let lastFrame = 0
  let oldestPending = 0
  let lazyTimer: (() => void) | undefined
  let sliceQueued = false
  const flushAll = () => {
    lazyTimer?.()
    lazyTimer = undefined
    for (const count of [...lazy]) count()
  }
  /**
   * Counts for at most `LAZY_SLICE_MS`, then yields to I/O (frames still arriving pass first) and goes
   * on where it stopped: counting a round of traffic costs about what relaying it did, and done in one
   * go it held up the frames of any connection still busy.
   */
  const countSlice = () => {
    sliceQueued = false
    const started = performance.now()
    const deadline = started + LAZY_SLICE_MS
    for (const count of [...lazy]) if (!count(deadline)) break
    if (lazy.size === 0) return
    if (lastFrame > started && performance.now() - oldestPending < LAZY_MAX_LAG_MS) lazyTimer ??= core.after(LAZY_QUIET_MS, lazyCheck)
    else {
      sliceQueued = true
      setImmediate(countSlice)
    }
  }
  const lazyCheck = () => {
    lazyTimer = undefined
    const now = performance.now()
    if (now - lastFrame >= LAZY_QUIET_MS || now - oldestPending >= LAZY_MAX_LAG_MS) {
      if (!sliceQueued) countSlice()
      return
    }
    lazyTimer = core.after(Math.max(1, LAZY_QUIET_MS - (now - lastFrame)), lazyCheck)
  }
  /** A connection has a message waiting to be counted. */
  const deferred = (count: (deadline?: number) => boolean) => {
    lastFrame = performance.now()
    if (lazy.size === 0) oldestPending = lastFrame
    lazy.add(count)
    if (!sliceQueued) lazyTimer ??= core.after(LAZY_QUIET_MS, lazyCheck)
  }

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => {})
    if (connections.size >= options.maxConnections) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 0\r\n\r\n')
      return
    }
    const refusal = upgradeRefusal(req)
    if (refusal) {
      const body = JSON.stringify({ error: refusal })
      socket.end(`HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-type: application/json\r\nsec-websocket-version: 13\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
      return
    }
    const key = req.headers['sec-websocket-key'] as string
    // As ws's server did: the first subprotocol the client offers, if any.
    const protocol = String(req.headers['sec-websocket-protocol'] ?? '').split(',')[0]?.trim()
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(key)}\r\n${protocol ? `Sec-WebSocket-Protocol: ${protocol}\r\n` : ''}\r\n`,
    )
    if (socket instanceof net.Socket) {
      socket.setNoDelay(true)
      socket.setTimeout(0)
    }
    bridge(req, socket, head, key)
  })

  function bridge(req: IncomingMessage, clientSocket: Duplex, head: Buffer, key: string) {
    const name = clientOf(req)
    const target = new URL(upstreamUrl.href)
    if (req.url && req.url !== '/') {
      const asked = new URL(req.url, 'http://x')
      target.pathname = target.pathname.replace(/\/$/, '') + asked.pathname
      target.search = asked.search
    }
    let closed = false
    const tracked = new Map<string, Tracked>()
    const exchanges = new Map<string, { done: (reply: unknown) => void; fail: (error: Error) => void }>()
    const subscriptions = new Map<string, { active: boolean; seen: number }>()
    const holds = new Map<() => void, () => void>()
    let seq = 0
    const nextId = () => `forkchaos-${++seq}`

    // ─── The two sockets ───────────────────────────────────────────────────────────────────
    /** A close frame went to the client / to upstream: no data frame follows it (§5.5.1). */
    let clientCloseSent = false
    let upstreamCloseSent = false
    /** Upstream: connecting (frames wait in `backlog`), open, or gone. */
    let upstreamState: 'connecting' | 'open' | 'gone' = 'connecting'
    const backlog: Buffer[] = []
    let backlogFrames = 0
    const corkClient = coalesce(clientSocket)
    let corkUpstream = () => {}
    let upstreamSocket: net.Socket | undefined

    /** Bytes to upstream (whole frames): now, or after the handshake. */
    const upstreamWrite = (bytes: Buffer, frames = 1) => {
      if (upstreamState === 'open' && upstreamSocket?.writable) {
        corkUpstream()
        upstreamSocket.write(bytes)
      } else if (upstreamState === 'connecting') {
        if (backlogFrames + frames > MAX_BACKLOG_FRAMES) return closeClient(1013, 'upstream not ready')
        backlog.push(bytes)
        backlogFrames += frames
      }
    }
    /** A frame the proxy writes to upstream (masked with a zero key). */
    const upstreamFrame = (opcode: number, payload: Buffer) => {
      upstreamWrite(Buffer.concat([frameHeader(opcode, payload.length, true), payload]))
    }
    /** A text message the proxy sends upstream. */
    const toUpstream = (data: string | Buffer) => upstreamFrame(OPCODE.text, typeof data === 'string' ? Buffer.from(data) : data)

    /** Upstream's fragmented message is being relayed: the proxy's own frames to the client wait for its end. */
    let upstreamMidMessage = false
    const afterMessage: Buffer[] = []
    const clientWritable = () => !clientCloseSent && clientSocket.writable
    const clientWriteRaw = (bytes: Buffer) => {
      corkClient()
      clientSocket.write(bytes)
    }
    /** A frame the proxy writes to the client (unmasked); false when the client is gone. */
    const clientFrame = (opcode: number, payload: Buffer): boolean => {
      if (!clientWritable()) return false
      const bytes = Buffer.concat([frameHeader(opcode, payload.length, false), payload])
      if (!upstreamMidMessage) clientWriteRaw(bytes)
      else if (afterMessage.length >= MAX_QUEUED_FRAMES) {
        terminate()
        return false
      } else afterMessage.push(bytes)
      return true
    }
    const outbox = createOutbox(clientFrame, core.after, () => terminate())

    /** The proxy closes the client's side with its own code (a refused frame, upstream unavailable), then both sockets. */
    function closeClient(code: number, reason: string) {
      if (clientWritable()) {
        corkClient()
        clientSocket.write(closeFrame(code, reason, false))
        clientCloseSent = true
      }
      endBoth()
    }
    /** Both sockets end gracefully (what was written is still delivered); destroyed if the peers do not finish within `CLOSE_MIRROR_MS`. */
    let ended = false
    function endBoth() {
      if (ended) return shut()
      ended = true
      if (upstreamState === 'open' && !upstreamCloseSent && upstreamSocket?.writable) {
        upstreamCloseSent = true
        corkUpstream()
        upstreamSocket.write(closeFrame(1000, '', true))
      }
      upstreamState = 'gone'
      upstreamSocket?.end()
      clientSocket.end()
      const destroy = core.after(CLOSE_MIRROR_MS, terminateSockets)
      const both = () => {
        if (clientSocket.destroyed && upstreamSocket?.destroyed !== false) destroy()
      }
      clientSocket.once('close', both)
      upstreamSocket?.once('close', both)
      both()
      shut()
    }
    function terminateSockets() {
      clientSocket.destroy()
      upstreamSocket?.destroy()
    }
    let cancelMirror = () => {}

    // Frames the fast path passed, in the order they passed, to be counted (see WebSocketBridge).
    type Pending = { answer: false; data: Buffer; t0: number } | { answer: true; data: Buffer; t1: number; sent: boolean }
    let pending: Pending[] = []
    /** How many of `pending` are counted already (a slice may stop midway). */
    let counted = 0
    /** Counts what is pending, all of it or until `deadline` (then false: more is left). */
    const count = (deadline = Number.POSITIVE_INFINITY): boolean => {
      while (counted < pending.length) {
        const frame = pending[counted++] as Pending
        if (!frame.answer) countRequest(frame.data, frame.t0)
        else countAnswer(frame.data, frame.sent, frame.t1)
        if (performance.now() > deadline && counted < pending.length) return false
      }
      pending = []
      counted = 0
      lazy.delete(count)
      if (closed) finish()
      return true
    }
    const defer = (frame: Pending) => {
      pending.push(frame)
      if (!lazy.has(count)) deferred(count)
      else if (pending.length - counted >= LAZY_MAX_PENDING) count()
      else lastFrame = performance.now()
    }
    /** Tracked calls whose answer a rule cuts or throttles: while there are any, answers take the full path. */
    let effectful = 0

    /** Calls still unanswered when the connection ended were dropped (recorded once what the fast path passed is counted). */
    const finish = () => {
      for (const t of tracked.values()) core.record([{ method: t.method, outcome: 'dropped', ruleIds: t.ruleIds }], name, t.t0, t.bytesIn, 0)
      tracked.clear()
      effectful = 0
    }
    const shut = () => {
      if (closed) return
      closed = true
      connections.delete(terminate)
      for (const { fail } of exchanges.values()) fail(new Error('connection closed'))
      exchanges.clear()
      // Counted in slices like the rest: a connection that ends while others are busy must not stall them.
      if (counted === pending.length) finish()
      for (const [release, unhold] of holds) {
        unhold()
        release()
      }
      outbox.clear()
      cancelMirror()
      afterMessage.length = 0
      backlog.length = 0
    }
    function terminate() {
      terminateSockets()
      upstreamState = 'gone'
      shut()
    }
    connections.add(terminate)

    // ─── Upstream: a raw socket and its handshake ────────────────────────────────────────────
    {
      const secure = target.protocol === 'wss:'
      const host = target.hostname.replace(/^\[(.*)\]$/, '$1')
      const port = Number(target.port || (secure ? 443 : 80))
      const socket = secure ? tls.connect({ host, port, servername: net.isIP(host) ? undefined : host }) : net.connect({ host, port })
      upstreamSocket = socket
      socket.setNoDelay(true)
      corkUpstream = coalesce(socket)
      const auth = target.username ? `Authorization: Basic ${Buffer.from(`${decodeURIComponent(target.username)}:${decodeURIComponent(target.password)}`).toString('base64')}\r\n` : ''
      // The client's own key: upstream's accept then matches what the client was told.
      socket.write(
        `GET ${target.pathname}${target.search} HTTP/1.1\r\nHost: ${target.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n${auth}\r\n`,
      )
      const cancelTimeout = core.after(core.upstreamTimeoutMs, () => {
        if (upstreamState === 'connecting') upstreamFailed()
      })
      let answer: Buffer = Buffer.alloc(0)
      const upstreamFailed = () => {
        cancelTimeout()
        socket.destroy()
        if (upstreamState !== 'connecting') return
        upstreamState = 'gone'
        closeClient(1014, 'upstream unavailable')
      }
      const onHandshake = (chunk: Buffer) => {
        answer = answer.length === 0 ? chunk : Buffer.concat([answer, chunk])
        const end = answer.indexOf('\r\n\r\n')
        if (end < 0) {
          if (answer.length > MAX_HANDSHAKE_BYTES) upstreamFailed()
          return
        }
        const lines = answer.subarray(0, end).toString('latin1').split('\r\n')
        const accept = lines.find((l) => /^sec-websocket-accept:/i.test(l))?.replace(/^[^:]*:\s*/, '').trim()
        if (!/^HTTP\/1\.1 101\b/.test(lines[0] ?? '') || accept !== acceptKey(key)) return upstreamFailed()
        cancelTimeout()
        socket.off('data', onHandshake)
        socket.on('data', onUpstreamData)
        upstreamState = 'open'
        if (closed) return endBoth()
        corkUpstream()
        for (const bytes of backlog.splice(0)) socket.write(bytes)
        backlogFrames = 0
        const rest = answer.subarray(end + 4)
        if (rest.length > 0) onUpstreamData(rest)
      }
      socket.on('data', onHandshake)
      socket.on('error', () => {})
      socket.on('close', () => {
        if (upstreamState === 'connecting') return upstreamFailed()
        // Upstream is gone (after its close frame, or without one: the client's connection then just ends too, 1006).
        if (!closed) endBoth()
      })
    }

    clientSocket.on('close', () => {
      if (!closed) endBoth()
    })
    clientSocket.on('end', () => {
      if (!closed) endBoth()
    })

    // ─── Client → upstream ─────────────────────────────────────────────────────────────────
    const clientReader = createFrameReader({ masked: true, maxMessageBytes: core.maxBodyBytes })
    /** The frames of the client's message in progress (a text message is held until its last fragment: the depth limit reads it whole). */
    let clientMessage: Frame[] = []
    let clientBinary = false
    const onClientData = (chunk: Buffer) => {
      if (closed) return
      const { frames, error } = clientReader.push(chunk)
      for (const frame of frames) {
        if (closed || upstreamCloseSent) return
        if (frame.opcode === OPCODE.close) {
          clientClosed(frame)
          return
        }
        if (frame.opcode >= 0x8) {
          upstreamWrite(frame.raw)
          continue
        }
        if (frame.opcode !== OPCODE.continuation) {
          clientMessage = []
          clientBinary = frame.opcode === OPCODE.binary
        }
        if (clientBinary) {
          // Binary frames pass as they come: no rule reads them.
          upstreamWrite(frame.raw)
          continue
        }
        clientMessage.push(frame)
        if (!frame.fin) continue
        const message = clientMessage
        clientMessage = []
        onClientText(message)
      }
      if (error && !closed) refuse(error)
    }
    clientSocket.on('data', onClientData)
    if (head.length > 0) onClientData(head)

    /** A frame the proxy refused (too large, not masked, bad UTF-8): close now with its code, not upstream's way. */
    function refuse(error: FrameError | { code: 1007; reason: string }) {
      closeClient(error.code, error.reason)
    }

    /** The client sent its close frame: pass it upstream and let upstream's reaction answer it. */
    function clientClosed(frame: Frame) {
      if (upstreamState === 'gone') {
        const payload = messagePayload([frame])
        const code = closeCodeOf(payload)
        if (clientWritable()) {
          clientWriteRaw(closeFrame(isSendableCloseCode(code) ? code : undefined, payload.subarray(2).toString('utf8'), false))
          clientCloseSent = true
        }
        return endBoth()
      }
      upstreamWrite(frame.raw)
      upstreamCloseSent = true
      cancelMirror()
      cancelMirror = core.after(CLOSE_MIRROR_MS, terminate)
    }

    function onClientText(frames: Frame[]) {
      const t0 = performance.now()
      const buffer = messagePayload(frames)
      if (!isUtf8(buffer)) return refuse({ code: 1007, reason: 'invalid UTF-8 in a text message' })
      if (core.installed().length === 0 && withinDepth(buffer)) {
        // The fast path: upstream gets the bytes now; the message is counted later (see WebSocketBridge).
        defer({ answer: false, data: buffer, t0 })
        if (frames.length === 1) return upstreamWrite((frames[0] as Frame).raw)
        return upstreamWrite(Buffer.concat(frames.map((f) => f.raw)), frames.length)
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
    }

    /** Forwards the text as it is and remembers its calls so their answers can be reported (and cut or throttled). */
    function passThrough(
      text: Buffer,
      request: ReturnType<typeof readRequest>,
      plans: readonly (CallPlan | undefined)[],
      plan: Pick<RequestPlan, 'truncate' | 'bytesPerSecond'>,
      t0: number,
      bytesIn: number,
    ) {
      const n = request.methods.length
      request.elements.forEach((el, i) => {
        const info = request.infos[i]
        const method = request.methods[i] as string
        const ruleIds = plans[i]?.ruleIds ?? []
        // Notifications and non-calls get no answer that could be matched to them.
        if (!info || !hasId(el)) return core.record([{ method, outcome: info ? 'ok' : 'error', ruleIds }], name, t0, share(bytesIn, n, i), 0)
        track(JSON.stringify(idOf(el) ?? null), { method, ruleIds, t0, bytesIn: share(bytesIn, n, i), truncate: plan.truncate, bytesPerSecond: plan.bytesPerSecond })
      })
      if (request.elements.length === 0) core.record([{ method: '(invalid)', outcome: 'error', ruleIds: [] }], name, t0, bytesIn, 0)
      core.forwarded(n)
      toUpstream(text)
    }

    /**
     * Counts a message the fast path passed, as `passThrough` would have (no rule, nothing refused:
     * its depth was checked when it passed), from a scan of its bytes instead of a parse.
     */
    function countRequest(data: Buffer, t0: number) {
      const bytesIn = data.length
      const elements = scanMessage(data)?.elements ?? []
      if (elements.length === 0) {
        // Not JSON, or an empty batch: one invalid call, as readRequest names it.
        core.arrive(INVALID)
        core.record(INVALID_CALL, name, t0, bytesIn, 0, t0)
        core.forwarded(1)
        return
      }
      const n = elements.length
      const methods = elements.map((e) => (e.method !== undefined ? e.method : '(invalid)'))
      core.arrive(methods)
      for (let i = 0; i < n; i++) {
        const e = elements[i] as ScannedElement
        const method = methods[i] as string
        if (e.method === undefined || !e.hasId) core.record([{ method, outcome: e.method !== undefined ? 'ok' : 'error', ruleIds: NO_RULES }], name, t0, share(bytesIn, n, i), 0, t0)
        else track(e.idKey as string, { method, ruleIds: NO_RULES, t0, bytesIn: share(bytesIn, n, i), truncate: undefined, bytesPerSecond: undefined })
      }
      core.forwarded(n)
    }

    /** Remembers a call that went upstream until its answer comes (a call with the same id before it is given up as dropped). */
    function track(key: string, entry: Tracked) {
      const previous = untrack(key)
      if (previous) core.record([{ method: previous.method, outcome: 'dropped', ruleIds: previous.ruleIds }], name, previous.t0, previous.bytesIn, 0)
      if (tracked.size >= MAX_TRACKED) {
        // The oldest tenth at once: taking one at a time from the front of a Map costs a walk over every deleted slot before it.
        let n = 0
        for (const oldest of tracked.keys()) {
          if (n++ >= MAX_TRACKED / 10) break
          const old = untrack(oldest) as Tracked
          core.record([{ method: old.method, outcome: 'dropped', ruleIds: old.ruleIds }], name, old.t0, old.bytesIn, 0)
        }
      }
      if (entry.truncate || entry.bytesPerSecond !== undefined) effectful++
      tracked.set(key, entry)
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
    const upstreamReader = createFrameReader({ masked: false, maxMessageBytes: MAX_UPSTREAM_MESSAGE_BYTES })
    /** Upstream's message in progress: its frames, and whether they are relayed as they come (`raw`) or assembled for the full path. */
    let upstreamMessage: { frames: Frame[]; raw: boolean; t1: number } | undefined
    function onUpstreamData(chunk: Buffer) {
      if (closed) return
      const { frames, error } = upstreamReader.push(chunk)
      for (const frame of frames) {
        if (closed) return
        if (frame.opcode >= 0x8) {
          // Control frames pass as they are, between fragments too (§5.4): upstream's close is the client's close.
          if (!clientWritable()) continue
          clientWriteRaw(frame.raw)
          if (frame.opcode === OPCODE.close) {
            clientCloseSent = true
            cancelMirror()
            cancelMirror = core.after(CLOSE_MIRROR_MS, terminate)
          }
          continue
        }
        if (frame.opcode !== OPCODE.continuation) {
          const binary = frame.opcode === OPCODE.binary
          const fast = outbox.idle() && (binary || (exchanges.size === 0 && effectful === 0 && core.installed().length === 0))
          upstreamMessage = { frames: [], raw: fast, t1: performance.now() }
        }
        const message = upstreamMessage as NonNullable<typeof upstreamMessage>
        message.frames.push(frame)
        if (message.raw) {
          // The fast path: the client gets the bytes now; the calls a text answer answers are found later (see WebSocketBridge).
          const sent = clientWritable()
          if (sent) clientWriteRaw(frame.raw)
          upstreamMidMessage = !frame.fin
          if (!frame.fin) continue
          const first = message.frames[0] as Frame
          if (first.opcode === OPCODE.text) defer({ answer: true, data: messagePayload(message.frames), t1: message.t1, sent })
          upstreamMessage = undefined
          if (afterMessage.length > 0 && clientWritable()) for (const bytes of afterMessage.splice(0)) clientWriteRaw(bytes)
          continue
        }
        if (!frame.fin) continue
        upstreamMessage = undefined
        const data = messagePayload(message.frames)
        if ((message.frames[0] as Frame).opcode === OPCODE.binary) outbox.send(data, true)
        else onUpstreamText(data)
      }
      if (error && !closed) {
        // Upstream broke the protocol (or sent a message over the limit): both sides hear the code.
        if (upstreamSocket?.writable && !upstreamCloseSent) {
          upstreamCloseSent = true
          upstreamSocket.write(closeFrame(error.code, error.reason, true))
        }
        closeClient(error.code, error.reason)
      }
    }

    function onUpstreamText(buffer: Buffer) {
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
    }

    /**
     * Records the calls an answer the fast path sent answered, as the full path would have when it
     * sent it (no exchange was waiting and no rule was installed then, so it was no notification
     * a rule acts on, and nothing was cut or throttled).
     */
    function countAnswer(data: Buffer, sent: boolean, t1: number) {
      const scanned = scanMessage(data)
      if (!scanned) return
      const answered: { entry: Tracked; ok: boolean }[] = []
      for (const e of scanned.elements) {
        // What JSON.parse would give as `id: undefined` (none) or `id: null` answers no tracked call.
        if (!e.hasId || e.idKey === undefined || e.idKey === 'null') continue
        const entry = untrack(e.idKey)
        if (entry) answered.push({ entry, ok: e.hasResult && !e.hasError })
      }
      answered.forEach(({ entry, ok }, i) => {
        const outcome = !sent ? 'dropped' : ok ? 'ok' : 'error'
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
      flushAll()
    },
    connections: () => connections.size,
    flush: flushAll,
  }
}

const NO_RULES: readonly string[] = Object.freeze([])
const INVALID: readonly string[] = Object.freeze(['(invalid)'])
const INVALID_CALL: readonly CallRecord[] = Object.freeze([{ method: '(invalid)', outcome: 'error', ruleIds: NO_RULES }])

/**
 * Whether no call in the text nests past `MAX_JSON_DEPTH` (what the fast path may pass on unread; a
 * batch may have one level more: its elements are held to the limit). Stops at the first level past
 * it, so a 50,000-deep call costs 65 bytes here, not 100 kB. Text that is not JSON passes while it
 * stays within the depth (upstream answers it); past it, the full path reads it whole and decides.
 */
function withinDepth(b: Buffer): boolean {
  // Nesting past the limit takes two bytes a level: shorter text (most calls) needs no look.
  if (b.length < 2 * (MAX_JSON_DEPTH + 1)) return true
  let i = 0
  while (b[i] === 0x20 || b[i] === 0x0a || b[i] === 0x0d || b[i] === 0x09) i++
  const limit = b[i] === 0x5b ? MAX_JSON_DEPTH + 1 : MAX_JSON_DEPTH
  let depth = 0
  for (; i < b.length; i++) {
    const c = b[i] as number
    if (c === 0x22) {
      const j = closingQuote(b, i)
      if (j < 0) return true
      i = j
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return false
    } else if (c === 0x5d || c === 0x7d) depth--
  }
  return true
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
 * Messages the proxy sends to one client, in order. A throttled message waits until its bytes
 * would have arrived at `bytesPerSecond`; messages behind it wait too. `write` sends one frame
 * and says whether the client could take it.
 */
function createOutbox(write: (opcode: number, payload: Buffer) => boolean, after: ProxyCore['after'], overflow: () => void) {
  type Item = { data: string | Buffer; binary: boolean; waitMs: number; sent: ((sent: boolean) => void) | undefined }
  const queue: Item[] = []
  let busy = false
  const deliver = (item: Item) => {
    const open = write(item.binary ? OPCODE.binary : OPCODE.text, typeof item.data === 'string' ? Buffer.from(item.data) : item.data)
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
    /** Returns whether the message went out now (false: queued, or the socket is closed). */
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
    /** Nothing queued: a message sent now goes out at once. */
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

/** A close frame (masked with a zero key for upstream); `code` undefined: an empty one (1005). */
function closeFrame(code: number | undefined, reason: string, masked: boolean): Buffer {
  const payload = closePayload(code, reason)
  return Buffer.concat([frameHeader(OPCODE.close, payload.length, masked), payload])
}

/** Why an upgrade request is refused (RFC 6455 §4.2.1), or undefined for a valid one. */
function upgradeRefusal(req: IncomingMessage): string | undefined {
  if (req.method !== 'GET') return `a WebSocket upgrade must be a GET. Got \`${String(req.method).slice(0, 20)}\`.`
  if (String(req.headers.upgrade).toLowerCase() !== 'websocket') return '`Upgrade` must be `websocket`.'
  if (req.headers['sec-websocket-version'] !== '13') return `\`Sec-WebSocket-Version\` must be 13. Got \`${String(req.headers['sec-websocket-version']).slice(0, 20)}\`.`
  const key = req.headers['sec-websocket-key']
  if (typeof key !== 'string' || !/^[+/0-9A-Za-z]{21}[AQgw]==$/.test(key)) return '`Sec-WebSocket-Key` must be 16 bytes in base64.'
  return undefined
}
