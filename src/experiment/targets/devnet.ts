import { type Hex, parseGwei } from 'viem'
import { mnemonicToAccount } from 'viem/accounts'
import type { DevnetSeries } from '../../Check.js'
import { evaluateCheck } from '../../checks/registry.js'
import { InfraError, InputError } from '../../errors.js'
import { type ActiveFault, checkPrerequisites, type FaultContext } from '../../Fault.js'
import { faults } from '../../faults/registry.js'
import type { CheckResult, FaultWindow } from '../../report/types.js'
import type { DevnetMetrics } from '../../scenario/devnet-runner.js'
import { type Probe, startProbe } from '../../scenario/devnet-probe.js'
import { checkKindOf } from '../../checks/registry.js'
import { loadTopology } from '../../topology/topology.js'
import { endpointChecks, startEndpointsProbe } from './endpoints.js'
import type { FaultSpec, RandomFaults, Scenario } from '../../scenario/types.js'
import { type Devnet, defaultDevnetSize, execProxiesFor, startDevnet } from '../../targets/devnet.js'
import { parseSizeExpr, sizeOf } from '../../targets/devnet-size.js'
import { createRpc } from '../../targets/rpc.js'
import { createPrng, type Prng } from '../../util/prng.js'
import { devnetObservations } from '../observations.js'
import type { RunEvent } from '../events.js'
import { define, type PhaseIo, type Session } from '../target.js'
import type { RunContext } from '../../scenario/context.js'
import type { StepRecord } from '../../Step.js'
import { type FaultBody, faultSchedule } from '../../steps/fault.js'
import { runStep } from '../../steps/registry.js'

/** A devnet phase's run: its window on the probe clock; a soak adds its fault windows. */
export type DevnetRun = { from: number; to: number; revertedAt?: number; windows?: SoakWindow[] }
type SoakWindow = { type: string; target: string; from: number; to: number }

/** What the first commit may take before the devnet counts as not working. */
const FIRST_COMMIT_MS = 15_000
/** How often a waiting phase looks at its stop conditions and a recover phase at its checks. */
const POLL_MS = 500
/** At most this many commits and rejections go into the report (the last ones), so a soak's report stays small. */
const MAX_TIMELINE_ROWS = 2_000

const byzantine = (type: string) => type.startsWith('byzantine.')

/**
 * The devnet target: a fresh devnet of `target.validators` (n = 3f + 1) for every scenario,
 * with execution proxies only for the validators a listed fault acts on. A probe samples it all
 * along; checks read its series. Baseline waits, inject waits (or runs the soak: faults drawn
 * from the seed, at most `budget` validators faulty at once), recover polls the checks until
 * they hold or its window ends. Nothing is shared between scenarios, so `boot` starts nothing.
 */
