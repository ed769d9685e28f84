import { type Hex, parseGwei } from 'viem'
import { mnemonicToAccount } from 'viem/accounts'
import { catchUp, type DevnetCheckContext, driftRejected, evidence, memory, mustStall, noFork, progress, rejects } from '../checks/devnet/checks.js'
import type { Outcome } from '../checks/types.js'
import { InputError } from '../errors.js'
import { type ActiveFault, applyFault, checkPrerequisites, type FaultContext } from '../Fault.js'
import { faults } from '../faults/registry.js'
import { type CheckResult, type FaultRecord, type ScenarioReport, scenarioReport } from '../report/types.js'
import { type Devnet, execProxiesFor, startDevnet } from '../targets/devnet.js'
import { createRpc } from '../targets/rpc.js'
import { createPrng } from '../util/prng.js'
import { type Probe, startProbe } from './devnet-probe.js'
import { type RunEvent, revertAll } from './runner.js'
import type { CheckSpec, FaultSpec, Phase, Scenario } from './types.js'
import { decideVerdict, verdictOfError } from './verdict.js'

export type DevnetRunOptions = {
  seed: number
  replay: string
  onEvent?: (event: RunEvent) => void
  /** Test builds of the validators (e.g. `{ 2: { unsafe: { skipStateRootCheck: true } } }`). */
  overrides?: Record<number, Record<string, unknown>>
}

/** Numbers a devnet scenario reports besides its checks. */
export type DevnetMetrics = {
  firstCommitMs: number | null
  catchUpMs: number | null
  rejectionLatencyMs: number | null
  inclusionMs: { p50: number; p99: number; n: number } | null
  maxRssMb: number
  /** Per validator: [ms since start, height] every ~500 ms, for plots. */
  heights: { t: number; heights: (number | null)[] }[]
  faultWindows: { type: string; target: string | undefined; tStart: number; tStop: number | null }[]
}

const byzantine = (type: string) => type.startsWith('byzantine.')

/**
 * Runs one devnet scenario on a fresh 4-validator devnet: baseline (wait), inject (faults apply,
 * or random faults from the seed for a soak), recover (faults revert; wait until the checks
 * hold or the window ends). A probe samples the devnet all along; checks read its series.
 */
