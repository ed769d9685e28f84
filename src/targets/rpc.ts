import https from 'node:https'
import net from 'node:net'
import { InfraError } from '../errors.js'
import { parseResponse } from '../util/http1.js'
import { redactUrl } from '../util/redact.js'

/**
 * Connections kept open per host:port, shared by every client in the process (the stress loop
 * makes ~4 round trips a cycle; a new connection each would cost more than the call). Beyond
 * this many calls in flight to one host, calls queue for a free connection; their timeout runs
 * while they wait. Idle connections do not keep the process alive.
 */
export const RPC_MAX_SOCKETS = 32
let agent: https.Agent | undefined

/** Round trips (HTTP requests) every client in this process has sent, for benches to count. */
export const rpcRoundTrips = { count: 0 }

type Answer = { status: number; text: string }

/**
 * One POST of a JSON body; the answer as a status and the body's text. One timer per call, which
 * ends the request when it fires. A kept-alive connection the server closed while idle (reset
 * or closed before any byte of an answer, on a reused connection) is retried once on a new one.
 * `http:` goes over the pool below; `https:` over node:https with a kept-alive agent.
 */
function postJson(target: URL, body: string, timeoutMs: number): Promise<Answer> {
  const payload = Buffer.from(body)
  if (target.protocol === 'http:') return plainPost(target, payload, timeoutMs)
  const attempt = (retry: boolean) =>
    new Promise<Answer>((resolve, reject) => {
      rpcRoundTrips.count++
      let timedOut = false
      agent ??= new https.Agent({ keepAlive: true, maxSockets: RPC_MAX_SOCKETS })
      const req = https.request(target, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': payload.length } })
      const timer = setTimeout(() => {
        timedOut = true
        req.destroy(new Error(`no answer within ${timeoutMs} ms (the client's timeout)`))
      }, timeoutMs)
      const fail = (error: Error) => {
        clearTimeout(timer)
        if (retry && !timedOut && req.reusedSocket && (error as NodeJS.ErrnoException).code === 'ECONNRESET') attempt(false).then(resolve, reject)
        else reject(error)
      }
      req.once('error', fail)
      req.once('response', (res) => {
        const chunks: Buffer[] = []
        res.on('data', (chunk: Buffer) => chunks.push(chunk))
        res.once('error', fail)
        res.once('end', () => {
          clearTimeout(timer)
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') })
        })
      })
      req.end(payload)
    })
  return attempt(true)
}

/**
 * Plain HTTP/1.1 over kept-alive `net` sockets, one request at a time on each (no pipelining),
 * at most `RPC_MAX_SOCKETS` per host:port. node:http took more of this process's CPU a round trip
 * (an `eth_blockNumber` to Anvil: 0.33 ms against 0.11 ms; its request and agent objects, header
 * handling, the parser's callbacks, their garbage), ~1.9 ms a stress cycle of ~8 (README, "A
 * leaner HTTP client"). The request is one write (head and body); the answer is read by its `content-length`,
 * `transfer-encoding: chunked`, or until the server closes; `connection: close` is honoured.
 */
type Pool = { idle: net.Socket[]; open: number; waiting: (() => void)[] }
const pools = new Map<string, Pool>()

function plainPost(target: URL, payload: Buffer, timeoutMs: number): Promise<Answer> {
  const host = target.hostname.startsWith('[') ? target.hostname.slice(1, -1) : target.hostname
  const port = Number(target.port || 80)
  const key = `${host}:${port}`
  let pool = pools.get(key)
  if (!pool) pools.set(key, (pool = { idle: [], open: 0, waiting: [] }))
  const p = pool
  const auth = target.username || target.password ? `authorization: Basic ${Buffer.from(`${decodeURIComponent(target.username)}:${decodeURIComponent(target.password)}`).toString('base64')}\r\n` : ''
  const head = Buffer.from(`POST ${target.pathname}${target.search} HTTP/1.1\r\nhost: ${target.host}\r\n${auth}content-type: application/json\r\ncontent-length: ${payload.length}\r\n\r\n`, 'latin1')
  const request = Buffer.concat([head, payload])
  return new Promise<Answer>((resolve, reject) => {
    let settled = false
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      const i = p.waiting.indexOf(go)
      if (i >= 0) p.waiting.splice(i, 1)
      finish(new Error(`no answer within ${timeoutMs} ms (the client's timeout)`))
    }, timeoutMs)
    let current: net.Socket | undefined
    const finish = (error: Error | undefined, answer?: Answer, keep?: boolean) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      const socket = current
      current = undefined
      if (socket) release(socket, keep === true)
      if (error) reject(error)
      else resolve(answer as Answer)
    }
    const release = (socket: net.Socket, keep: boolean) => {
      socket.removeAllListeners('data')
      socket.removeAllListeners('end')
      socket.removeAllListeners('error')
      socket.removeAllListeners('close')
      if (keep && !socket.destroyed) {
        socket.unref()
        // An idle connection the server closes, or that fails, leaves the pool.
        const drop = () => {
          socket.destroy()
          const i = p.idle.indexOf(socket)
          if (i < 0) return
          p.idle.splice(i, 1)
          p.open--
          p.waiting.shift()?.()
        }
        socket.once('error', drop)
        socket.once('end', drop)
        socket.once('close', drop)
        const next = p.waiting.shift()
        p.idle.push(socket)
        next?.()
      } else {
        socket.destroy()
        p.open--
        p.waiting.shift()?.()
      }
    }
    const send = (socket: net.Socket, reused: boolean) => {
      if (timedOut) return release(socket, true)
      current = socket
      rpcRoundTrips.count++
      socket.ref()
      const reader = responseReader()
      let got = false
      const lost = (error: Error) => {
        if (settled || current !== socket) return
        current = undefined
        socket.removeAllListeners()
        socket.destroy()
        p.open--
        // A reused connection that failed before any byte came back: the server closed it while idle.
        if (reused && !got && !timedOut) return void open()
        settled = true
        clearTimeout(timer)
        p.waiting.shift()?.()
        reject(error)
      }
      socket.on('data', (chunk: Buffer) => {
        got = true
        let done: ReturnType<typeof reader.push>
        try {
          done = reader.push(chunk)
        } catch (error) {
          return lost(error as Error)
        }
        if (done) finish(undefined, { status: done.status, text: done.body.toString('utf8') }, done.keepAlive)
      })
      socket.once('end', () => {
        const done = got ? reader.end() : undefined
        if (done) finish(undefined, { status: done.status, text: done.body.toString('utf8') }, false)
        else lost(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }))
      })
      socket.once('error', lost)
      socket.once('close', () => lost(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })))
      socket.write(request)
    }
    const open = () => {
      p.open++
      const socket = net.connect({ host, port })
      socket.setNoDelay(true)
      const failed = (error: Error) => {
        p.open--
        settled = true
        clearTimeout(timer)
        p.waiting.shift()?.()
        reject(error)
      }
      socket.once('error', failed)
      socket.once('connect', () => {
        socket.removeListener('error', failed)
        if (settled) return release(socket, true)
        send(socket, false)
      })
    }
    function go() {
      if (settled) return
      const idle = p.idle.pop()
      if (idle) {
        idle.removeAllListeners()
        return send(idle, true)
      }
      if (p.open < RPC_MAX_SOCKETS) return open()
      p.waiting.push(go)
    }
    go()
  })
}

