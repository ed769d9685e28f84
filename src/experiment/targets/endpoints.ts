import type { DevnetSeries } from '../../Check.js'
import { checkKindOf, evaluateCheck } from '../../checks/registry.js'
import { ForkchaosError, InfraError, InputError } from '../../errors.js'
import type { FaultContext } from '../../Fault.js'
import type { Probe } from '../../scenario/devnet-probe.js'
import type { FaultSpec, Scenario } from '../../scenario/types.js'
import { createRpc, type Rpc, RpcError } from '../../targets/rpc.js'
import type { Endpoints } from '../../topology/endpoints.js'
import { createPrng } from '../../util/prng.js'
import { redactUrl } from '../../util/redact.js'
import { define, type PhaseIo, type Session } from '../target.js'

/**
 * The endpoints target: a chain forkchaos did not start and cannot control as processes (a
 * Kubernetes devnet under Chaos Mesh, your own nodes), reached by each validator's JSON-RPC URL.
 * `boot` attaches (nothing starts), `reset` is a no-op, the probe reads standard
 * `eth_getBlockByNumber` only (latest, safe, finalized, and every block by number for its hash),
 * so progress, agreement (no fork: one hash per height) and catch-up can be judged on any client.
 *
 * Faults: forkchaos applies none here. `net.*` faults are the cluster's to apply (the Chaos Mesh
 * workflow `forkchaos export chaos-mesh` writes, started together with the run): they are
 * recorded as external, with the scenario's schedule, and the checks judge their windows. Every
 * other fault is refused at load (`prepareForEndpoints`), with why.
 */
export type EndpointsRun = { from: number; to: number; revertedAt?: number }

/** Checks the endpoints probe can feed: they read heights and hashes only. */
export const endpointChecks: ReadonlySet<string> = new Set(['progress', 'noFork', 'mustStall', 'keepsCommitted', 'catchUp'])

/** How long the endpoints may take to answer a first `eth_getBlockByNumber`. */
const FIRST_ANSWER_MS = 15_000
const POLL_MS = 500
/** Blocks read by number per endpoint per tick, at most (a node far behind catches up over several ticks). */
const BLOCKS_PER_TICK = 50

/** Why a fault cannot run on endpoints, or `undefined` when it runs as an external (Chaos Mesh) fault. */
export function endpointsRefusal(type: string): string | undefined {
  if (type.startsWith('net.'))
    return type === 'net.flap' ? 'a flapping link has no Chaos Mesh form, and the peer links are not forkchaos\'s on endpoints' : undefined
  if (type.startsWith('node.')) return 'it needs process control of the validator (signals, restarts with the same data, its clock or disk), which an endpoints target does not have'
  if (type.startsWith('byzantine.')) return "it needs forkchaos's proxy on a proposer's execution link, which exists only in a devnet forkchaos starts"
  if (type.startsWith('mempool.')) return "it needs the embedded devnet's funded accounts and a flooder process forkchaos starts"
  return 'it is not a devnet fault'
}

const external = new WeakMap<Scenario, FaultSpec[]>()

/**
 * A scenario made ready for endpoints, before anything runs: a devnet scenario whose faults are
 * all `net.*` (kept as external, run by the cluster), whose checks read only heights and hashes,
 * and whose validator ids exist among the endpoints. Everything it cannot run is named at once in
 * one `InputError` (exit 2): each fault or check, its field, and why.
 */
export function prepareForEndpoints(scenario: Scenario, endpoints: Endpoints): Scenario {
  const file = scenario.file
  if (scenario.target.kind !== 'devnet')
    throw new InputError(`${file}: \`--target ${endpoints.file}\` runs devnet scenarios (\`target.kind: devnet\`); this one's target is a ${scenario.target.kind}.`, { context: { File: file, Field: 'target.kind' } })
  const n = endpoints.endpoints.length
  const problems: string[] = []
  scenario.inject.faults.forEach((f, i) => {
    const why = endpointsRefusal(f.type)
    if (why) problems.push(`\`inject.faults[${i}]\` ${f.type}: ${why}`)
    const m = /^(?:validator-)?(\d+)$/.exec(String(f.target ?? ''))
    if (m && Number(m[1]) >= n) problems.push(`\`inject.faults[${i}].target\` is validator ${m[1]}; ${endpoints.file} lists ${n} endpoints (validators 0–${n - 1})`)
  })
  if (scenario.inject.random) problems.push('`inject.random`: a soak draws faults while inject runs, and forkchaos applies no fault on endpoints')
  for (const list of ['checks', 'stop'] as const)
    scenario[list].forEach((spec, i) => {
      const { kind, params } = checkKindOf(spec)
      if (!endpointChecks.has(kind)) problems.push(`\`${list}[${i}].${kind}\`: it reads the embedded node's own RPC (fc_*) or processes; over eth_* JSON-RPC only ${[...endpointChecks].join(', ')} can be judged`)
      const node = (params as { node?: number } | undefined)?.node
      if (typeof node === 'number' && node >= n) problems.push(`\`${list}[${i}].${kind}.node\` is validator ${node}; ${endpoints.file} lists ${n} endpoints`)
    })
  if (problems.length)
    throw new InputError(`${file}: cannot run on the endpoints of ${endpoints.file} (no process control): ${problems.join('; ')}.`, {
      context: { File: file, Endpoints: endpoints.file },
      hint: 'On Kubernetes the cluster applies the faults: `forkchaos export chaos-mesh` writes them as a Chaos Mesh Workflow.',
    })
  const prepared: Scenario = { ...scenario, target: { ...scenario.target, validators: n }, inject: { ...scenario.inject, faults: [] } }
  external.set(prepared, scenario.inject.faults)
  return prepared
}