export const devnetTarget = (options: { overrides?: Record<number, Record<string, unknown>>; reuse?: Devnet; probe?: 'forkchaos' | 'eth' } = {}) =>
  define<null, Devnet, DevnetRun>({
    kind: 'devnet',
    boot: async () => null,
    async reset(_shared, scenario, info) {
      for (const [i, f] of scenario.inject.faults.entries()) {
        if (f.type.startsWith('rpc.') || ['oracle.', 'liquidity.', 'dependency.', 'time.', 'gas.', 'chain.'].some((p) => f.type.startsWith(p)))
          throw new InputError(`${scenario.file}: \`inject.faults[${i}].type\` ${f.type} works on a fork, not on a devnet.`, { context: { File: scenario.file, Field: `inject.faults[${i}].type` } })
      }
      const listed = [...scenario.inject.faults, ...(scenario.inject.random?.faults ?? []), ...scheduledFaults(scenario)]
      // What this machine lacks (a Debian package) ends the scenario `skipped` before anything boots.
      checkPrerequisites(faults, listed, scenario.file)
      // A probe over eth_* only (the topology's `probe: eth`) sees heights and hashes: checks that read more are refused before anything starts.
      if (viaOf(options, scenario) === 'eth')
        for (const list of ['checks', 'stop'] as const)
          scenario[list].forEach((spec, i) => {
            const { kind } = checkKindOf(spec)
            if (!endpointChecks.has(kind))
              throw new InputError(`${scenario.file}: \`${list}[${i}].${kind}\` reads the embedded node's own RPC (fc_*); this devnet's probe reads eth_* only (its topology says \`probe: eth\`): ${[...endpointChecks].join(', ')} can be judged.`, { context: { File: scenario.file, Field: `${list}[${i}]` } })
          })
      // `reuse`: a running devnet (a test's, one for several scenarios); it stays up after each. Its size must be the scenario's.
      if (options.reuse) {
        const n = options.reuse.nodes.length
        if ((scenario.target.validators ?? defaultDevnetSize) !== n) throw new InputError(`${scenario.file}: \`target.validators\` is ${scenario.target.validators}; the devnet it runs on has ${n}.`, { context: { File: scenario.file, Field: 'target.validators' } })
        return { instance: options.reuse, release: async () => {} }
      }
      // Execution proxies only for the validators a listed fault acts on: any other validator's execution calls would wait on this process.
      const devnet = await startDevnet({
        validators: scenario.target.validators ?? defaultDevnetSize,
        slotMs: scenario.target.slotMs,
        seed: info.seed,
        execProxy: execProxiesFor(listed),
        ...(scenario.target.el && scenario.target.el !== 'anvil' ? { el: scenario.target.el } : {}),
        ...(scenario.target.topology ? { topology: scenario.target.topology } : {}),
        ...(options.overrides ? { overrides: options.overrides } : {}),
      })
      return { instance: devnet, release: () => devnet.down() }
    },
    probe: async (devnet, scenario, info) => openSession(devnet, scenario, info.seed, info.emit, options.probe ?? devnet.topology.probe ?? 'forkchaos'),
    stop: async () => {},
  })

/** What a devnet scenario's probe reads: the target's option, else its topology's `probe`. */
function viaOf(options: { reuse?: Devnet; probe?: 'forkchaos' | 'eth' }, scenario: Scenario): 'forkchaos' | 'eth' {
  return options.probe ?? (options.reuse ? options.reuse.topology.probe : scenario.target.topology ? loadTopology(scenario.target.topology).probe : undefined) ?? 'forkchaos'
}