/** The largest answer the client reads (a bigger one fails the call). */
const MAX_ANSWER_BYTES = 256 * 1024 * 1024
const answerLimits = { maxBodyBytes: MAX_ANSWER_BYTES, keepBodyBytes: MAX_ANSWER_BYTES }

/** Reads one HTTP/1.1 answer from the chunks of a connection (framing: src/util/http1.ts): `push` returns it once complete. */
function responseReader() {
  let buf: Buffer = Buffer.alloc(0)
  const read = (ended: boolean) => {
    const parsed = parseResponse(buf, 0, ended, answerLimits)
    if (parsed === undefined) throw new Error(`not an HTTP answer (or one over ${MAX_ANSWER_BYTES} bytes): ${JSON.stringify(buf.toString('latin1', 0, 80))}`)
    if (typeof parsed === 'number') {
      if (buf.length > MAX_ANSWER_BYTES) throw new Error(`an answer over ${MAX_ANSWER_BYTES} bytes`)
      return undefined
    }
    return { status: parsed.status, body: parsed.body ?? Buffer.alloc(0), keepAlive: !parsed.close }
  }
  return {
    push(chunk: Buffer) {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk])
      return read(false)
    },
    /** The server closed the connection: an answer read until close is complete now. */
    end() {
      try {
        return read(true)
      } catch {
        return undefined
      }
    },
  }
}

