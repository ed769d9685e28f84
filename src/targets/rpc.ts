import { InfraError } from '../errors.js'
import { redactUrl } from '../util/redact.js'

/**
 * A lean JSON-RPC client over HTTP (Node's fetch keeps connections alive). It refuses cheat
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
  const post = async (body: unknown) => {
    let response: Response
    try {
      response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      })
    } catch (cause) {
      throw new InfraError('The JSON-RPC endpoint did not answer.', {
        context: { URL: redactUrl(url), Reason: (cause as Error).message },
        cause,
      })
    }
    const text = await response.text()
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
 * An `Rpc` whose `eth_call`s made in the same tick go out as one JSON-RPC batch (answers and
 * errors as if each were sent alone); every other method passes straight through. For readers
 * that fire many independent views at once (a window end's checks).
 */
export function coalescingCalls(rpc: Rpc): Rpc {
  let queue: { params: readonly unknown[]; resolve(v: unknown): void; reject(e: unknown): void }[] = []
  const flush = () => {
    const calls = queue
    queue = []
    if (calls.length === 1) {
      const c = calls[0] as (typeof calls)[number]
      rpc.request('eth_call', c.params).then(c.resolve, c.reject)
      return
    }
    rpc.batch(calls.map((c) => ({ method: 'eth_call', params: c.params }))).then(
      (answers) => calls.forEach((c, i) => (answers[i] instanceof RpcError ? c.reject(answers[i]) : c.resolve(answers[i]))),
      (error) => calls.forEach((c) => c.reject(error)),
    )
  }
  return {
    url: rpc.url,
    owned: rpc.owned,
    batch: (calls) => rpc.batch(calls),
    request<T>(method: string, params: readonly unknown[] = []): Promise<T> {
      if (method !== 'eth_call') return rpc.request<T>(method, params)
      return new Promise<T>((resolve, reject) => {
        if (queue.length === 0) setImmediate(flush)
        queue.push({ params, resolve: resolve as (v: unknown) => void, reject })
      })
    },
  }
}
