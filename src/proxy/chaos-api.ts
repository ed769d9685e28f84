import * as net from 'node:net'
import { ForkchaosError, InputError } from '../errors.js'
import { type ActiveFault, applyFault, type FaultContext } from '../Fault.js'
import { faults } from '../faults/registry.js'
import type { Metrics } from '../metrics/metrics.js'
import { createRpc } from '../targets/rpc.js'
import type { Prng } from '../util/prng.js'
import type { RpcProxy } from './jsonrpc/proxy.js'
import { HttpError, type Router } from './router.js'
import type { ProxyRegistry } from './tcp/registry.js'
import { toxicDefinitions } from './toxics/registry.js'

/**
 * The chaos API for live drills, on the control server:
 *
 *   POST /chaos/inject {type, target, params, durationMs?} → 201 {id, tStart}
 *   POST /chaos/revert/{id}                                → 200 {tStop, mttrMs, verdict}
 *   GET  /chaos/experiments                                → {schedule, active, history}
 *   GET  /metrics                                          → Prometheus text
 *
 * `type` is an `rpc.*` fault (target: a JSON-RPC proxy's name) or `tcp.<toxic>` (target: a TCP
 * proxy's name; params: `stream`, `toxicity` and the toxic's attributes). With `durationMs` the
 * fault reverts itself (the schedule). After a revert, a probe goes through the proxy until it
 * answers: `mttrMs` is the time from revert to that first good answer, and the experiment's
 * verdict is `held` if that happened within `recoveryWindowMs`, else `failed`.
 */
export type ChaosApiOptions = {
  tcp: ProxyRegistry
  rpc: Map<string, RpcProxy>
  metrics: Metrics
  prng: Prng
  /** How long a post-revert probe may take before the experiment counts as failed. Default 10 s. */
  recoveryWindowMs?: number
  /** How many ended experiments `GET /chaos/experiments` keeps. Default 100. */
  historyLimit?: number
}

type Experiment = {
  id: string
  type: string
  target: string
  params: Record<string, unknown>
  tStart: number
  tStop: number | null
  revertAt: number | null
  mttrMs: number | null
  verdict: 'active' | 'held' | 'failed'
  revert(): Promise<void>
  probe(): Promise<boolean>
  timer?: NodeJS.Timeout
}

export type ChaosApi = { register(router: Router): void; revertAll(): Promise<void> }

