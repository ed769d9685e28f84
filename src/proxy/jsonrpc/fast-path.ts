import * as net from 'node:net'
import { errorReply, type InstalledRule, MAX_JSON_DEPTH, ruleMatches, scanJson, share } from './rules.js'
import { type ScannedElement, type ScannedMessage, scanMessage } from './scan.js'
import { type ParsedResponse, parseResponse, readChunks } from '../../util/http1.js'

/**
 * The HTTP/1.1 fast path of the JSON-RPC proxy: a raw socket reader that parses only framing
 * (request line, headers, Content-Length or chunked) and the few members rules match on
 * (`scan.ts`), and forwards calls no rule touches over a pool of persistent upstream connections,
 * writing the upstream's answer back as it came (only its `Connection` / `Keep-Alive` lines are
 * dropped: they are about the proxy's own upstream connection).
 *
 * Calls are pipelined on upstream connections: those read in one event-loop turn go out in one
 * write per connection (at most 16 in flight on one). A call that may take long is never put
 * in front of others: a batch or a body over 4 KiB goes on a connection with nothing in flight and
 * nothing is sent behind it, and nothing joins a connection whose oldest call has waited 20 ms.
 * When an upstream connection ends mid-pipeline, the calls the server did not answer are sent
 * again on another (those behind an answer that said `Connection: close` were never read; the
 * others once if they only read (`readOnlyMethod`): a transaction the upstream may have run is
 * never sent twice); a call whose answer was cut, that may write, or that fails twice, gets a 502
 * naming why. No call is left waiting.
 *
 * Whatever it does not handle simply — anything but `POST` over HTTP/1.1, `Expect`, `Upgrade`,
 * a call a rule matches, a body over the limit, a call nested past the depth limit, framing it
 * does not read exactly as Node would — makes it hand the connection over to the full path (Node's
 * HTTP server, with rules, faults, limits and WebSocket) at that request's first byte, once every
 * answer before it has been written: answers stay in order, and the full path sees exactly the
 * bytes the client sent from there on. The handover is for the rest of the connection.
 */
export type FastPathOptions = {
  /** `http://` only (the upstream's host, port and base path). */
  upstream: URL
  installed: () => readonly InstalledRule[]
  /** Gives a socket (with unread bytes put back) to the full path. */
  handOff: (socket: net.Socket) => void
  maxBodyBytes: number
  upstreamTimeoutMs: number
  /** Upstream connections at most; calls past it wait for one. */
  maxSockets: number
  metrics: FastMetrics
}

/** What the fast path reports; counters only unless someone listens for events. */
export type FastMetrics = {
  arrive: (method: string) => void
  forwarded: (calls: number) => void
  /** One call answered; `t0` from `performance.now()`. */
  answered: (method: string, outcome: 'ok' | 'error' | 'dropped', client: () => string, t0: number, bytesIn: number, bytesOut: number) => void
}

/** Header bytes of one request at most before the full path takes over (and answers 431 as Node does). */
const MAX_HEAD_BYTES = 16 * 1024
/** Requests in flight per client connection at most; reading pauses past it. */
const MAX_PIPELINED = 64
/** Answer bytes queued to a slow client at most before reading from it pauses. */
const MAX_CLIENT_BUFFER_BYTES = 1024 * 1024
/** The most an upstream answer is buffered (answers are written whole, in order). */
const MAX_ANSWER_BYTES = 256 * 1024 * 1024
/**
 * Pipelining onto upstream connections: below this many connections a call gets a fresh one rather
 * than waiting behind another; past it calls are sent behind others (one write per connection per
 * event-loop turn carries them all), at most `MAX_INFLIGHT_PER_UPSTREAM` on one connection.
 */
const PIPELINE_AFTER = 8
const MAX_INFLIGHT_PER_UPSTREAM = 16
/** Nothing is sent behind a call that has waited this long for its answer (it may be a slow one). */
const STALL_MS = 20
/** A body over this, or a batch, is a solo call: nothing is pipelined behind it (it may take long). */
const SOLO_BODY_BYTES = 4 * 1024
/** Answers up to this size are read to tell ok from error for events and error counts. */
const MAX_CLASSIFIED_BYTES = 1024 * 1024
/** An idle client connection is closed after this long (Node's server is given 65 s too). */
const CLIENT_IDLE_MS = 65_000

