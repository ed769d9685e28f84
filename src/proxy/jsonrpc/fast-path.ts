import * as net from 'node:net'
import { errorReply, type InstalledRule, MAX_JSON_DEPTH, ruleMatches, scanJson, share } from './rules.js'
import { type ScannedElement, type ScannedMessage, scanMessage } from './scan.js'

/**
 * The HTTP/1.1 fast path of the JSON-RPC proxy: a raw socket reader that parses only framing
 * (request line, headers, Content-Length or chunked) and the few members rules match on
 * (`scan.ts`), and forwards calls no rule touches over a small pool of persistent upstream
 * connections, writing the upstream's answer back as it came (only its `Connection` /
 * `Keep-Alive` lines are dropped: they are about the proxy's own upstream connection).
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
/** Answers up to this size are read to tell ok from error for events and error counts. */
const MAX_CLASSIFIED_BYTES = 1024 * 1024
/** An idle client connection is closed after this long (Node's server is given 65 s too). */
const CLIENT_IDLE_MS = 65_000

const CRLF2 = Buffer.from('\r\n\r\n')
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
  retried: boolean
  readonly done: (status: number, answer: Buffer, body: Buffer | undefined) => void
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

  // ─── Upstream pool: one call in flight per connection ─────────────────────────────────────
  const idle: UpstreamConn[] = []
  const all = new Set<UpstreamConn>()
  const waiting: Job[] = []

  type UpstreamConn = { socket: net.Socket; job: Job | undefined; used: boolean; run: (job: Job) => void }

  const release = (conn: UpstreamConn) => {
    const next = waiting.shift()
    if (next) conn.run(next)
    else idle.push(conn)
  }

  const dispatch = (job: Job) => {
    if (closed) return
    const conn = idle.pop()
    if (conn) conn.run(job)
    else if (all.size < options.maxSockets) connect().run(job)
    else waiting.push(job)
  }

  function connect(): UpstreamConn {
    const socket = net.connect({ host: upstream.hostname.replace(/^\[|\]$/g, ''), port, noDelay: true })
    const conn: UpstreamConn = { socket, job: undefined, used: false, run }
    all.add(conn)
    let chunks: Buffer[] = []
    let size = 0
    /** Bytes needed before a parse can finish (0: try each chunk). */
    let need = 0
    let got = false
    socket.setTimeout(options.upstreamTimeoutMs)
    socket.on('timeout', () => {
      if (conn.job) gone(504, 'timed out')
      else socket.destroy()
    })
    socket.on('data', (chunk: Buffer) => {
      got = true
      if (!conn.job) return void socket.destroy() // unasked bytes: the connection is not ours to reuse
      chunks.push(chunk)
      size += chunk.length
      if (size < need) return
      if (size > MAX_ANSWER_BYTES) return gone(502, `answer over ${MAX_ANSWER_BYTES} bytes`)
      const buf = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size)
      chunks = [buf]
      const parsed = parseResponse(buf, false)
      if (parsed === undefined) return gone(502, 'malformed answer')
      if (typeof parsed === 'number') {
        need = parsed
        return
      }
      finish(parsed, buf)
    })
    socket.on('end', () => {
      if (!conn.job) return
      // An answer framed by the connection's end is complete now.
      const buf = Buffer.concat(chunks, size)
      const parsed = size > 0 ? parseResponse(buf, true) : undefined
      if (parsed !== undefined && typeof parsed !== 'number') finish(parsed, buf)
      else gone(502, 'ECONNRESET')
    })
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (conn.job) gone(502, error.code ?? error.message)
    })
    socket.on('close', () => {
      all.delete(conn)
      const at = idle.indexOf(conn)
      if (at >= 0) idle.splice(at, 1)
      if (conn.job) gone(502, 'ECONNRESET')
    })

    function run(job: Job) {
      conn.job = job
      chunks = []
      size = 0
      need = 0
      got = false
      socket.write(job.request)
    }
    function finish(parsed: ParsedResponse, buf: Buffer) {
      const job = conn.job as Job
      conn.job = undefined
      conn.used = true
      const extra = buf.length > parsed.end
      chunks = []
      size = 0
      job.done(parsed.status, parsed.end === buf.length ? buf : buf.subarray(0, parsed.end), parsed.body)
      if (parsed.close || extra || closed) socket.destroy()
      else release(conn)
    }
    function gone(status: number, reason: string) {
      const job = conn.job as Job
      conn.job = undefined
      socket.destroy()
      // A reused connection the server had just closed: tried once more on a fresh one (Node's advice).
      if (conn.used && !got && !job.retried && status === 502) {
        job.retried = true
        dispatch(job)
      } else job.fail(status, reason)
    }
    return conn
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
      const request = Buffer.allocUnsafe(Buffer.byteLength(head, 'latin1') + r.body.length)
      const at = request.write(head, 0, 'latin1')
      r.body.copy(request, at)
      dispatch({
        request,
        retried: false,
        done(status, answer, body) {
          metrics.forwarded(typeof methods === 'string' ? 1 : methods.length)
          pending.status = status
          pending.body = body
          pending.answer = rewriteHead(answer, pending.close)
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
      while (queue.length > 0 && (queue[0] as Pending).answer !== undefined) {
        const p = queue.shift() as Pending
        const answer = p.answer as Buffer
        if (!dead) socket.write(answer)
        report(p, dead ? 0 : answer.length, dead)
        if (p.close && !dead) socket.end()
      }
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
      for (const c of all) c.socket.destroy()
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

/**
 * Chunked framing from `at`: where it ends (after the trailers) and the data.
 * Undefined while incomplete; `bad` for framing Node would refuse or data past `limit`.
 */
function readChunks(buf: Buffer, at: number, limit: number): { end: number; body: Buffer } | undefined | 'bad' {
  const parts: Buffer[] = []
  let total = 0
  let i = at
  for (;;) {
    const eol = buf.indexOf('\r\n', i, 'latin1')
    if (eol < 0) return buf.length - i > 1024 ? 'bad' : undefined
    const line = buf.toString('latin1', i, eol)
    const semi = line.indexOf(';')
    const hex = (semi >= 0 ? line.slice(0, semi) : line).trim()
    if (!/^[0-9a-fA-F]{1,8}$/.test(hex)) return 'bad'
    const n = Number.parseInt(hex, 16)
    total += n
    if (total > limit) return 'bad'
    const dataStart = eol + 2
    if (n === 0) {
      // Trailers, then an empty line.
      let j = dataStart
      for (;;) {
        const e = buf.indexOf('\r\n', j, 'latin1')
        if (e < 0) return buf.length - j > MAX_HEAD_BYTES ? 'bad' : undefined
        if (e === j) return { end: e + 2, body: Buffer.concat(parts, total) }
        j = e + 2
      }
    }
    if (buf.length < dataStart + n + 2) return undefined
    if (buf[dataStart + n] !== 0x0d || buf[dataStart + n + 1] !== 0x0a) return 'bad'
    parts.push(buf.subarray(dataStart, dataStart + n))
    i = dataStart + n + 2
  }
}

type ParsedResponse = { status: number; end: number; close: boolean; body: Buffer | undefined }

/**
 * One upstream answer (1xx answers before it included); a number is the bytes it needs at least
 * (0: unknown), undefined when it is not HTTP. `ended`: the connection closed, which ends a body
 * without length.
 */
function parseResponse(buf: Buffer, ended: boolean): ParsedResponse | number | undefined {
  let start = 0
  for (;;) {
    const headEnd = buf.indexOf(CRLF2, start)
    if (headEnd < 0) return buf.length - start > 64 * 1024 ? undefined : 0
    const head = buf.toString('latin1', start, headEnd)
    if (!head.startsWith('HTTP/1.')) return undefined
    const status = Number(head.slice(9, 12))
    if (!(status >= 100 && status <= 599) || status === 101) return undefined
    const bodyStart = headEnd + 4
    if (status < 200) {
      start = bodyStart
      continue
    }
    let length = -1
    let chunked = false
    let close = head[7] === '0'
    for (const line of head.split('\r\n').slice(1)) {
      const colon = line.indexOf(':')
      if (colon <= 0) continue
      const name = line.slice(0, colon).toLowerCase()
      if (name === 'content-length') length = Number(line.slice(colon + 1).trim())
      else if (name === 'transfer-encoding') chunked = line.slice(colon + 1).toLowerCase().includes('chunked')
      else if (name === 'connection') {
        const v = line.slice(colon + 1).toLowerCase()
        if (v.includes('close')) close = true
        else if (v.includes('keep-alive')) close = false
      }
    }
    if (status === 204 || status === 304) return { status, end: bodyStart, close, body: Buffer.alloc(0) }
    if (chunked) {
      const c = readChunks(buf, bodyStart, MAX_ANSWER_BYTES)
      if (c === 'bad') return undefined
      if (c === undefined) return 0
      return { status, end: c.end, close, body: c.body.length <= MAX_CLASSIFIED_BYTES ? c.body : undefined }
    }
    if (length >= 0) {
      if (!Number.isSafeInteger(length)) return undefined
      if (buf.length < bodyStart + length) return bodyStart + length
      const body = length <= MAX_CLASSIFIED_BYTES ? buf.subarray(bodyStart, bodyStart + length) : undefined
      return { status, end: bodyStart + length, close, body }
    }
    // No length: the body runs to the connection's end.
    if (!ended) return 0
    return { status, end: buf.length, close: true, body: buf.length - bodyStart <= MAX_CLASSIFIED_BYTES ? buf.subarray(bodyStart) : undefined }
  }
}

/**
 * The answer with the upstream's `Connection` / `Keep-Alive` lines dropped (they are about the
 * proxy's upstream connection), and `connection: close` when the client asked to close. A body
 * that ran to the connection's end gets its length written.
 */
function rewriteHead(answer: Buffer, close: boolean): Buffer {
  // Interim (1xx) heads before the answer are dropped: the client asked for nothing interim.
  const from = finalHeadStart(answer)
  if (from > 0) return rewriteHead(answer.subarray(from), close)
  const headEnd = answer.indexOf(CRLF2)
  const head = answer.toString('latin1', 0, headEnd)
  const lines = head.split('\r\n')
  let out = lines[0] as string
  let changed = close
  let framed = false
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] as string
    const name = line.slice(0, line.indexOf(':')).trim().toLowerCase()
    if (name === 'connection' || name === 'keep-alive') {
      changed = true
      continue
    }
    if (name === 'content-length' || name === 'transfer-encoding') framed = true
    out += `\r\n${line}`
  }
  const status = Number(head.slice(9, 12))
  if (!framed && status !== 204 && status !== 304) {
    out += `\r\ncontent-length: ${answer.length - headEnd - 4}`
    changed = true
  }
  if (!changed) return answer
  if (close) out += '\r\nconnection: close'
  out += '\r\n\r\n'
  const result = Buffer.allocUnsafe(out.length + answer.length - headEnd - 4)
  const at = result.write(out, 0, 'latin1')
  answer.copy(result, at, headEnd + 4)
  return result
}

/** Where the final (non-1xx) head starts: 0 unless interim answers came first. */
function finalHeadStart(answer: Buffer): number {
  let start = 0
  while (answer[start + 9] === 0x31) {
    const e = answer.indexOf(CRLF2, start)
    if (e < 0) return start
    start = e + 4
  }
  return start
}

function tooDeep(body: Buffer): boolean {
  const shape = scanJson(body)
  return shape !== undefined && shape.depth > (shape.batch ? MAX_JSON_DEPTH + 1 : MAX_JSON_DEPTH)
}

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
  if (body === undefined || body.indexOf('"error"') < 0) return 'ok'
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