async function openSession(devnet: Devnet, scenario: Scenario, seed: number, emit: (event: RunEvent) => void = () => {}, via: 'forkchaos' | 'eth' = 'forkchaos'): Promise<Session<DevnetRun>> {
  const upAt = Date.now()
  const n = devnet.nodes.length
  const slotMs = scenario.target.slotMs
  const prng = createPrng(seed).fork(scenario.name)
  const byzantineIds = [...scenario.inject.faults, ...(scenario.inject.random?.faults ?? []), ...scheduledFaults(scenario)].filter((f) => byzantine(f.type)).map((f) => Number(String(f.target).replace('validator-', '')))
  const honest = scenario.target.honest ?? Array.from({ length: n }, (_, v) => v).filter((v) => !byzantineIds.includes(v))
  // eth_* only: each validator's topology `rpc` read with eth_getBlockByNumber (latest, safe, finalized, each block's hash), as for endpoints.
  const probe: Probe =
    via === 'eth'
      ? startEndpointsProbe({ file: devnet.topology.file, pollMs: 250, endpoints: devnet.nodes.map((node) => ({ name: `validator-${node.id}`, url: node.rpcUrls[0] ?? node.rpcUrl, labels: {} })) })
      : startProbe(devnet)
  const metrics: DevnetMetrics = { firstCommitMs: null, catchUpMs: null, rejectionLatencyMs: null, inclusionMs: null, maxRssMb: 0, heights: [], faultWindows: [], soak: null, commits: [], rejections: [] }
  const inclusion: number[] = []
  // When each inclusion sample's transfer was sent (probe clock, ms), in the same order.
  const inclusionAt: number[] = []
  let applied: readonly ActiveFault[] = []
  // The inject steps' faults by id, for checks judged over one fault's window (`during`).
  const scheduledWindows = new Map<string, FaultWindow>()
  let recoverUntil: number | undefined
  let baselineWindow: { from: number; to: number } | undefined
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
  const series: DevnetSeries = { probe, slotMs, validators: n, honest, inclusionMs: inclusion }

  // First commit: how long `devnet up` takes to a working chain, from before any process started.
  const deadline = performance.now() + FIRST_COMMIT_MS
  while (probe.firstCommitAt(1) === undefined && performance.now() < deadline) await sleep(50)
  const first = probe.firstCommitAt(1)
  metrics.firstCommitMs = first === undefined ? null : probe.epochStartMs + first - upAt
  if (metrics.firstCommitMs === null) {
    await probe.stop()
    throw new NoFirstCommit(`the devnet did not commit its first block within ${FIRST_COMMIT_MS / 1000} s`)
  }

  // Commits, and validators going down or up, as they happen, for progress lines and the live view (src/ui).
  let told = 0
  let down: boolean[] = Array.from({ length: n }, () => false)
  const tellCommits = () => {
    const heights = probe.samples.at(-1)?.heights ?? []
    const height = Math.max(0, ...heights.map((h) => h ?? 0))
    if (height > told) emit({ type: 'commit', scenario: scenario.name, height: (told = height) })
    const changed = nodeChanges(down, heights)
    down = changed.down
    for (const c of changed.events) emit({ type: 'node', scenario: scenario.name, ...c })
  }
  // Waits `ms`, looking at the stop conditions every poll once the window is two slots long.
  const wait = async (ms: number, from: number, io: PhaseIo<DevnetRun>) => {
    const end = performance.now() + ms
    while (performance.now() < end) {
      await sleep(Math.min(POLL_MS, end - performance.now()))
      tellCommits()
      if (probe.now() - from >= 2 * slotMs) await io.guard({ from, to: probe.now() })
    }
  }

  const faultCtx: FaultContext = {
    rpc: createRpc('http://127.0.0.1:1', { owned: false }),
    prng: prng.fork('faults'),
    resolve: () => {
      throw new InputError('Devnet faults target validators by id, not contracts.')
    },
    now: () => probe.now(),
    devnet,
  }

  return {
    faults: faultCtx,
    now: () => probe.now(),
    async act(phase, io) {
      if (phase === 'baseline') {
        const from = probe.now()
        await wait(scenario.baseline.durationMs, from, io)
        baselineWindow = { from, to: probe.now() }
        return baselineWindow
      }
      if (phase === 'inject') {
        // The inject window is the time every listed fault is in effect.
        const from = probe.now()
        applied = io.active
        const tracker = trackInclusion(devnet, inclusion, inclusionAt, () => probe.now())
        try {
          if (scenario.inject.random) {
            const s = await soak(scenario.inject.random, scenario.inject.durationMs, io, prng.fork('soak'), probe, n, from, {
              tell: tellCommits,
              reverted: (type) => emit({ type: 'fault', scenario: scenario.name, fault: type, action: 'revert' }),
            })
            metrics.soak = s.summary
            return { from, to: probe.now(), windows: s.windows }
          }
          if (scenario.inject.steps.length > 0) {
            await runSchedule(scenario, io, () => probe.now(), from, scheduledWindows)
            return { from, to: probe.now() }
          }
          await wait(scenario.inject.durationMs, from, io)
        } finally {
          await tracker.stop()
        }
        return { from, to: probe.now() }
      }
      // Recover: one poll, and never judged before two slots have passed since the revert.
      const revertedAt = io.revertedAt ?? probe.now()
      recoverUntil ??= performance.now() + scenario.recover.durationMs
      await sleep(Math.max(Math.min(POLL_MS, slotMs), revertedAt + 2 * slotMs - probe.now()))
      tellCommits()
      const run = { from: revertedAt, to: probe.now(), revertedAt }
      await io.guard(run)
      return run
    },
    async check(specs, phase, run, purpose) {
      const window = { phase, from: run.from, to: run.to, ...(run.revertedAt !== undefined ? { revertedAt: run.revertedAt } : {}) }
      return specs.map((spec) => {
        if (spec.during !== undefined) {
          // Judged over the fault's own window; one never applied (the run stopped before its step) is not judged.
          const w = scheduledWindows.get(spec.during)
          if (!w) return { name: spec.name, kind: spec.kind, phase, ok: true, observed: `fault \`${spec.during}\` was never applied: not judged`, expected: `judged while \`${spec.during}\` is applied` }
          const { metrics: _m, ...outcome } = evaluateCheck(spec, series, { ...window, from: w.applied.t, to: w.reverted?.t ?? run.to })
          return { name: spec.name, kind: spec.kind, phase, ...outcome, observed: `while \`${spec.during}\` was applied (${Math.round(w.applied.t)}–${Math.round(w.reverted?.t ?? run.to)} ms): ${outcome.observed}` }
        }
        // Over eth_* no block shows its signers: progress is judged on heights alone, and says so.
        const unsigned = via === 'eth' && checkKindOf(spec).kind === 'progress'
        const { metrics: measured, ...outcome } = evaluateCheck(spec, unsigned ? { ...series, probe: { ...probe, blocks: [] } } : series, window)
        if (unsigned) outcome.expected = outcome.expected.replace(/, each with ≥ \d+ signers$/, ' (signers are not visible over eth_* JSON-RPC: not judged)')
        // Stop conditions are looked at many times: their numbers are not the report's.
        if (purpose === 'check' && measured) Object.assign(metrics, pick(measured))
        return { name: spec.name, kind: spec.kind, phase, ...outcome }
      })
    },
    extras(phase, run) {
      return phase === 'inject' && scenario.inject.random && run.windows ? [flakeBudget(run.windows, scenario.inject.random.flakeBudget, probe, honest)] : []
    },
    async observe(run) {
      return { steps: [], viewsBefore: {}, viewsAfter: {}, devnet: devnetObservations(probe, run, baselineWindow, slotMs, honest) }
    },
    again: () => performance.now() < (recoverUntil ?? 0),
    report() {
      metrics.heights = probe.samples.filter((_, i) => i % 5 === 0).map((s) => ({ t: s.t, heights: s.heights }))
      metrics.maxRssMb = Math.round(Math.max(0, ...probe.rssMb.map((r) => r.mb)))
      metrics.faultWindows = applied.map((f) => ({ type: f.type, target: f.target, tStart: f.tStart, tStop: f.tStop }))
      if (scenario.target.timeScale) metrics.timeScale = scenario.target.timeScale
      // For report.html's timeline: each height's first commit seen, and the rejected proposals (probe clock, ms), bounded.
      const firstSeen = new Map<number, { height: number; t: number; proposer: number }>()
      for (const b of probe.blocks) if (!firstSeen.has(b.height) || (firstSeen.get(b.height)?.t ?? 0) > b.t) firstSeen.set(b.height, { height: b.height, t: b.t, proposer: b.proposer })
      metrics.commits = [...firstSeen.values()].sort((a, b) => a.height - b.height).slice(-MAX_TIMELINE_ROWS)
      metrics.rejections = probe.rejections.slice(-MAX_TIMELINE_ROWS).map((r) => ({ node: r.node, proposer: r.proposer, height: r.height, layer: r.layer, reason: r.reason.slice(0, 200), latencyMs: r.latencyMs, t: Math.max(0, r.at - probe.epochStartMs) }))
      if (inclusion.length) {
        const sorted = [...inclusion].sort((a, b) => a - b)
        metrics.inclusion = inclusion.slice(-MAX_TIMELINE_ROWS).map((ms, i, kept) => ({ t: Math.round(inclusionAt[inclusion.length - kept.length + i] ?? 0), ms: Math.round(ms) }))
        metrics.inclusionMs = { p50: sorted[Math.floor(sorted.length / 2)] as number, p99: sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))] as number, n: sorted.length }
      }
      return { cycles: { baseline: { total: 0, reverted: 0 }, inject: { total: 0, reverted: 0 }, recover: { total: 0, reverted: 0 } }, load: [], proxies: {}, devnet: metrics }
    },
    close: () => probe.stop(),
  }
}