const CRLF2 = Buffer.from('\r\n\r\n')
const answerLimits = { maxBodyBytes: MAX_ANSWER_BYTES, keepBodyBytes: MAX_CLASSIFIED_BYTES }
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
// A header value with control characters is Node's to refuse (400).
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/

type Pending = {
  readonly t0: number
  readonly methods: string | string[]
  readonly scanned: ScannedMessage | undefined
  readonly bytesIn: number
  readonly client: string | undefined
  readonly close: boolean
  answer: Buffer | undefined
  /** For classifying: status and the decoded body (when small enough). */
  status: number
  body: Buffer | undefined
}

type Job = {
  readonly request: Buffer
  /** When its request was read (`performance.now()`): how long a connection's oldest call has waited. */
  readonly t0: number
  /** A batch or a large body: sent only on a connection with nothing in flight, and nothing is sent behind it. */
  readonly solo: boolean
  retried: boolean
  /**
   * Every call in it only reads (`readOnlyMethod`): sent again after a connection dropped with
   * it unanswered. A call that may write (a transaction, an `anvil_` or `evm_` call, a filter
   * poll) is never sent twice, since the upstream may have run it: it gets a 502.
   */
  readonly readOnly: boolean
  /** Its answer: `buf` from `start` to `parsed.end`. */
  readonly done: (parsed: ParsedResponse, buf: Buffer, start: number) => void
  readonly fail: (status: number, reason: string) => void
}