export function createChaosApi(options: ChaosApiOptions): ChaosApi {
  const active = new Map<string, Experiment>()
  const history: Experiment[] = []
  const windowMs = options.recoveryWindowMs ?? 10_000
  const historyLimit = options.historyLimit ?? 100
  let counter = 0

  const ctx: FaultContext = {
    // rpc.* faults act on proxies only; nothing here talks to a chain.
    rpc: createRpc('http://127.0.0.1:1', { owned: false }),
    prng: options.prng,
    resolve: () => {
      throw new InputError('The chaos API targets proxies by name, not contracts.')
    },
    now: () => Date.now(),
    rpcProxy: (name) => {
      const proxy = options.rpc.get(name)
      if (!proxy) throw new HttpError(404, `no JSON-RPC proxy named "${name}" (known: ${[...options.rpc.keys()].join(', ') || 'none'})`)
      return proxy
    },
  }

  const view = (e: Experiment) => ({
    id: e.id,
    type: e.type,
    target: e.target,
    params: e.params,
    tStart: e.tStart,
    tStop: e.tStop,
    revertAt: e.revertAt,
    mttrMs: e.mttrMs,
    verdict: e.verdict,
  })

  async function inject(body: unknown) {
    if (!body || typeof body !== 'object' || Array.isArray(body)) throw new HttpError(400, 'body must be a JSON object {type, target, params}')
    const { type, target, params = {}, durationMs } = body as Record<string, unknown>
    if (typeof type !== 'string') throw new HttpError(400, `"type" must be a string such as "rpc.latency" or "tcp.latency". Got ${JSON.stringify(type)}.`)
    if (typeof target !== 'string' || target === '') throw new HttpError(400, `"target" must be a proxy name. Got ${JSON.stringify(target)}.`)
    if (!params || typeof params !== 'object' || Array.isArray(params)) throw new HttpError(400, `"params" must be an object. Got ${JSON.stringify(params)}.`)
    if (durationMs !== undefined && (typeof durationMs !== 'number' || !(durationMs > 0) || durationMs > 86_400_000))
      throw new HttpError(400, `"durationMs" must be a number of milliseconds between 1 and 86400000. Got ${JSON.stringify(durationMs)}.`)
    const id = `x${++counter}`
    let revert: () => Promise<void>
    let probe: () => Promise<boolean>
    if (type.startsWith('rpc.') && type in faults) {
      const proxy = ctx.rpcProxy?.(target) as unknown as RpcProxy
      let fault: ActiveFault
      try {
        fault = await applyFault(faults[type as keyof typeof faults], ctx, { target, params: params as Record<string, unknown> }, `POST /chaos/inject: params`)
      } catch (error) {
        throw error instanceof ForkchaosError ? new HttpError(400, error.shortMessage) : error
      }
      revert = () => fault.revert()
      probe = () => rpcProbe(proxy.url)
    } else if (type.startsWith('tcp.') && type.slice(4) in toxicDefinitions) {
      const proxy = options.tcp.get(target)
      if (!proxy) throw new HttpError(404, `no TCP proxy named "${target}"`)
      const { stream = 'downstream', toxicity = 1, ...attributes } = params as Record<string, unknown>
      const name = `forkchaos_${id}`
      try {
        proxy.addToxic({ name, type: type.slice(4), stream, toxicity, attributes })
      } catch (error) {
        throw new HttpError(400, (error as Error).message)
      }
      revert = async () => proxy.removeToxic(name)
      probe = () => tcpProbe(proxy.listen)
    } else {
      const known = [...Object.keys(faults).filter((t) => t.startsWith('rpc.')), ...Object.keys(toxicDefinitions).map((t) => `tcp.${t}`)]
      throw new HttpError(400, `unknown fault type "${type}"; expected one of ${known.join(', ')}`)
    }
    const e: Experiment = { id, type, target, params: params as Record<string, unknown>, tStart: Date.now(), tStop: null, revertAt: null, mttrMs: null, verdict: 'active', revert, probe }
    if (typeof durationMs === 'number') {
      e.revertAt = e.tStart + durationMs
      e.timer = setTimeout(() => void end(e).catch(() => {}), durationMs)
      e.timer.unref()
    }
    active.set(id, e)
    options.metrics.faultStarted(id, type, target)
    return e
  }

  async function end(e: Experiment) {
    if (!active.has(e.id)) return e
    active.delete(e.id)
    clearTimeout(e.timer)
    await e.revert()
    e.tStop = Date.now()
    options.metrics.faultStopped(e.id, e.type, e.target)
    // Recovery: the first good answer through the proxy after the revert.
    const deadline = e.tStop + windowMs
    let ok = false
    while (!ok && Date.now() < deadline) {
      ok = await e.probe()
      if (!ok) await new Promise((r) => setTimeout(r, 20))
    }
    e.mttrMs = ok ? Date.now() - e.tStop : null
    e.verdict = ok ? 'held' : 'failed'
    history.push(e)
    if (history.length > historyLimit) history.shift()
    return e
  }

  return {
    register(router) {
      router.route('POST', '/chaos/inject', async ({ body }) => {
        const e = await inject(body)
        return { status: 201, body: { id: e.id, tStart: e.tStart } }
      })
      router.route('POST', '/chaos/revert/:id', async ({ params }) => {
        const e = active.get(params.id as string)
        if (!e) throw new HttpError(404, `no active experiment "${params.id}"`)
        await end(e)
        return { status: 200, body: { tStop: e.tStop, mttrMs: e.mttrMs, verdict: e.verdict } }
      })
      router.route('GET', '/chaos/experiments', () => ({
        status: 200,
        body: {
          schedule: [...active.values()].filter((e) => e.revertAt !== null).map((e) => ({ id: e.id, type: e.type, target: e.target, revertAt: e.revertAt })),
          active: [...active.values()].map(view),
          history: history.map(view),
        },
      }))
      router.route('GET', '/metrics', async () => ({ status: 200, text: await options.metrics.text(), contentType: options.metrics.contentType }))
    },
    async revertAll() {
      for (const e of [...active.values()].reverse()) await end(e).catch(() => {})
    },
  }
}

async function rpcProbe(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-forkchaos-client': 'chaos-probe' },
      body: '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}',
      signal: AbortSignal.timeout(1_000),
    })
    const body = (await res.json()) as { result?: unknown }
    return res.ok && body.result !== undefined
  } catch {
    return false
  }
}

function tcpProbe(listen: string): Promise<boolean> {
  const i = listen.lastIndexOf(':')
  return new Promise((resolve) => {
    const socket = net.connect({ host: listen.slice(0, i), port: Number(listen.slice(i + 1)) })
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(1_000, () => done(false))
    socket.once('connect', () => done(true))
    socket.once('error', () => done(false))
  })
}
