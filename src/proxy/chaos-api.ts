import type { ServerResponse } from 'node:http'
import * as net from 'node:net'
import { ForkchaosError, InputError } from '../errors.js'
import { type ActiveFault, applyFault, type FaultContext } from '../Fault.js'
import { faults } from '../faults/registry.js'
import type { Metrics } from '../metrics/metrics.js'
import { type LiveExperiment, recoverLive, startLive } from '../experiment/live.js'
import { createRpc } from '../targets/rpc.js'
import type { Prng } from '../util/prng.js'
import type { RpcProxy } from './jsonrpc/proxy.js'
import { HttpError, type Router } from './router.js'
import type { TcpProxy } from './tcp/proxy.js'
import type { ProxyRegistry } from './tcp/registry.js'
import { toHttpError } from './toxiproxy-api.js'
import { toxicDefinitions } from './toxics/registry.js'
import { show } from './toxics/toxic.js'

/**
 * The chaos API for live drills, on the control server:
 *
 *   POST /chaos/inject {type, target, params?, durationMs?} → 201 {id, tStart}
 *   POST /chaos/revert/{id}      → 200 {id, tStop, mttrMs, verdict, reason, endedBy}, or 202
 *                                  with verdict "recovering" if recovery is not seen within
 *                                  `revertAnswerMs`
 *   GET  /chaos/experiments      → {limits, schedule, active, history}
 *   GET  /chaos/experiments/{id} → one experiment
 *   GET  /chaos/events           → server-sent events (`ChaosEvent`): first a snapshot of the
 *                                  experiments, then each change as it happens: an experiment
 *                                  injected, reverted, judged; its fault applied and reverted
 *                                  (once each); any toxic added to or removed from a TCP proxy
 *   GET  /metrics                → Prometheus text
 *
 * `type` is an `rpc.*` fault (target: a JSON-RPC proxy's name) or `tcp.<toxic>` (target: a TCP
 * proxy's name; params: `stream`, `toxicity` and the toxic's attributes, each bounded). With
 * `durationMs` the fault reverts itself (the schedule). After a revert, a probe goes through
 * the proxy until it answers: `mttrMs` is the time from revert to that first good answer, and
 * the verdict is `held` if that happened within `recoveryWindowMs`, else `failed` (at once,
 * with the reason, when the proxy is disabled or gone: nothing could answer).
 *
 * A tcp fault removed behind the API's back (`POST /reset`, a toxic or proxy deleted through
 * the toxiproxy API, a populate that replaced the proxy) ends its experiment the same way,
 * with `endedBy: "external"`; reverting it afterwards answers its recorded result.
 *
 * Limits: `maxActive` active experiments (default 256; one more is a 429), `historyLimit`
 * ended ones kept with their `forkchaos_fault_window` series (default 100, oldest dropped),
 * params of at most `MAX_PARAMS_BYTES` as JSON, `durationMs` at most one day,
 * `MAX_EVENT_SUBSCRIBERS` event streams at once (one more is a 429), and a subscriber that
 * stops reading is dropped once `MAX_SUBSCRIBER_BUFFER_BYTES` wait unsent for it.
 */
export type ChaosApiOptions = {
  tcp: ProxyRegistry
  rpc: Map<string, RpcProxy>
  metrics: Metrics
  prng: Prng
  /** How long a post-revert probe may take before the experiment counts as failed. Default 10 s. */
  recoveryWindowMs?: number
  /** How many ended experiments are kept (listing and metric series). Default 100. */
  historyLimit?: number
  /** Active experiments at most; one more inject is a 429. Default 256. */
  maxActive?: number
  /** How long a revert request waits for recovery before answering 202 "recovering". Default 1 s. */
  revertAnswerMs?: number
}