export function createFastPath(options: FastPathOptions) {
  const { upstream, metrics, maxBodyBytes } = options
  const upstreamHost = upstream.host
  const basePath = upstream.pathname
  const baseSearch = upstream.search
  const port = Number(upstream.port || 80)
  const clients = new Set<net.Socket>()
  let closed = false

  // ─── Upstream pool: pipelined connections, one write per connection per turn ──────────────
  const conns: UpstreamConn[] = []
  const waiting: Job[] = []
  /** Connections with requests queued this turn; written together once the turn's reads are done. */
  const toWrite: UpstreamConn[] = []
  let writeScheduled = false
  /** The connection this turn's calls join (one write carries them all), until it is full. */
  let open: UpstreamConn | undefined

  type UpstreamConn = {
    socket: net.Socket
    /** Requests sent (or queued to send) and not yet answered, oldest first. */
    inflight: Job[]
    /** Requests queued this turn, not yet written. */
    out: Buffer[]
    /** A solo call (a batch or a large body) is in flight: nothing is sent behind it. */
    solo: number
    /** The server said it closes after an answer: nothing more is sent on it. */
    closing: boolean
    /** At least one answer came on it (a reset then most likely means it was closed while idle). */
    used: boolean
    dead: boolean
  }

  const flushWrites = () => {
    writeScheduled = false
    open = undefined
    for (const conn of toWrite.splice(0)) {
      const out = conn.out
      conn.out = []
      if (conn.dead || out.length === 0) continue
      conn.socket.write(out.length === 1 ? (out[0] as Buffer) : Buffer.concat(out))
    }
  }

  /** Whether `job` may be sent on `conn` now (nothing behind a solo call, nor behind a stalled one). */
  const fits = (conn: UpstreamConn, job: Job) => {
    if (conn.dead || conn.closing) return false
    const n = conn.inflight.length
    if (n === 0) return true
    if (job.solo || conn.solo > 0 || n >= MAX_INFLIGHT_PER_UPSTREAM) return false
    return job.t0 - (conn.inflight[0] as Job).t0 < STALL_MS
  }

  /** The connection `job` goes on now, opened if need be; undefined when it has to wait for one. */
  const pick = (job: Job): UpstreamConn | undefined => {
    if (open && fits(open, job)) return open
    let best: UpstreamConn | undefined
    for (const c of conns) {
      if (!fits(c, job)) continue
      if (c.inflight.length === 0) return c
      if (!best || c.inflight.length < best.inflight.length) best = c
    }
    // Below PIPELINE_AFTER connections a new one is opened rather than waiting behind another call.
    if ((!best || conns.length < PIPELINE_AFTER) && conns.length < options.maxSockets) return connect()
    return best
  }

  const dispatch = (job: Job) => {
    if (closed) return
    const conn = pick(job)
    if (conn) enqueue(conn, job)
    else waiting.push(job)
  }

  function enqueue(conn: UpstreamConn, job: Job) {
    conn.inflight.push(job)
    if (job.solo) conn.solo++
    conn.out.push(job.request)
    if (conn.out.length === 1) toWrite.push(conn)
    if (!job.solo) open = conn
    if (!writeScheduled) {
      writeScheduled = true
      setImmediate(flushWrites)
    }
  }

  /** Calls that waited for a connection, in order, as far as connections take them. */
  const pump = () => {
    while (waiting.length > 0 && !closed) {
      const conn = pick(waiting[0] as Job)
      if (!conn) return
      enqueue(conn, waiting.shift() as Job)
    }
  }

  function connect(): UpstreamConn {
    const socket = net.connect({ host: upstream.hostname.replace(/^\[|\]$/g, ''), port, noDelay: true })
    const conn: UpstreamConn = { socket, inflight: [], out: [], solo: 0, closing: false, used: false, dead: false }
    conns.push(conn)
    /** Unparsed answer bytes: `buf`, then `parts` when more came before it could be parsed; `size` in all. */
    let buf: Buffer | undefined
    let parts: Buffer[] | undefined
    let size = 0
    /** Bytes needed before a parse can finish (0: try each chunk). */
    let need = 0
    socket.setTimeout(options.upstreamTimeoutMs)
    socket.on('timeout', () => {
      if (conn.inflight.length > 0) gone(504, 'timed out')
      else socket.destroy()
    })
    socket.on('data', (chunk: Buffer) => {
      if (conn.inflight.length === 0) return void socket.destroy() // unasked bytes: the connection is not ours to reuse
      // Chunks of an answer not yet whole are kept apart and joined once it can be (no copy per chunk).
      if (buf === undefined) buf = chunk
      else if (parts === undefined) parts = [buf, chunk]
      else parts.push(chunk)
      size += chunk.length
      if (size < need) return
      if (size > MAX_ANSWER_BYTES) return gone(502, `answer over ${MAX_ANSWER_BYTES} bytes`)
      if (parts !== undefined) {
        buf = Buffer.concat(parts, size)
        parts = undefined
      }
      let at = 0
      need = 0
      while (conn.inflight.length > 0 && at < buf.length) {
        const parsed = parseResponse(buf, at, false, answerLimits)
        if (parsed === undefined) return gone(502, 'malformed answer')
        if (typeof parsed === 'number') {
          need = parsed === 0 ? 0 : parsed - at
          break
        }
        const job = conn.inflight.shift() as Job
        if (job.solo) conn.solo--
        conn.used = true
        const start = at
        at = parsed.end
        if (parsed.close) conn.closing = true
        job.done(parsed, buf, start)
        if (conn.closing) break
      }
      const rest = at === buf.length ? undefined : buf.subarray(at)
      buf = rest
      size = rest === undefined ? 0 : rest.length
      need = rest === undefined ? 0 : need
      // Bytes past the answers asked for, or the server closing: the connection ends here, and
      // calls sent behind an answer that said close were not read by the server: sent again.
      if (conn.closing || (rest !== undefined && conn.inflight.length === 0)) {
        const left = conn.inflight.splice(0)
        close(conn)
        for (const job of left) dispatch(job)
      }
      pump()
    })
    socket.on('end', () => {
      if (conn.inflight.length === 0) return close(conn)
      // An answer framed by the connection's end is complete now.
      if (parts !== undefined) {
        buf = Buffer.concat(parts, size)
        parts = undefined
      }
      const parsed = buf !== undefined ? parseResponse(buf, 0, true, answerLimits) : undefined
      if (parsed !== undefined && typeof parsed !== 'number') {
        const job = conn.inflight.shift() as Job
        if (job.solo) conn.solo--
        job.done(parsed, buf as Buffer, 0)
        buf = undefined
        size = 0
        const left = conn.inflight.splice(0)
        close(conn)
        for (const j of left) dispatch(j)
        pump()
      } else gone(502, 'ECONNRESET')
    })
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (conn.inflight.length > 0) gone(502, error.code ?? error.message)
    })
    socket.on('close', () => {
      if (conn.inflight.length > 0) gone(502, 'ECONNRESET')
      close(conn)
    })

    /**
     * The connection failed with calls on it. The oldest, once part of its answer came, fails
     * with `reason`; so does every call on a connection that never answered (the upstream is
     * down or refuses), and every call that may write. Otherwise each call is sent once more on
     * another connection (a reused connection the server had just closed, or calls pipelined
     * behind the one that failed), and fails the second time.
     */
    function gone(status: number, reason: string) {
      const jobs = conn.inflight.splice(0)
      const partial = size > 0
      buf = undefined
      parts = undefined
      size = 0
      close(conn)
      for (let i = 0; i < jobs.length; i++) {
        const job = jobs[i] as Job
        const retry = conn.used && job.readOnly && !job.retried && status === 502 && !(i === 0 && partial)
        if (status === 504 && i > 0 && job.readOnly && !job.retried) {
          // Behind a call that timed out: not this call's fault; tried once more.
          job.retried = true
          dispatch(job)
        } else if (retry) {
          job.retried = true
          dispatch(job)
        } else if (!job.readOnly && !job.retried && !(i === 0 && partial) && (status === 504 ? i > 0 : conn.used && status === 502)) {
          job.fail(status, `${reason}; not sent again: the upstream may have run it`)
        } else job.fail(status, i === 0 || status === 504 ? reason : `${reason}, pipelined behind a call that failed`)
      }
      pump()
    }
    return conn
  }

  function close(conn: UpstreamConn) {
    if (conn.dead) return
    conn.dead = true
    conn.socket.destroy()
    const at = conns.indexOf(conn)
    if (at >= 0) conns.splice(at, 1)
    if (open === conn) open = undefined
  }

  // ─── Client connections ───────────────────────────────────────────────────────────────────
  function accept(socket: net.Socket) {
    if (closed) return void socket.destroy()
    clients.add(socket)
    socket.setNoDelay(true)
    const queue: Pending[] = []
    let chunks: Buffer[] = []
    let size = 0
    let need = 0
    /** The connection goes to the full path once the answers before `handOffAt` are written. */
    let handing = false
    let ending = false
    let paused = false
    let dead = false
    const remote = () => socket.remoteAddress ?? 'unknown'

    const onData = (chunk: Buffer) => {
      chunks.push(chunk)
      size += chunk.length
      if (size < need || handing || ending) return
      parse()
    }
    const onEnd = () => {
      ending = true
      if (queue.length === 0 && !handing) socket.end()
    }
    const onClose = () => {
      dead = true
      clients.delete(socket)
    }
    const onError = () => {}
    const onTimeout = () => {
      if (queue.length === 0) socket.destroy()
    }
    const onDrain = () => {
      if (paused && queue.length < MAX_PIPELINED) {
        paused = false
        socket.resume()
      }
    }
    socket.on('data', onData)
    socket.on('end', onEnd)
    socket.on('close', onClose)
    socket.on('error', onError)
    socket.on('drain', onDrain)
    socket.setTimeout(CLIENT_IDLE_MS, onTimeout)

    function parse() {
      let buf = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size)
      let start = 0
      need = 0
      while (start < buf.length) {
        const r = parseRequest(buf, start, maxBodyBytes)
        if (r === 'handoff') {
          handing = true
          break
        }
        if (typeof r === 'number') {
          need = r
          break
        }
        const scanned = r.body.length === 0 ? undefined : scanMessage(r.body)
        if (scanned && r.body.length >= 2 * (MAX_JSON_DEPTH + 1) && tooDeep(r.body)) {
          handing = true
          break
        }
        const client = r.client
        if (scanned && ruled(scanned, client ?? remote())) {
          handing = true
          break
        }
        start = r.end
        send(r, scanned)
        if (r.close) {
          ending = true
          break
        }
      }
      if (handing) {
        buf = buf.subarray(start)
        chunks = [buf]
        size = buf.length
        if (queue.length === 0) handOver()
        return
      }
      if (ending) {
        chunks = []
        size = 0
        return
      }
      const rest = start === 0 ? buf : buf.subarray(start)
      chunks = rest.length > 0 ? [rest] : []
      size = rest.length
      if (queue.length >= MAX_PIPELINED || socket.writableLength > MAX_CLIENT_BUFFER_BYTES) {
        paused = true
        socket.pause()
      }
    }

    /** Whether a rule could act on one of the calls (then the full path plans it). */
    function ruled(scanned: ScannedMessage, client: string): boolean {
      const rules = options.installed()
      if (rules.length === 0) return false
      for (let i = 0; i < scanned.elements.length; i++) {
        const el = scanned.elements[i] as ScannedElement
        if (!el.object || el.method === undefined) continue
        const info = { method: el.method, client, batchIndex: scanned.batch ? i : undefined }
        for (const { rule } of rules) if (rule.action.type !== 'drop-subscription' && ruleMatches(rule.match, info)) return true
      }
      return false
    }

    function send(r: ParsedRequest, scanned: ScannedMessage | undefined) {
      const methods = methodsOf(scanned)
      if (typeof methods === 'string') metrics.arrive(methods)
      else for (const m of methods) metrics.arrive(m)
      const pending: Pending = {
        t0: r.t0,
        methods,
        scanned,
        bytesIn: r.body.length,
        client: r.client,
        close: r.close,
        answer: undefined,
        status: 0,
        body: undefined,
      }
      queue.push(pending)
      const path = r.target === '/' ? basePath + baseSearch : basePath.replace(/\/$/, '') + r.target
      const head = `POST ${path} HTTP/1.1\r\n${r.headers}host: ${upstreamHost}\r\ncontent-length: ${r.body.length}\r\n\r\n`
      // The head is latin1 throughout (read so, and the upstream's host is ASCII): a byte per character.
      const request = Buffer.allocUnsafe(head.length + r.body.length)
      const at = request.write(head, 0, 'latin1')
      r.body.copy(request, at)
      dispatch({
        request,
        t0: r.t0,
        solo: r.body.length > SOLO_BODY_BYTES || scanned?.batch === true,
        retried: false,
        readOnly: typeof methods === 'string' ? readOnlyMethod(methods) : methods.every(readOnlyMethod),
        done(parsed, buf, start) {
          metrics.forwarded(typeof methods === 'string' ? 1 : methods.length)
          pending.status = parsed.status
          pending.body = parsed.body
          pending.answer = answerOf(parsed, buf, start, pending.close)
          flush()
        },
        fail(status, reason) {
          const out = JSON.stringify(errorReply(null, { code: -32603, message: `forkchaos proxy: upstream request failed (${reason})` }))
          pending.status = status
          pending.body = undefined
          pending.answer = Buffer.from(
            `HTTP/1.1 ${status} ${status === 504 ? 'Gateway Timeout' : 'Bad Gateway'}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(out)}\r\n${pending.close ? 'connection: close\r\n' : ''}\r\n${out}`,
          )
          flush()
        },
      })
    }

    /** Writes the answers that are ready, in request order. */
    function flush() {
      // Several answers ready at once go out in one write.
      const corked = !dead && queue.length > 1 && (queue[1] as Pending).answer !== undefined
      if (corked) socket.cork()
      while (queue.length > 0 && (queue[0] as Pending).answer !== undefined) {
        const p = queue.shift() as Pending
        const answer = p.answer as Buffer
        if (!dead) socket.write(answer)
        report(p, dead ? 0 : answer.length, dead)
        if (p.close && !dead) socket.end()
      }
      if (corked) socket.uncork()
      if (queue.length > 0) return
      if (handing) handOver()
      else if (ending && !dead && socket.writable) socket.end()
      else if (paused && socket.writableLength <= MAX_CLIENT_BUFFER_BYTES) {
        paused = false
        socket.resume()
        if (size > 0) parse()
      }
    }

    function report(p: Pending, bytesOut: number, dropped: boolean) {
      const client = () => p.client ?? remote()
      if (typeof p.methods === 'string') {
        const outcome = dropped ? 'dropped' : outcomeOf(p.status, p.body, p.scanned, 0)
        metrics.answered(p.methods, outcome, client, p.t0, p.bytesIn, bytesOut)
        return
      }
      const n = p.methods.length
      for (let i = 0; i < n; i++) {
        const outcome = dropped ? 'dropped' : outcomeOf(p.status, p.body, p.scanned, i)
        metrics.answered(p.methods[i] as string, outcome, client, p.t0, share(p.bytesIn, n, i), share(bytesOut, n, i))
      }
    }

    function handOver() {
      if (dead) return
      handing = false
      socket.removeListener('data', onData)
      socket.removeListener('end', onEnd)
      socket.removeListener('close', onClose)
      socket.removeListener('error', onError)
      socket.removeListener('drain', onDrain)
      socket.setTimeout(0)
      socket.removeListener('timeout', onTimeout)
      clients.delete(socket)
      socket.pause()
      const rest = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size)
      chunks = []
      size = 0
      if (rest.length > 0) socket.unshift(rest)
      options.handOff(socket)
    }
  }

  return {
    accept,
    close() {
      closed = true
      for (const s of clients) s.destroy()
      for (const c of conns.slice()) close(c)
      waiting.length = 0
    },
  }
}