/**
 * A lean JSON-RPC client over HTTP (kept-alive `net` sockets for `http:`, node:https for `https:`). It refuses cheat
 * methods (`anvil_*`, `evm_*`, `hardhat_*`) unless it was made for a process the toolkit started
 * itself (`owned`), so a user's upstream RPC never receives one.
 */
export type Rpc = {
  readonly url: string
  readonly owned: boolean
  request<T = unknown>(method: string, params?: readonly unknown[]): Promise<T>
  /** Sends many calls in one HTTP request; results come back in order, errors as `RpcError`. */
  batch(calls: readonly { method: string; params?: readonly unknown[] }[]): Promise<(unknown | RpcError)[]>
}

const cheatPrefixes = ['anvil_', 'evm_', 'hardhat_']
export const isCheatMethod = (method: string) => cheatPrefixes.some((p) => method.startsWith(p))

export function createRpc(url: string, options: { owned: boolean; timeoutMs?: number }): Rpc {
  const timeoutMs = options.timeoutMs ?? 30_000
  let id = 0
  const guard = (method: string) => {
    if (isCheatMethod(method) && !options.owned)
      throw new InfraError(`Refusing to send the cheat method \`${method}\` to an endpoint forkchaos did not start.`, {
        context: { URL: redactUrl(url) },
        hint: 'Cheat methods only go to Anvil processes that forkchaos started itself.',
      })
  }
  let target: URL | undefined
  const post = async (body: unknown) => {
    let response: { status: number; text: string }
    try {
      target ??= new URL(url)
      if (target.protocol !== 'http:' && target.protocol !== 'https:') throw new Error(`unsupported protocol ${target.protocol} (expected http: or https:)`)
      response = await postJson(target, JSON.stringify(body), timeoutMs)
    } catch (cause) {
      throw new InfraError('The JSON-RPC endpoint did not answer.', {
        context: { URL: redactUrl(url), Reason: (cause as Error).message },
        cause,
      })
    }
    const text = response.text
    try {
      return JSON.parse(text)
    } catch {
      throw new InfraError('The JSON-RPC endpoint answered with something that is not JSON.', {
        context: { URL: redactUrl(url), Status: response.status, Body: text.slice(0, 200) },
      })
    }
  }
  return {
    url,
    owned: options.owned,
    async request<T>(method: string, params: readonly unknown[] = []) {
      guard(method)
      const reply = await post({ jsonrpc: '2.0', id: ++id, method, params })
      if (reply.error) throw new RpcError(method, reply.error)
      return reply.result as T
    },
    async batch(calls) {
      for (const call of calls) guard(call.method)
      if (calls.length === 0) return []
      const first = id + 1
      const body = calls.map((c) => ({ jsonrpc: '2.0', id: ++id, method: c.method, params: c.params ?? [] }))
      const replies = (await post(body)) as { id: number; result?: unknown; error?: RpcErrorBody }[]
      if (!Array.isArray(replies))
        throw new InfraError('The JSON-RPC endpoint answered a batch with a single object.', {
          context: { URL: redactUrl(url) },
        })
      const out: (unknown | RpcError)[] = new Array(calls.length)
      for (const reply of replies) {
        const i = reply.id - first
        out[i] = reply.error ? new RpcError(calls[i]?.method ?? '?', reply.error) : reply.result
      }
      return out
    },
  }
}