/** The faults a devnet scenario's inject steps apply (`fault: { id, apply }`), as specs. */
function scheduledFaults(scenario: Scenario): FaultSpec[] {
  return scenario.inject.steps.flatMap((step) => {
    const body = (step as { fault?: FaultBody }).fault
    return body && 'apply' in body ? [body.apply] : []
  })
}

/**
 * A devnet's timed fault schedule (inject steps): `fault` steps apply and revert faults through
 * the experiment's `apply` (so every way out reverts them), `wait` steps hold the time between,
 * stop conditions looked at as they go. What is still applied at the end is reverted then
 * (`by: "phase end"`), or after a step threw. The steps read nothing of a fork's context.
 */
async function runSchedule(scenario: Scenario, io: PhaseIo<DevnetRun>, now: () => number, from: number, windows: Map<string, FaultWindow>): Promise<void> {
  const records: StepRecord[] = []
  const apply: typeof io.apply = (spec, where, window) => {
    if (window) windows.set(window.id, window)
    return io.apply(spec, where, window)
  }
  const schedule = faultSchedule({ phase: 'inject', apply, now, steps: () => records, file: scenario.file })
  let at = -1
  try {
    for (const [i, step] of scenario.inject.steps.entries()) {
      at = i
      const where = `inject.steps[${i}]`
      await runStep({} as RunContext, step, {
        phase: 'inject',
        where,
        record: (r) => records.push({ ...r, t: now() }),
        beforeStep: async () => {},
        // As a waiting phase does: stop conditions once the window is two slots long.
        stopCheck: async () => {
          if (now() - from >= 2 * scenario.target.slotMs) await io.guard({ from, to: now() })
        },
        progress: () => {},
        faults: schedule,
      })
    }
  } catch (error) {
    await schedule.close('error', at).catch(() => {})
    throw error
  }
  await schedule.close('phase end')
}