// ─── Framing ─────────────────────────────────────────────────────────────────────────────────

type ParsedRequest = {
  t0: number
  target: string
  /** Header lines kept for upstream, each ending CRLF. */
  headers: string
  body: Buffer
  end: number
  close: boolean
  client: string | undefined
}

/** A request at `start`; a number is how many buffered bytes it needs at least; `handoff` when the full path should read it. */
function parseRequest(buf: Buffer, start: number, maxBodyBytes: number): ParsedRequest | number | 'handoff' {
  const t0 = performance.now()
  const headEnd = buf.indexOf(CRLF2, start)
  if (headEnd < 0) return buf.length - start > MAX_HEAD_BYTES ? 'handoff' : 0
  if (headEnd - start > MAX_HEAD_BYTES) return 'handoff'
  const lines = buf.toString('latin1', start, headEnd).split('\r\n')
  const first = lines[0] as string
  if (!first.startsWith('POST ') || !first.endsWith(' HTTP/1.1')) return 'handoff'
  const target = first.slice(5, -9)
  if (target.length === 0 || target[0] !== '/' || target.includes(' ')) return 'handoff'
  let headers = ''
  let length = -1
  let chunked = false
  let close = false
  let client: string | undefined
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] as string
    const colon = line.indexOf(':')
    if (colon <= 0) return 'handoff'
    const name = line.slice(0, colon)
    if (!TOKEN.test(name)) return 'handoff'
    const value = line.slice(colon + 1).trim()
    if (BAD_VALUE.test(value)) return 'handoff'
    switch (name.toLowerCase()) {
      case 'content-length':
        if (length >= 0 || !/^\d{1,16}$/.test(value)) return 'handoff'
        length = Number(value)
        break
      case 'transfer-encoding':
        if (chunked || value.toLowerCase() !== 'chunked') return 'handoff'
        chunked = true
        break
      case 'connection': {
        const v = value.toLowerCase()
        if (v.includes('upgrade')) return 'handoff'
        if (v.includes('close')) close = true
        break
      }
      case 'expect':
      case 'upgrade':
        return 'handoff'
      case 'x-forkchaos-client':
        if (client === undefined) client = value
        break
      case 'host':
      case 'keep-alive':
      case 'proxy-connection':
      case 'te':
      case 'trailer':
        break
      default:
        headers += `${line}\r\n`
    }
  }
  if (chunked && length >= 0) return 'handoff'
  const bodyStart = headEnd + 4
  if (!chunked) {
    const n = length < 0 ? 0 : length
    if (n > maxBodyBytes) return 'handoff'
    if (buf.length < bodyStart + n) return bodyStart + n - start
    return { t0, target, headers, body: buf.subarray(bodyStart, bodyStart + n), end: bodyStart + n, close, client: client || undefined }
  }
  const chunks = readChunks(buf, bodyStart, maxBodyBytes)
  if (chunks === 'bad') return 'handoff'
  if (chunks === undefined) return 0
  return { t0, target, headers, body: chunks.body, end: chunks.end, close, client: client || undefined }
}