/** Default limits of the chaos API (see `ChaosApiOptions`). */
export const CHAOS_LIMITS = {
  maxActive: 256,
  historyLimit: 100,
  recoveryWindowMs: 10_000,
  revertAnswerMs: 1_000,
  maxDurationMs: 86_400_000,
} as const
/** Largest `params` accepted, as JSON text. */
export const MAX_PARAMS_BYTES = 4_096
/** `GET /chaos/events` streams open at once at most; one more is a 429. */
export const MAX_EVENT_SUBSCRIBERS = 8
/** A subscriber with more than this many bytes unsent (it stopped reading) is disconnected. */
export const MAX_SUBSCRIBER_BUFFER_BYTES = 1_048_576
/** An idle event stream gets a comment line this often (a closed one is then noticed). */
export const EVENTS_HEARTBEAT_MS = 15_000

/** An experiment as the API lists it. */
export type ExperimentView = {
  id: string
  type: string
  target: string
  params: Record<string, unknown>
  tStart: number
  tStop: number | null
  revertAt: number | null
  mttrMs: number | null
  verdict: LiveExperiment['verdict']
  reason: string | null
  endedBy: EndedBy | null
}

/**
 * What `GET /chaos/events` sends, one JSON object per `data:` line (its `id:` is `seq`, counted
 * from 1 per control server; `t` is the server's clock, ms since the epoch).
 */
export type ChaosEvent = { seq: number; t: number } & (
  | { type: 'snapshot'; active: ExperimentView[]; history: ExperimentView[] }
  /** An experiment changed: injected (`active`), reverted (`recovering`), judged (`held` / `failed`). */
  | { type: 'experiment'; experiment: ExperimentView }
  /** An experiment's fault took effect (`apply`) or was taken out (`revert`): once each per experiment. */
  | { type: 'fault'; id: string; fault: string; target: string; action: 'apply' | 'revert'; endedBy?: EndedBy }
  /** A toxic was added to or removed from a TCP proxy, by the chaos API or the toxiproxy API. */
  | { type: 'toxic'; proxy: string; toxic: string; toxicType: string; stream: string; action: 'added' | 'removed' }
)
type Unstamped<T> = T extends unknown ? Omit<T, 'seq' | 't'> : never

export type EndedBy = 'revert' | 'schedule' | 'external' | 'shutdown'

/**
 * One live experiment (src/experiment/live.ts holds its fault record, recover check, MTTR and
 * verdict, judged as a scenario's are), plus what the API needs to end it.
 */
type Experiment = {
  id: string
  type: string
  target: string
  live: LiveExperiment
  revertAt: number | null
  reason: string | null
  endedBy: EndedBy | null
  /** Takes the fault out; `external` when it is already gone. */
  revert(how: EndedBy): Promise<void>
  /** Whether traffic passes again; or a reason why no probe can succeed. */
  probe(): Promise<boolean | string>
  /** For tcp faults: the proxy and toxic it lives in. */
  toxic?: { proxy: TcpProxy; name: string }
  timer?: NodeJS.Timeout
  /** Resolves when the verdict is final. */
  settled?: Promise<void>
}

export type ChaosApi = { register(router: Router): void; revertAll(): Promise<void> }

const INJECT_KEYS = ['type', 'target', 'params', 'durationMs']