/** Reads every endpoint's chain continuously into the devnet probe's shape (no signers, no rejections: eth_* does not say). */
export function startEndpointsProbe(endpoints: Endpoints): Probe & { tags: { t: number; node: number; latest: number; safe: number | null; finalized: number | null }[]; lastError: (string | null)[] } {
  const t0 = performance.now()
  const now = () => Math.round(performance.now() - t0)
  const clients: Rpc[] = endpoints.endpoints.map((e) => createRpc(e.url, { owned: false, timeoutMs: Math.max(400, endpoints.pollMs * 2) }))
  const fetched = endpoints.endpoints.map(() => 0)
  let running = true
  const probe = {
    epochStartMs: Date.now(),
    samples: [] as Probe['samples'],
    blocks: [] as Probe['blocks'],
    rejections: [],
    evidence: [],
    rssMb: [],
    tags: [] as { t: number; node: number; latest: number; safe: number | null; finalized: number | null }[],
    lastError: endpoints.endpoints.map(() => null as string | null),
    firstCommitAt: (h: number) => probe.samples.find((s) => s.heights.some((x) => x !== null && x >= h))?.t,
    now,
    stop: async () => {
      running = false
      await loop
    },
  }
  type Block = { number: string; hash: string; stateRoot: string } | null
  const loop = (async () => {
    while (running) {
      const started = performance.now()
      const heights = await Promise.all(
        clients.map(async (rpc, node) => {
          try {
            const [latest, safe, finalized] = (await rpc.batch([
              { method: 'eth_getBlockByNumber', params: ['latest', false] },
              { method: 'eth_getBlockByNumber', params: ['safe', false] },
              { method: 'eth_getBlockByNumber', params: ['finalized', false] },
            ])) as (Block | RpcError)[]
            if (!latest || latest instanceof RpcError) throw latest ?? new Error('no latest block')
            const h = Number(BigInt(latest.number))
            const tag = (b: Block | RpcError | undefined) => (b && !(b instanceof RpcError) ? Number(BigInt(b.number)) : null)
            probe.tags.push({ t: now(), node, latest: h, safe: tag(safe), finalized: tag(finalized) })
            // Every block by number since the last read, for its hash (agreement at each height).
            const from = (fetched[node] as number) + 1
            const last = Math.min(h, from + BLOCKS_PER_TICK - 1)
            if (last >= from) {
              const numbers = Array.from({ length: last - from + 1 }, (_, i) => from + i)
              const blocks = (await rpc.batch(numbers.map((x) => ({ method: 'eth_getBlockByNumber', params: [`0x${x.toString(16)}`, false] })))) as (Block | RpcError)[]
              const t = now()
              for (const [i, b] of blocks.entries()) {
                if (!b || b instanceof RpcError) break
                probe.blocks.push({ node, height: numbers[i] as number, hash: b.hash, stateRoot: b.stateRoot, proposer: -1, signers: [], t })
                fetched[node] = numbers[i] as number
              }
            }
            probe.lastError[node] = null
            return h
          } catch (error) {
            // One line, without the URL (credentials stay out of reports): what failed, and why.
            const why = error instanceof ForkchaosError ? [error.shortMessage, error.context.Reason, error.context.Status && `HTTP ${error.context.Status}`].filter(Boolean).join(' ') : (error as Error).message.split('\n')[0]
            probe.lastError[node] = why || 'no answer'
            return null
          }
        }),
      )
      probe.samples.push({ t: now(), heights })
      const wait = endpoints.pollMs - (performance.now() - started)
      if (wait > 0) await new Promise((r) => setTimeout(r, wait))
    }
  })()
  return probe
}

/** The endpoints target for one endpoints file; scenarios must come through `prepareForEndpoints`. */
export const endpointsTarget = (endpoints: Endpoints) =>
  define<null, Endpoints, EndpointsRun>({
    kind: 'endpoints',
    boot: async () => null,
    reset: async () => ({ instance: endpoints, release: async () => {} }),
    probe: async (instance, scenario, info) => openSession(instance, scenario, info.seed),
    stop: async () => {},
  })