const ERROR_KEY = Buffer.from('"error"')

/**
 * The answer for the client: the upstream's bytes with interim (1xx) heads and the
 * `Connection` / `Keep-Alive` lines dropped (they are about the proxy's upstream connection),
 * `connection: close` added when the client asked to close, and a body that ran to the
 * connection's end given its length. Copied out of `buf` (which holds other answers too) only
 * when something changes; else a view of it.
 */
function answerOf(p: ParsedResponse, buf: Buffer, start: number, close: boolean): Buffer {
  const unframed = !p.framed && p.status !== 204 && p.status !== 304
  if (p.headStart === start && p.drop === undefined && !unframed && !close) return buf.subarray(start, p.end)
  let extra = ''
  if (unframed) extra += `\r\ncontent-length: ${p.end - p.headEnd - 4}`
  if (close) extra += '\r\nconnection: close'
  let size = p.end - p.headStart + extra.length
  const drop = p.drop ?? []
  for (let i = 0; i < drop.length; i += 2) size -= (drop[i + 1] as number) - (drop[i] as number)
  const out = Buffer.allocUnsafe(size)
  let o = 0
  let from = p.headStart
  for (let i = 0; i < drop.length; i += 2) {
    o += buf.copy(out, o, from, drop[i] as number)
    from = drop[i + 1] as number
  }
  o += buf.copy(out, o, from, p.headEnd)
  o += out.write(extra, o, 'latin1')
  buf.copy(out, o, p.headEnd, p.end)
  return out
}