type RpcErrorBody = { code: number; message: string; data?: unknown }

/** A JSON-RPC error answer. `data` carries revert data for `eth_call` / `eth_estimateGas`. */
export class RpcError extends Error {
  override name = 'RpcError'
  readonly code: number
  readonly data: unknown
  constructor(
    readonly method: string,
    body: RpcErrorBody,
  ) {
    super(`${method}: ${body.message} (code ${body.code})`)
    this.code = body.code
    this.data = body.data
  }
}

/**
 * Methods that only read the chain and may therefore share a JSON-RPC batch in any order:
 * a call simulated on the latest state, and the call trace of a mined transaction.
 */
const coalescedMethods: ReadonlySet<string> = new Set(['eth_call', 'debug_traceTransaction'])

/**
 * An `Rpc` whose reads (`eth_call`, `debug_traceTransaction`) made in the same tick go out as one
 * JSON-RPC batch (answers and errors as if each were sent alone); every other method passes
 * straight through. For readers that fire many independent reads at once (a window end's checks).
 * Only reads are held back: a write is never batched with them, so nothing is reordered.
 */
export function coalescingCalls(rpc: Rpc): Rpc {
  let queue: { method: string; params: readonly unknown[]; resolve(v: unknown): void; reject(e: unknown): void }[] = []
  const flush = () => {
    const calls = queue
    queue = []
    if (calls.length === 1) {
      const c = calls[0] as (typeof calls)[number]
      rpc.request(c.method, c.params).then(c.resolve, c.reject)
      return
    }
    rpc.batch(calls.map((c) => ({ method: c.method, params: c.params }))).then(
      (answers) => calls.forEach((c, i) => (answers[i] instanceof RpcError ? c.reject(answers[i]) : c.resolve(answers[i]))),
      (error) => calls.forEach((c) => c.reject(error)),
    )
  }
  return {
    url: rpc.url,
    owned: rpc.owned,
    batch: (calls) => rpc.batch(calls),
    request<T>(method: string, params: readonly unknown[] = []): Promise<T> {
      if (!coalescedMethods.has(method)) return rpc.request<T>(method, params)
      return new Promise<T>((resolve, reject) => {
        if (queue.length === 0) setImmediate(flush)
        queue.push({ method, params, resolve: resolve as (v: unknown) => void, reject })
      })
    },
  }
}

/**
 * Methods after which a read at `latest` answers as before, so a read cache's answers stay valid
 * across them: reads, and Anvil's moves of the next block's time (they change nothing until a
 * block is mined: a call's `block.timestamp` is the last mined block's). Every other method (a
 * transaction, a mine, a base fee, a cheat write, a snapshot or revert) may change what a read answers.
 */
const readOnlyMethods: ReadonlySet<string> = new Set([
  'evm_increaseTime',
  'evm_setNextBlockTimestamp',
  'eth_call',
  'eth_getStorageAt',
  'eth_getCode',
  'eth_getBalance',
  'eth_getTransactionCount',
  'eth_gasPrice',
  'eth_blockNumber',
  'eth_chainId',
  'eth_getBlockByNumber',
  'eth_getBlockByHash',
  'eth_getTransactionReceipt',
  'eth_getTransactionByHash',
  'eth_createAccessList',
  'eth_estimateGas',
  'debug_traceTransaction',
  'debug_traceCall',
])

