import http from 'node:http'
import https from 'node:https'
import { InfraError } from '../errors.js'
import { redactUrl } from '../util/redact.js'

/**
 * Connections kept open per host:port, shared by every client in the process (the stress loop
 * makes ~10 round trips a cycle; a new connection each would cost more than the call). Beyond
 * this many calls in flight to one host, calls queue for a free connection; their timeout runs
 * while they wait. Idle connections do not keep the process alive.
 */
export const RPC_MAX_SOCKETS = 32
let agents: { http: http.Agent; https: https.Agent } | undefined
const agentFor = (protocol: string) => {
  agents ??= {
    http: new http.Agent({ keepAlive: true, maxSockets: RPC_MAX_SOCKETS }),
    https: new https.Agent({ keepAlive: true, maxSockets: RPC_MAX_SOCKETS }),
  }
  return protocol === 'https:' ? agents.https : agents.http
}

/** Round trips (HTTP requests) every client in this process has sent, for benches to count. */
export const rpcRoundTrips = { count: 0 }

/**
 * One POST of a JSON body; the answer as a status and the body's text. One timer per call, which
 * destroys the request when it fires. A kept-alive connection the server closed while idle
 * (ECONNRESET before any answer on a reused socket) is retried once on a new one.
 */
function postJson(target: URL, body: string, timeoutMs: number): Promise<{ status: number; text: string }> {
  const payload = Buffer.from(body)
  const attempt = (retry: boolean) =>
    new Promise<{ status: number; text: string }>((resolve, reject) => {
      rpcRoundTrips.count++
      let timedOut = false
      const req = (target.protocol === 'https:' ? https : http).request(target, {
        method: 'POST',
        agent: agentFor(target.protocol),
        headers: { 'content-type': 'application/json', 'content-length': payload.length },
      })
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
          resolve({ status: res.statusCode ?? 0, text: chunks.length === 1 ? (chunks[0] as Buffer).toString('utf8') : Buffer.concat(chunks).toString('utf8') })
        })
      })
      req.end(payload)
    })
  return attempt(true)
}

/**
 * A lean JSON-RPC client over HTTP (node:http over kept-alive connections). It refuses cheat
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