/** The numbers of the report a check may have measured (`catchUpMs`, `rejectionLatencyMs`). */
function pick(measured: Record<string, number | null>): Partial<DevnetMetrics> {
  const out: Partial<DevnetMetrics> = {}
  if ('catchUpMs' in measured) out.catchUpMs = measured.catchUpMs ?? null
  if ('rejectionLatencyMs' in measured) out.rejectionLatencyMs = measured.rejectionLatencyMs ?? null
  return out
}

/**
 * Which validators went down (stopped answering the probe: a null height) or came back up since
 * the last sample, given who was down before. A missing sample changes nothing.
 */
export function nodeChanges(wasDown: readonly boolean[], heights: readonly (number | null)[]): { down: boolean[]; events: { node: number; state: 'down' | 'up' }[] } {
  const down = [...wasDown]
  const events: { node: number; state: 'down' | 'up' }[] = []
  heights.forEach((h, node) => {
    const isDown = h === null
    if (isDown !== (down[node] ?? false)) events.push({ node, state: isDown ? 'down' : 'up' })
    down[node] = isDown
  })
  return { down, events }
}

/** The devnet never committed its first block: the experiment could not run (`error`). */
class NoFirstCommit extends InfraError {}

/**
 * Honest traffic while faults run: a transfer from a dedicated account every 500 ms through the
 * first running validator, timed from send to receipt.
 */
function trackInclusion(devnet: Devnet, out: number[], sentAt: number[], clock: () => number) {
  const account = mnemonicToAccount('test test test test test test test test test test test junk', { addressIndex: 99 })
  let running = true
  let nonce = 0
  const loop = (async () => {
    const chainId = Number(await devnet.nodes[0]?.rpc.request<Hex>('eth_chainId').catch(() => '0x7a69'))
    while (running) {
      const node = devnet.nodes.find((n) => n.running)
      if (node) {
        try {
          const tx = await account.signTransaction({ chainId, type: 'eip1559', nonce, to: account.address, value: 0n, gas: 21_000n, maxFeePerGas: parseGwei('100'), maxPriorityFeePerGas: parseGwei('2') })
          const t = performance.now()
          const at = clock()
          const hash = await node.rpc.request<Hex>('eth_sendRawTransaction', [tx])
          nonce++
          while (running) {
            const receipt = await node.rpc.request<unknown>('eth_getTransactionReceipt', [hash]).catch(() => null)
            if (receipt) {
              out.push(performance.now() - t)
              sentAt.push(at)
              break
            }
            await new Promise((r) => setTimeout(r, 50))
          }
        } catch {
          // A refused or lost send is not an inclusion sample; the next tick tries again.
        }
      }
      await new Promise((r) => setTimeout(r, 500))
    }
  })()
  return {
    stop: async () => {
      running = false
      await loop
    },
  }
}

/**
 * How many validators a fault makes faulty: those it lists (`validators`) or counts (`count`,
 * e.g. "f+1"), those outside the largest group of a partition (`groups`, or `sizes` with the
 * rest as one more group), the target and the f + 1 it kills (`node.restart-mid-round`), else
 * the one it targets.
 */