/** The reads a read cache answers again: a call or a look-up of state, which only a change of state changes. */
const cachedReads: ReadonlySet<string> = new Set(['eth_call', 'eth_getStorageAt', 'eth_getCode', 'eth_getBalance'])

/** A read's answer a cache keeps: its result, or a revert (JSON-RPC code 3, the call's own answer at that state). */
const keepable = (answer: unknown) => !(answer instanceof RpcError) || answer.code === 3

/**
 * An `Rpc` that answers a read (`eth_call`, `eth_getStorageAt`, `eth_getCode`, `eth_getBalance`)
 * from the last answer to the same call, params and all, while nothing but reads has been sent
 * through it since: the same call at the same state gives the same answer (Anvil's `eth_call`
 * at `latest` runs in the last mined block's environment, not the wall clock's; a move of the
 * next block's time changes neither). Anvil's rules: for an Anvil node only. The same read
 * twice in one batch is sent once. Any other method empties the cache before it is sent, and an
 * answer that came back while a write was under way is not kept. Only for a node that nothing
 * else writes to: every write must go through this client (not a proxy's, a keeper process's).
 */
export function cachingReads(rpc: Rpc): Rpc & { readonly hits: () => number } {
  let cache = new Map<string, unknown>()
  // Bumped when a write is sent and when it settles; a read keeps its answer only if no write began or ended meanwhile.
  let generation = 0
  let writing = 0
  let hits = 0
  const key = (method: string, params: readonly unknown[]) => `${method}${JSON.stringify(params)}`
  const write = async <T>(send: () => Promise<T>): Promise<T> => {
    cache = new Map()
    generation++
    writing++
    try {
      return await send()
    } finally {
      writing--
      generation++
    }
  }
  const keep = (at: number, k: string, answer: unknown) => {
    if (at === generation && writing === 0 && keepable(answer)) cache.set(k, answer)
  }
  return {
    url: rpc.url,
    owned: rpc.owned,
    hits: () => hits,
    async request<T>(method: string, params: readonly unknown[] = []): Promise<T> {
      if (!readOnlyMethods.has(method)) return write(() => rpc.request<T>(method, params))
      if (!cachedReads.has(method)) return rpc.request<T>(method, params)
      const k = key(method, params)
      if (cache.has(k)) {
        hits++
        const answer = cache.get(k)
        if (answer instanceof RpcError) throw answer
        return answer as T
      }
      const at = generation
      try {
        const answer = await rpc.request<T>(method, params)
        keep(at, k, answer)
        return answer
      } catch (error) {
        if (error instanceof RpcError) keep(at, k, error)
        throw error
      }
    },
    async batch(calls) {
      if (calls.some((c) => !readOnlyMethods.has(c.method))) return write(() => rpc.batch(calls))
      const out: unknown[] = new Array(calls.length)
      // Calls to send, each with the places in `calls` it answers (a read asked twice is sent once).
      const send: { method: string; params: readonly unknown[]; key: string | undefined; at: number[] }[] = []
      const pending = new Map<string, (typeof send)[number]>()
      calls.forEach((c, i) => {
        const params = c.params ?? []
        const k = cachedReads.has(c.method) ? key(c.method, params) : undefined
        if (k !== undefined && cache.has(k)) {
          hits++
          out[i] = cache.get(k)
          return
        }
        const same = k !== undefined ? pending.get(k) : undefined
        if (same) {
          hits++
          same.at.push(i)
          return
        }
        const entry = { method: c.method, params, key: k, at: [i] }
        send.push(entry)
        if (k !== undefined) pending.set(k, entry)
      })
      if (send.length === 0) return out
      const at = generation
      const answers = await rpc.batch(send.map((s) => ({ method: s.method, params: s.params })))
      send.forEach((s, j) => {
        for (const i of s.at) out[i] = answers[j]
        if (s.key !== undefined) keep(at, s.key, answers[j])
      })
      return out
    },
  }
}