export async function runDevnetScenario(scenario: Scenario, options: DevnetRunOptions): Promise<ScenarioReport & { devnet: DevnetMetrics }> {
  const emit = options.onEvent ?? (() => {})
  const prng = createPrng(options.seed).fork(scenario.name)
  const started = performance.now()
  const now = () => Math.round(performance.now() - started)
  for (const [i, f] of scenario.inject.faults.entries()) {
    if (f.type.startsWith('rpc.') || ['oracle.', 'liquidity.', 'dependency.', 'time.', 'gas.', 'chain.'].some((p) => f.type.startsWith(p)))
      throw new InputError(`${scenario.file}: \`inject.faults[${i}].type\` ${f.type} works on a fork, not on a devnet.`, { context: { File: scenario.file, Field: `inject.faults[${i}].type` } })
  }
  const targets = [...scenario.inject.faults, ...(scenario.inject.random?.faults ?? [])].filter((f) => byzantine(f.type)).map((f) => Number(String(f.target).replace('validator-', '')))
  const honest = scenario.target.honest ?? [0, 1, 2, 3].filter((v) => !targets.includes(v))
  const results: CheckResult[] = []
  const records: FaultRecord[] = []
  const active: ActiveFault[] = []
  let devnet: Devnet | undefined
  let probe: Probe | undefined
  let mttrMs: number | null = null
  let recovered = true
  let aborted: string | undefined
  const metrics: DevnetMetrics = { firstCommitMs: null, catchUpMs: null, rejectionLatencyMs: null, inclusionMs: null, maxRssMb: 0, heights: [], faultWindows: [] }
  const inclusion: number[] = []

  const report = (verdict: ScenarioReport['verdict'], reason: string) => {
    if (probe) {
      metrics.heights = probe.samples.filter((_, i) => i % 5 === 0).map((s) => ({ t: s.t, heights: s.heights }))
      metrics.maxRssMb = Math.round(Math.max(0, ...probe.rssMb.map((r) => r.mb)))
    }
    metrics.faultWindows = records.map((r) => ({ type: r.type, target: r.target, tStart: r.tStart, tStop: r.tStop }))
    if (inclusion.length) {
      const sorted = [...inclusion].sort((a, b) => a - b)
      metrics.inclusionMs = { p50: sorted[Math.floor(sorted.length / 2)] as number, p99: sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))] as number, n: sorted.length }
    }
    return {
      ...scenarioReport(scenario, {
        verdict,
        reason,
        faults: records,
        checks: results,
        mttrMs,
        durationMs: now(),
        cycles: { baseline: { total: 0, reverted: 0 }, inject: { total: 0, reverted: 0 }, recover: { total: 0, reverted: 0 } },
        load: [],
        proxies: {},
        seed: options.seed,
        replay: options.replay,
      }),
      devnet: metrics,
    }
  }

  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
  try {
    // What this machine lacks (a Debian package) ends the scenario `skipped` before anything boots.
    checkPrerequisites(faults, [...scenario.inject.faults, ...(scenario.inject.random?.faults ?? [])], scenario.file)
    const upAt = Date.now()
    // Execution proxies only for the validators a listed fault acts on: any other validator's execution calls would wait on this process.
    const execProxy = execProxiesFor([...scenario.inject.faults, ...(scenario.inject.random?.faults ?? [])])
    devnet = await startDevnet({ slotMs: scenario.target.slotMs, seed: options.seed, execProxy, ...(options.overrides ? { overrides: options.overrides } : {}) })
    probe = startProbe(devnet)
    const p = probe
    const ctxFor = (from: number, to: number, extra: Partial<DevnetCheckContext> = {}): DevnetCheckContext => ({ probe: p, window: { from, to }, slotMs: scenario.target.slotMs, honest, ...extra })
    const evaluate = (phase: Phase, c: DevnetCheckContext) =>
      scenario.checks
        .filter((spec) => !spec.phases || spec.phases.includes(phase))
        .map((spec) => ({ name: spec.name, kind: spec.kind, phase, ...check(spec, c, metrics, inclusion) }))

    // First commit: how long `devnet up` takes to a working chain.
    const deadline = performance.now() + 15_000
    while (p.firstCommitAt(1) === undefined && performance.now() < deadline) await sleep(50)
    // From `devnet up` (before any process started) to the first sample with a committed block.
    const first = p.firstCommitAt(1)
    metrics.firstCommitMs = first === undefined ? null : p.epochStartMs + first - upAt
    if (metrics.firstCommitMs === null) return report('error', 'the devnet did not commit its first block within 15 s')

    emit({ type: 'phase', scenario: scenario.name, phase: 'baseline' })
    const b0 = p.now()
    await sleep(scenario.baseline.durationMs)
    const baseline = evaluate('baseline', ctxFor(b0, p.now()))
    results.push(...baseline)
    if (baseline.some((r) => !r.ok)) return report('aborted', `steady state did not hold at baseline (\`${baseline.find((r) => !r.ok)?.name}\`): no fault injected`)

    emit({ type: 'phase', scenario: scenario.name, phase: 'inject' })
    const faultCtx: FaultContext = {
      rpc: createRpc('http://127.0.0.1:1', { owned: false }),
      prng: prng.fork('faults'),
      resolve: () => {
        throw new InputError('Devnet faults target validators by id, not contracts.')
      },
      now: () => p.now(),
      devnet,
    }
    const apply = async (spec: FaultSpec, where: string) => {
      const fault = await applyFault(faults[spec.type as keyof typeof faults], faultCtx, { target: spec.target === undefined ? undefined : String(spec.target), params: spec.params ?? {} }, where)
      active.push(fault)
      records.push({ type: fault.type, target: fault.target, params: fault.params, tStart: fault.tStart, tStop: null, evidence: null })
      return fault
    }
    let i0 = p.now()
    const tracker = trackInclusion(devnet, inclusion)
    try {
      for (const [i, spec] of scenario.inject.faults.entries()) await apply(spec, `${scenario.file}: inject.faults[${i}]`)
      // The inject window is the time every fault is in effect.
      i0 = p.now()
      if (scenario.inject.random) {
        const windows = await soak(scenario.inject.random, scenario.inject.durationMs, apply, active, records, prng.fork('soak'), p)
        results.push(flakeBudget(windows, scenario.inject.random.flakeBudget, p, honest))
      } else await sleep(scenario.inject.durationMs)
    } finally {
      await tracker.stop()
    }
    const injectResults = evaluate('inject', ctxFor(i0, p.now()))
    const observations = { steps: [], viewsBefore: {}, viewsAfter: {} }
    for (const [i, fault] of active.entries()) (records[i] as FaultRecord).evidence = await fault.detect(observations).catch((e: Error) => ({ took: `detect failed: ${e.message}`, seen: null }))
    results.push(...injectResults)

    emit({ type: 'phase', scenario: scenario.name, phase: 'revert' })
    await revertAll(active, records)
    const revertedAt = p.now()
    emit({ type: 'phase', scenario: scenario.name, phase: 'recover' })
    let recoverResults: CheckResult[] = []
    const until = performance.now() + scenario.recover.durationMs
    do {
      await sleep(Math.min(500, scenario.target.slotMs))
      recoverResults = evaluate('recover', ctxFor(revertedAt, p.now(), { revertedAt }))
    } while (recoverResults.some((r) => !r.ok) && performance.now() < until)
    // A recover window must see progress over at least a couple of slots before it counts.
    if (recoverResults.every((r) => r.ok) && p.now() - revertedAt < 2 * scenario.target.slotMs) await sleep(2 * scenario.target.slotMs)
    recoverResults = evaluate('recover', ctxFor(revertedAt, p.now(), { revertedAt }))
    results.push(...recoverResults)
    recovered = recoverResults.every((r) => r.ok)
    if (recovered && injectResults.some((r) => !r.ok && r.kind === 'liveness')) mttrMs = p.now() - revertedAt
  } catch (error) {
    await revertAll(active, records).catch(() => {})
    if (error instanceof InputError) throw error
    const { verdict, reason } = verdictOfError(error)
    return report(verdict, reason)
  } finally {
    await probe?.stop()
    await devnet?.down()
  }
  const { verdict, reason } = decideVerdict(results, { recovered, aborted })
  return report(verdict, reason)
}