async function openSession(endpoints: Endpoints, scenario: Scenario, seed: number): Promise<Session<EndpointsRun>> {
  const faults = external.get(scenario)
  if (!faults) throw new InputError(`${scenario.file}: a scenario for the endpoints target goes through prepareForEndpoints first.`)
  const n = endpoints.endpoints.length
  const slotMs = scenario.target.slotMs
  const honest = scenario.target.honest ?? Array.from({ length: n }, (_, i) => i)
  const probe = startEndpointsProbe(endpoints)
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
  const deadline = performance.now() + FIRST_ANSWER_MS
  while (!probe.samples.some((s) => s.heights.some((h) => h !== null)) && performance.now() < deadline) await sleep(50)
  if (!probe.samples.some((s) => s.heights.some((h) => h !== null))) {
    await probe.stop()
    throw new InfraError(`No endpoint of ${endpoints.file} answered eth_getBlockByNumber within ${FIRST_ANSWER_MS / 1000} s.`, {
      context: Object.fromEntries(endpoints.endpoints.map((e, i) => [e.name, probe.lastError[i] ?? 'no answer'])),
    })
  }
  const series: DevnetSeries = { probe, slotMs, validators: n, honest, inclusionMs: [] }
  // No signers over eth_*: progress is judged on heights alone, and says so.
  const withoutSigners: DevnetSeries = { ...series, probe: { ...probe, blocks: [] } }
  let recoverUntil: number | undefined
  const wait = async (ms: number, from: number, io: PhaseIo<EndpointsRun>) => {
    const end = performance.now() + ms
    while (performance.now() < end) {
      await sleep(Math.min(POLL_MS, end - performance.now()))
      if (probe.now() - from >= 2 * slotMs) await io.guard({ from, to: probe.now() })
    }
  }
  const windows: { phase: string; from: number; to: number }[] = []
  const faultCtx: FaultContext = {
    rpc: createRpc('http://127.0.0.1:1', { owned: false }),
    prng: createPrng(seed).fork(scenario.name),
    resolve: () => {
      throw new InputError('The endpoints target applies no faults.')
    },
    now: () => probe.now(),
  }
  return {
    faults: faultCtx,
    now: () => probe.now(),
    async act(phase, io) {
      if (phase !== 'recover') {
        const from = probe.now()
        await wait(phase === 'baseline' ? scenario.baseline.durationMs : scenario.inject.durationMs, from, io)
        windows.push({ phase, from, to: probe.now() })
        return { from, to: probe.now() }
      }
      const revertedAt = io.revertedAt ?? probe.now()
      recoverUntil ??= performance.now() + scenario.recover.durationMs
      await sleep(Math.max(Math.min(POLL_MS, slotMs), revertedAt + 2 * slotMs - probe.now()))
      const run = { from: revertedAt, to: probe.now(), revertedAt }
      await io.guard(run)
      return run
    },
    async check(specs, phase, run) {
      const window = { phase, from: run.from, to: run.to, ...(run.revertedAt !== undefined ? { revertedAt: run.revertedAt } : {}) }
      return specs.map((spec) => {
        const isProgress = checkKindOf(spec).kind === 'progress'
        const { metrics: _m, ...outcome } = evaluateCheck(spec, isProgress ? withoutSigners : series, window)
        if (isProgress) outcome.expected = outcome.expected.replace(/, each with ≥ \d+ signers$/, ' (signers are not visible over eth_* JSON-RPC: not judged)')
        return { name: spec.name, kind: spec.kind, phase, ...outcome }
      })
    },
    async observe() {
      return { steps: [], viewsBefore: {}, viewsAfter: {} }
    },
    again: () => performance.now() < (recoverUntil ?? 0),
    report() {
      const last = (node: number) => [...probe.tags].reverse().find((x) => x.node === node)
      return {
        cycles: { baseline: { total: 0, reverted: 0 }, inject: { total: 0, reverted: 0 }, recover: { total: 0, reverted: 0 } },
        load: [],
        proxies: {},
        endpoints: {
          file: endpoints.file,
          nodes: endpoints.endpoints.map((e, i) => ({ name: e.name, url: redactUrl(e.url), latest: last(i)?.latest ?? null, safe: last(i)?.safe ?? null, finalized: last(i)?.finalized ?? null, lastError: probe.lastError[i] ?? null })),
          heights: probe.samples.filter((_, i) => i % 4 === 0).map((s) => ({ t: s.t, heights: s.heights })),
        },
        // Applied by the cluster (the Chaos Mesh workflow), not by forkchaos: their windows are the scenario's.
        externalFaults: faults.map((f) => ({ type: f.type, target: f.target ?? null, params: f.params ?? {}, appliedBy: 'external (not applied by forkchaos: run the exported Chaos Mesh workflow together with this run)', window: windows.find((w) => w.phase === 'inject') ?? null })),
      }
    },
    close: () => probe.stop(),
  }
}