function tooDeep(body: Buffer): boolean {
  const shape = scanJson(body)
  return shape !== undefined && shape.depth > (shape.batch ? MAX_JSON_DEPTH + 1 : MAX_JSON_DEPTH)
}

/**
 * Methods whose call changes nothing upstream, so running one twice answers as running it once
 * (the standard `eth_`, `net_`, `web3_` reads and the debug tracers). Filter polls are not among
 * them: `eth_getFilterChanges` hands out each change once.
 */
export function readOnlyMethod(method: string): boolean {
  if (method === 'eth_getFilterChanges') return false
  return READ_ONLY_METHODS.has(method) || method.startsWith('eth_get') || method.startsWith('debug_trace') || method.startsWith('net_') || method.startsWith('web3_')
}
const READ_ONLY_METHODS = new Set([
  'eth_call', 'eth_chainId', 'eth_blockNumber', 'eth_estimateGas', 'eth_gasPrice', 'eth_maxPriorityFeePerGas',
  'eth_feeHistory', 'eth_blobBaseFee', 'eth_syncing', 'eth_accounts', 'eth_createAccessList', 'eth_simulateV1',
  'eth_protocolVersion', 'eth_coinbase', 'eth_mining', 'eth_hashrate',
])

function methodsOf(scanned: ScannedMessage | undefined): string | string[] {
  if (!scanned || scanned.elements.length === 0) return '(invalid)'
  if (!scanned.batch) {
    const el = scanned.elements[0] as ScannedElement
    return el.object && el.method !== undefined ? el.method : '(invalid)'
  }
  return scanned.elements.map((el) => (el.object && el.method !== undefined ? el.method : '(invalid)'))
}

/** As the full path's `classify`: ok when a 2xx answer carries a result (and no error) for the call. */
function outcomeOf(status: number, body: Buffer | undefined, scanned: ScannedMessage | undefined, i: number): 'ok' | 'error' {
  if (status < 200 || status >= 300) return 'error'
  if (!scanned || scanned.elements.length === 0) return 'error'
  const el = scanned.elements[i] as ScannedElement
  if (body === undefined || body.indexOf(ERROR_KEY) < 0) return 'ok'
  if (scanned.batch && (!el.object || el.method === undefined)) return 'error'
  const reply = scanMessage(body)
  if (!reply) return 'error'
  if (!scanned.batch) {
    const r = reply.elements[0]
    return !reply.batch && r && r.object && r.hasResult && !r.hasError ? 'ok' : 'error'
  }
  if (!reply.batch) return 'error'
  if (!el.hasId) return 'ok'
  let found: ScannedElement | undefined
  for (const r of reply.elements) if (r.object && r.idKey !== undefined && r.idKey !== 'null' && r.idKey === el.idKey) found = r
  return found?.hasResult && !found.hasError ? 'ok' : 'error'
}