export function faultyCount(spec: FaultSpec, validators: number): number {
  const p = spec.params ?? {}
  if (spec.type === 'node.restart-mid-round') return Math.floor((validators - 1) / 3) + 2
  const size = (raw: unknown, field: string) => sizeOf(parseSizeExpr(raw, field), validators)
  if (Array.isArray(p.validators)) return p.validators.length
  if (p.count !== undefined) return size(p.count, 'count')
  const groups = Array.isArray(p.groups) ? p.groups.map((g) => (Array.isArray(g) ? g.length : 0)) : Array.isArray(p.sizes) ? p.sizes.map((s, i) => size(s, `sizes[${i}]`)) : undefined
  if (!groups) return 1
  const rest = validators - groups.reduce((a, b) => a + b, 0)
  return validators - Math.max(rest, ...groups)
}

/**
 * The soak: every `everyMs`, one fault drawn from the list (seeded) is applied to a validator
 * drawn from the seed, held for `holdMs`, then reverted — and only when it keeps at most
 * `budget` validators faulty at once: a draw over the budget is not applied (counted in
 * `overBudget`), and the soak waits for the next draw. Stop conditions are looked at as it goes;
 * commits, node down/up and each revert are told (`tell`) as they happen.
 */
async function soak(
  random: RandomFaults,
  durationMs: number,
  io: PhaseIo<DevnetRun>,
  prng: Prng,
  probe: Probe,
  validators: number,
  from: number,
  tell: { tell: () => void; reverted: (type: string) => void },
) {
  const end = probe.now() + durationMs
  const windows: SoakWindow[] = []
  const summary = { budget: random.budget, draws: 0, applied: 0, overBudget: 0 }
  // Commits and validators going down or up are told as the soak goes (progress lines, the live view), as in a scripted phase.
  const hold = async (ms: number) => {
    const until = performance.now() + ms
    while (performance.now() < until) {
      await new Promise((r) => setTimeout(r, Math.min(POLL_MS, until - performance.now())))
      tell.tell()
      await io.guard({ from, to: probe.now() })
    }
  }
  while (probe.now() + random.holdMs < end) {
    const spec = random.faults[prng.int(0, random.faults.length - 1)] as FaultSpec
    const target = spec.target ?? String(prng.int(0, validators - 1))
    summary.draws++
    // Faults are applied one at a time, so a draw's own count is what is faulty at once.
    if (faultyCount(spec, validators) > random.budget) {
      summary.overBudget++
      await hold(random.everyMs)
      continue
    }
    // `parsed` (the loader's, not enumerable) does not survive a spread: carried on by name, so a draw is not parsed again.
    const fault = await io.apply({ ...spec, target, parsed: spec.parsed }, `inject.random.faults (#${summary.draws})`)
    // The window is the span in which the fault was whole: from the end of its apply (the
    // validators are down) to the start of its revert (before they come back and can commit).
    const activeFrom = probe.now()
    summary.applied++
    await hold(random.holdMs)
    tell.reverted(spec.type)
    const activeTo = probe.now()
    await fault.revert()
    windows.push({ type: spec.type, target: String(target), from: activeFrom, to: activeTo })
    await hold(Math.max(0, random.everyMs - random.holdMs))
  }
  return { windows, summary }
}

/**
 * The soak's flake budget: with at most f validators faulty, each fault window must see a commit
 * by an honest validator while the fault is active; windows without one are flakes, and more
 * than `budget` of them break liveness.
 */
function flakeBudget(windows: SoakWindow[], budget: number, probe: Probe, honest: number[]): CheckResult {
  const top = (x: Probe['samples'][number]) => Math.max(0, ...honest.map((h) => x.heights[h] ?? 0))
  // Heights seen inside the window: from its first sample (a commit that landed between the
  // last sample before the fault and its apply is not the window's) to its last.
  const inside = (w: SoakWindow) => probe.samples.filter((x) => x.t >= w.from && x.t <= w.to).map(top)
  const flakes = windows.filter((w) => {
    const seen = inside(w)
    return seen.length < 2 || Math.max(...seen) <= (seen[0] as number)
  })
  return {
    name: 'soak-flake-budget',
    kind: 'liveness',
    phase: 'inject',
    ok: flakes.length <= budget,
    observed: `${windows.length} fault windows, ${flakes.length} without a commit${flakes.length ? ` (${flakes.map((f) => `${f.type}@${f.target}`).join(', ')})` : ''}`,
    expected: `≤ ${budget} windows without a commit (flake budget)`,
  }
}