export function createChaosApi(options: ChaosApiOptions): ChaosApi {
  const active = new Map<string, Experiment>()
  const history = new Map<string, Experiment>()
  const windowMs = options.recoveryWindowMs ?? CHAOS_LIMITS.recoveryWindowMs
  const historyLimit = options.historyLimit ?? CHAOS_LIMITS.historyLimit
  const maxActive = options.maxActive ?? CHAOS_LIMITS.maxActive
  const revertAnswerMs = options.revertAnswerMs ?? CHAOS_LIMITS.revertAnswerMs
  let counter = 0
  let starting = 0
  let closed = false
  let seq = 0
  const subscribers = new Set<ServerResponse>()
  let heartbeat: NodeJS.Timeout | undefined
  const drop = (res: ServerResponse) => {
    subscribers.delete(res)
    if (subscribers.size === 0) {
      clearInterval(heartbeat)
      heartbeat = undefined
    }
  }
  const write = (res: ServerResponse, text: string) => {
    res.write(text)
    // A subscriber that stopped reading does not hold the server's memory.
    if (res.writableLength > MAX_SUBSCRIBER_BUFFER_BYTES) {
      drop(res)
      res.destroy()
    }
  }
  const frame = (event: Unstamped<ChaosEvent>) => {
    const stamped = { seq: ++seq, t: Date.now(), ...event }
    return `id: ${stamped.seq}\ndata: ${JSON.stringify(stamped)}\n\n`
  }
  const publish = (event: Unstamped<ChaosEvent>) => {
    if (subscribers.size === 0) {
      seq++
      return
    }
    const text = frame(event)
    for (const res of subscribers) write(res, text)
  }

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
      if (!proxy) throw new HttpError(404, `no JSON-RPC proxy named ${show(name)} (known: ${[...options.rpc.keys()].join(', ') || 'none'})`)
      return proxy
    },
  }

  // Every toxic change, whoever made it, is an event; then a toxic of ours that left its proxy by another route ends its experiment.
  options.tcp.onToxicAdded((proxy, toxic) => publish({ type: 'toxic', proxy, toxic: toxic.name, toxicType: toxic.type, stream: toxic.stream, action: 'added' }))
  options.tcp.onToxicRemoved((proxy, toxic) => publish({ type: 'toxic', proxy, toxic: toxic.name, toxicType: toxic.type, stream: toxic.stream, action: 'removed' }))
  options.tcp.onToxicRemoved((proxyName, toxic) => {
    for (const e of active.values())
      if (e.toxic && e.toxic.proxy.name === proxyName && e.toxic.name === toxic.name) void end(e, 'external')
  })

  const view = (e: Experiment): ExperimentView => ({
    id: e.id,
    type: e.type,
    target: e.target,
    params: e.live.record.params,
    tStart: e.live.record.tStart,
    tStop: e.live.record.tStop,
    revertAt: e.revertAt,
    mttrMs: e.live.mttrMs,
    verdict: e.live.verdict,
    reason: e.reason,
    endedBy: e.endedBy,
  })

  async function inject(body: unknown): Promise<Experiment> {
    if (!body || typeof body !== 'object' || Array.isArray(body)) throw new HttpError(400, `body must be a JSON object {type, target, params, durationMs?}. Got ${show(body)}.`)
    const unknownKey = Object.keys(body).find((k) => !INJECT_KEYS.includes(k))
    if (unknownKey !== undefined) throw new HttpError(400, `unknown field ${show(unknownKey)}; expected ${INJECT_KEYS.join(', ')}`)
    const { type, target, params = {}, durationMs } = body as Record<string, unknown>
    if (typeof type !== 'string') throw new HttpError(400, `"type" must be a string such as "rpc.latency" or "tcp.latency". Got ${show(type)}.`)
    if (typeof target !== 'string' || target === '') throw new HttpError(400, `"target" must be a proxy name. Got ${show(target)}.`)
    if (!params || typeof params !== 'object' || Array.isArray(params)) throw new HttpError(400, `"params" must be an object. Got ${show(params)}.`)
    const paramsBytes = Buffer.byteLength(JSON.stringify(params))
    if (paramsBytes > MAX_PARAMS_BYTES) throw new HttpError(400, `"params" must be at most ${MAX_PARAMS_BYTES} bytes as JSON. Got ${paramsBytes} bytes.`)
    if (durationMs !== undefined && (typeof durationMs !== 'number' || !Number.isInteger(durationMs) || durationMs < 1 || durationMs > CHAOS_LIMITS.maxDurationMs))
      throw new HttpError(400, `"durationMs" must be an integer number of milliseconds between 1 and ${CHAOS_LIMITS.maxDurationMs}. Got ${show(durationMs)}.`)
    const isRpc = type.startsWith('rpc.') && Object.hasOwn(faults, type)
    const isTcp = type.startsWith('tcp.') && Object.hasOwn(toxicDefinitions, type.slice(4))
    if (!isRpc && !isTcp) {
      const known = [...Object.keys(faults).filter((t) => t.startsWith('rpc.')), ...Object.keys(toxicDefinitions).map((t) => `tcp.${t}`)]
      throw new HttpError(400, `unknown fault type ${show(type)}; expected one of ${known.join(', ')}`)
    }
    if (active.size + starting >= maxActive)
      throw new HttpError(429, `there are already ${maxActive} active experiments (the limit); revert one before injecting another`)
    starting++
    try {
      const id = `x${++counter}`
      const e: Experiment = {
        id,
        type,
        target,
        live: startLive({ type, target, params: params as Record<string, unknown> }, Date.now()),
        revertAt: null,
        reason: null,
        endedBy: null,
        revert: async () => {},
        probe: async () => false,
      }
      if (isRpc) {
        const proxy = ctx.rpcProxy?.(target) as unknown as RpcProxy
        let fault: ActiveFault
        try {
          fault = await applyFault(faults[type as keyof typeof faults], ctx, { target, params: params as Record<string, unknown> }, `POST /chaos/inject: params`)
        } catch (error) {
          throw error instanceof ForkchaosError ? new HttpError(400, error.shortMessage) : error
        }
        e.revert = () => fault.revert()
        e.probe = () => rpcProbe(proxy.url)
      } else {
        const proxy = options.tcp.get(target)
        if (!proxy) throw new HttpError(404, `no TCP proxy named ${show(target)}`)
        const { stream = 'downstream', toxicity = 1, ...attributes } = params as Record<string, unknown>
        const name = `forkchaos_${id}`
        let toxic: ReturnType<TcpProxy['addToxic']>
        try {
          toxic = proxy.addToxic({ name, type: type.slice(4), stream, toxicity, attributes })
        } catch (error) {
          const mapped = toHttpError(error)
          throw mapped instanceof HttpError ? mapped : error
        }
        // What is recorded is what took effect: validated values, defaults filled in.
        e.live.record.params = { stream: toxic.stream, toxicity: toxic.toxicity, ...toxic.attributes }
        e.toxic = { proxy, name }
        e.revert = async (how) => {
          if (how === 'external') return
          // Gone already (reset, deleted) between our check and now: nothing to take out.
          if (proxy.toxics.some((t) => t.name === name)) proxy.removeToxic(name)
        }
        e.probe = async () => {
          if (options.tcp.get(target) !== proxy) return `proxy ${show(target)} was deleted, so nothing can pass through it`
          if (!proxy.enabled) return `proxy ${show(target)} is disabled, so nothing listens at ${proxy.listen}`
          return tcpProbe(proxy.listen)
        }
      }
      if (typeof durationMs === 'number') {
        e.revertAt = e.live.record.tStart + durationMs
        e.timer = setTimeout(() => void end(e, 'schedule'), durationMs)
        e.timer.unref()
      }
      active.set(id, e)
      options.metrics.faultStarted(id, type, target)
      publish({ type: 'fault', id, fault: type, target, action: 'apply' })
      publish({ type: 'experiment', experiment: view(e) })
      return e
    } finally {
      starting--
    }
  }

  /**
   * Ends an experiment (once; later calls get the same promise): takes the fault out, stops
   * its gauge whatever the revert did, records it, then probes for recovery. Resolves when
   * the fault is out; `e.settled` when the verdict is final.
   */
  function end(e: Experiment, how: EndedBy): Promise<void> {
    if (!active.has(e.id)) return Promise.resolve()
    active.delete(e.id)
    clearTimeout(e.timer)
    e.endedBy = how
    e.live.verdict = 'recovering'
    const reverted = (async () => {
      try {
        await e.revert(how)
      } catch (error) {
        e.reason = `the revert failed: ${error instanceof Error ? error.message : String(error)}`
      } finally {
        e.live.record.tStop = Date.now()
        options.metrics.faultStopped(e.id, e.type, e.target)
        remember(e)
        publish({ type: 'fault', id: e.id, fault: e.type, target: e.target, action: 'revert', endedBy: how })
        publish({ type: 'experiment', experiment: view(e) })
      }
    })()
    e.settled = reverted.then(async () => {
      await recover(e)
      publish({ type: 'experiment', experiment: view(e) })
    })
    return reverted
  }

  // Recovery: the first good answer through the proxy after the revert, within the window.
  async function recover(e: Experiment) {
    await recoverLive(e.live, { probe: e.probe, windowMs, pollMs: 20, now: Date.now, stopped: () => closed, what: `traffic through ${e.target}` })
    if (e.live.verdict === 'failed') e.reason ??= e.live.check?.observed ?? null
  }

  function remember(e: Experiment) {
    history.set(e.id, e)
    for (const old of history.values()) {
      if (history.size <= historyLimit) break
      history.delete(old.id)
      options.metrics.faultForgotten(old.id, old.type, old.target)
    }
  }

  const result = (e: Experiment) => ({ id: e.id, tStop: e.live.record.tStop, mttrMs: e.live.mttrMs, verdict: e.live.verdict, reason: e.reason, endedBy: e.endedBy })

  return {
    register(router) {
      router.route('POST', '/chaos/inject', async ({ body }) => {
        const e = await inject(body)
        return { status: 201, body: { id: e.id, tStart: e.live.record.tStart } }
      })
      router.route('POST', '/chaos/revert/:id', async ({ params }) => {
        const id = params.id as string
        const e = active.get(id) ?? history.get(id)
        if (!e) throw new HttpError(404, `no experiment ${show(id)} (active or among the last ${historyLimit} ended)`)
        await end(e, 'revert')
        let timer: NodeJS.Timeout | undefined
        await Promise.race([e.settled, new Promise((r) => (timer = setTimeout(r, revertAnswerMs)))])
        clearTimeout(timer)
        return { status: e.live.verdict === 'recovering' ? 202 : 200, body: result(e) }
      })
      router.route('GET', '/chaos/experiments', () => ({
        status: 200,
        body: {
          limits: { maxActive, historyLimit, recoveryWindowMs: windowMs, revertAnswerMs, maxParamsBytes: MAX_PARAMS_BYTES },
          schedule: [...active.values()].filter((e) => e.revertAt !== null).map((e) => ({ id: e.id, type: e.type, target: e.target, revertAt: e.revertAt })),
          active: [...active.values()].map(view),
          history: [...history.values()].map(view),
        },
      }))
      router.route('GET', '/chaos/experiments/:id', ({ params }) => {
        const id = params.id as string
        const e = active.get(id) ?? history.get(id)
        if (!e) throw new HttpError(404, `no experiment ${show(id)} (active or among the last ${historyLimit} ended)`)
        return { status: 200, body: view(e) }
      })
      router.route('GET', '/chaos/events', () => {
        if (subscribers.size >= MAX_EVENT_SUBSCRIBERS)
          throw new HttpError(429, `there are already ${MAX_EVENT_SUBSCRIBERS} event streams open (the limit); close one before opening another`)
        return {
          status: 200,
          stream(res) {
            subscribers.add(res)
            res.on('close', () => drop(res))
            write(res, frame({ type: 'snapshot', active: [...active.values()].map(view), history: [...history.values()].map(view) }))
            heartbeat ??= setInterval(() => {
              for (const r of subscribers) write(r, ': keep-alive\n\n')
            }, EVENTS_HEARTBEAT_MS).unref()
          },
        }
      })
      router.route('GET', '/metrics', async () => ({ status: 200, text: await options.metrics.text(), contentType: options.metrics.contentType }))
    },
    async revertAll() {
      const ending = [...active.values()].reverse()
      for (const e of ending) await end(e, 'shutdown')
      closed = true
      await Promise.all([...history.values()].map((e) => e.settled))
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
  const host = listen.slice(0, i).replace(/^\[(.*)\]$/, '$1') || '127.0.0.1'
  return new Promise((resolve) => {
    const socket = net.connect({ host, port: Number(listen.slice(i + 1)) })
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(1_000, () => done(false))
    socket.once('connect', () => done(true))
    socket.once('error', () => done(false))
  })
}