function check(spec: CheckSpec, c: DevnetCheckContext, metrics: DevnetMetrics, inclusion: number[]): Outcome {
  if (spec.progress) return progress(c, spec.progress)
  if (spec.noFork) return noFork(c)
  if (spec.mustStall) return mustStall(c)
  if (spec.catchUp) {
    const out = catchUp(c, spec.catchUp)
    metrics.catchUpMs = out.catchUpMs
    return out
  }
  if (spec.rejects) {
    const out = rejects(c, spec.rejects)
    metrics.rejectionLatencyMs = out.rejectionLatencyMs
    return out
  }
  if (spec.driftRejected) return driftRejected(c, spec.driftRejected)
  if (spec.evidence) return evidence(c, spec.evidence)
  if (spec.memory) return memory(c, spec.memory)
  if (spec.inclusion) {
    const sorted = [...inclusion].sort((a, b) => a - b)
    const p99 = sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]
    return { ok: sorted.length > 0 && (p99 as number) <= spec.inclusion.maxMs, observed: sorted.length ? `honest tx inclusion p99 ${Math.round(p99 as number)} ms (n = ${sorted.length})` : 'no honest transaction was included', expected: `p99 ≤ ${spec.inclusion.maxMs} ms` }
  }
  return { ok: false, observed: `check \`${spec.name}\` has no devnet meaning`, expected: 'one of progress, noFork, mustStall, catchUp, rejects, driftRejected, evidence, memory, inclusion' }
}

/**
 * Honest traffic while faults run: a transfer from a dedicated account every 500 ms through the
 * first running validator, timed from send to receipt.
 */
function trackInclusion(devnet: Devnet, out: number[]) {
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
          const hash = await node.rpc.request<Hex>('eth_sendRawTransaction', [tx])
          nonce++
          while (running) {
            const receipt = await node.rpc.request<unknown>('eth_getTransactionReceipt', [hash]).catch(() => null)
            if (receipt) {
              out.push(performance.now() - t)
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
 * The soak: every `everyMs`, one fault drawn from the list (seeded) is applied to a validator
 * drawn from the seed, held for `holdMs`, then reverted — never more than `budget` (f = 1)
 * validators faulty at once.
 */
async function soak(
  random: NonNullable<Scenario['inject']['random']>,
  durationMs: number,
  apply: (spec: FaultSpec, where: string) => Promise<ActiveFault>,
  active: ActiveFault[],
  records: FaultRecord[],
  prng: ReturnType<typeof createPrng>,
  probe: Probe,
) {
  const end = probe.now() + durationMs
  const windows: { type: string; target: string; from: number; to: number }[] = []
  let n = 0
  while (probe.now() + random.holdMs < end) {
    const spec = random.faults[prng.int(0, random.faults.length - 1)] as FaultSpec
    const target = spec.target ?? String(prng.int(0, 3))
    const fault = await apply({ ...spec, target }, `inject.random.faults (#${++n})`)
    await new Promise((r) => setTimeout(r, random.holdMs))
    await fault.revert()
    const i = active.indexOf(fault)
    ;(records[i] as FaultRecord).tStop = fault.tStop
    windows.push({ type: spec.type, target: String(target), from: fault.tStart, to: fault.tStop ?? probe.now() })
    await new Promise((r) => setTimeout(r, Math.max(0, random.everyMs - random.holdMs)))
  }
  return windows
}

/**
 * The soak's flake budget: with at most f validators faulty, each fault window must see a commit
 * by an honest validator while the fault is active; windows without one are flakes, and more
 * than `budget` of them break liveness.
 */
function flakeBudget(windows: { type: string; target: string; from: number; to: number }[], budget: number, probe: Probe, honest: number[]): CheckResult {
  const heightAt = (t: number) => Math.max(0, ...probe.samples.filter((x) => x.t <= t).flatMap((x) => honest.map((h) => x.heights[h] ?? 0)))
  const flakes = windows.filter((w) => heightAt(w.to) <= heightAt(w.from))
  return {
    name: 'soak-flake-budget',
    kind: 'liveness',
    phase: 'inject',
    ok: flakes.length <= budget,
    observed: `${windows.length} fault windows, ${flakes.length} without a commit${flakes.length ? ` (${flakes.map((f) => `${f.type}@${f.target}`).join(', ')})` : ''}`,
    expected: `≤ ${budget} windows without a commit (flake budget)`,
  }
}
