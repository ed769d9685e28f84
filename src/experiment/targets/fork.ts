import type { Address } from 'viem'
import type { Outcome } from '../../Check.js'
import { readUint } from '../../checks/read.js'
import { evaluateCheck, sampleForkChecks, startReads } from '../../checks/registry.js'
import { InputError } from '../../errors.js'
import type { FaultContext } from '../../Fault.js'
import { faults } from '../../faults/registry.js'
import { onTeardown } from '../../lifecycle.js'
import { createForkProbe, inWindow } from '../../probes/fork.js'
import { type RpcProxy, startRpcProxy } from '../../proxy/jsonrpc/proxy.js'
import { cachingReads, coalescingCalls, type Rpc } from '../../targets/rpc.js'
import type { CheckResult } from '../../report/types.js'
import { createResolver, type RunContext, type StepRecord } from '../../scenario/context.js'
import { resolveProtocol, viewOf } from '../../scenario/protocol.js'
import { toArg } from '../../scenario/context.js'
import type { Phase, Scenario, Step } from '../../scenario/types.js'
import { runStep, stepNames } from '../../steps/registry.js'
import { faultSchedule } from '../../steps/fault.js'
import { startAnvil } from '../../targets/anvil.js'
import { startHardhat } from '../../targets/hardhat.js'
import { revertTo, snapshot } from '../../targets/chain.js'
import type { Upstream } from '../../targets/embedded.js'
import { type Fork, type ForkSource, startFork } from '../../targets/fork.js'
import { createPrng, type Prng } from '../../util/prng.js'
import { define, type Lease, type RunInfo, type Session, type Target } from '../target.js'

/** A fork phase's run: its phase and start on the fork probe's clock; checks judge up to now. */
export type ForkRun = { phase: Phase; from: number }

/**
 * A fork made ready for one scenario, with the JSON-RPC fault proxies in front of it (`fork`,
 * `upstream`), and the scenario's PRNG: its faults' stream is forked first, the `fork` proxy's
 * second, and the steps draw from it after that (the order `--seed` replays).
 */
export type ForkInstance = { fork: Fork; proxies: Map<string, RpcProxy>; prng: Prng; faultsPrng: Prng }

/**
 * The fork target: one Anvil fork of the source, booted on first use and shared by the
 * scenarios of a run. Each scenario gets it reset to its snapshot, or — with `isolation: fresh`,
 * `upstreamProxy`, or a fault that needs it (reorgs) — a fresh fork of the same source, stopped
 * after it. With `target.rpcProxy` a JSON-RPC fault proxy named `fork` stands in front of it;
 * with `target.upstreamProxy` the fresh fork reads its upstream through one named `upstream`.
 * Phases run the scenario's steps (the step registry, src/steps/); the stop conditions are
 * looked at after every step; checks judge the fork probe's series (src/probes/fork.ts).
 * With `upstream` (the embedded source) its fork forks that running upstream and leaves it to
 * its owner: `search --workers` runs several such forks of one upstream.
 */
export function forkTarget(options: { source: ForkSource; logDir?: string; warm?: boolean; upstream?: Upstream; cacheReads?: boolean }): Target & { current(): Fork | undefined } {
  const logDir = options.logDir ? { logDir: options.logDir } : {}
  let current: Fork | undefined
  const target = define<Fork, ForkInstance, ForkRun>({
    kind: 'fork',
    async boot(info) {
      const t = performance.now()
      current = await startFork(options.source, { ...logDir, ...(options.warm ? { warm: true } : {}), ...(options.upstream ? { upstream: options.upstream } : {}) })
      info.emit({ type: 'booted', url: current.anvil.url, ms: Math.round(performance.now() - t) })
      return current
    },
    async reset(fork, scenario, info) {
      const fresh = scenario.target.isolation === 'fresh' || scenario.inject.faults.some((f) => faults[f.type as keyof typeof faults]?.needsFreshTarget)
      let instance: Fork = fork
      // A Hardhat engine is a node of its own per scenario, forking the same upstream at the same block.
      if (scenario.target.engine === 'hardhat') instance = await hardhatFork(fork, options.source, logDir, scenario, info.seed)
      else if (fresh) instance = await freshFork(fork, options.source, logDir, scenario, info.seed)
      else await fork.reset()
      return withProxies(instance, fork, scenario, info.seed)
    },
    probe: async (instance, scenario, info) => openSession(instance, scenario, info, options.cacheReads === true),
    stop: async (fork) => {
      current = undefined
      await fork.stop()
    },
  })
  return { ...target, current: () => current }
}

/** A fork already started by the caller (a test, a bench), used as it is for one scenario: not reset, not stopped. */
export function attachedFork(fork: Fork): Target {
  return define<Fork, ForkInstance, ForkRun>({
    kind: 'fork',
    boot: async () => fork,
    reset: async (f, scenario, info) => withProxies(f, f, scenario, info.seed),
    probe: async (instance, scenario, info) => openSession(instance, scenario, info),
    stop: async () => {},
  })
}

/** The scenario's own proxy in front of the fork (`rpcProxy`), closed with the lease; a fresh fork is stopped with it. */
async function withProxies(instance: Fork, shared: Fork, scenario: Scenario, seed: number): Promise<Lease<ForkInstance>> {
  const proxies = new Map(instance.proxies)
  const prng = createPrng(seed).fork(scenario.name)
  const faultsPrng = prng.fork('faults')
  const release = async () => {
    const own = proxies.get('fork')
    if (scenario.target.rpcProxy && own) await own.close()
    if (instance !== shared) await instance.stop()
  }
  try {
    if (scenario.target.rpcProxy) proxies.set('fork', await startRpcProxy({ upstream: instance.anvil.url, prng: prng.fork('proxy'), name: 'fork' }))
  } catch (error) {
    await release()
    throw error
  }
  return { instance: { fork: instance, proxies, prng, faultsPrng }, release }
}

async function openSession({ fork, proxies, prng, faultsPrng }: ForkInstance, scenario: Scenario, info: RunInfo, cacheReads = false): Promise<Session<ForkRun>> {
  const started = performance.now()
  const now = () => Math.round(performance.now() - started)
  const protocol = resolveProtocol(scenario.protocol, fork.source.kind === 'embedded', scenario.file)
  const resolve = createResolver(scenario, fork)
  preflight(scenario, resolve)
  const vault = resolve(protocol.vault, 'protocol.vault')
  // `cacheReads` (search): a read of a state already read is answered again, not sent. Only
  // while every write goes through this session's client: not with a proxy in front of the
  // fork, nor with a keeper process of the scenario's own.
  const own = cacheReads && fork.engine === 'anvil' && !scenario.target.rpcProxy && !scenario.target.upstreamProxy && !usesKeeper(scenario) ? cachingReads(fork.anvil.rpc) : fork.anvil.rpc
  // Reads made in the same tick (the probe's, the views of report.html) share one JSON-RPC batch.
  const reader = coalescingCalls(own)
  const probe = createForkProbe({ rpc: own, reader, protocol, vault, resolve })
  const ctx: RunContext = { scenario, protocol, fork, rpc: own, prng, now, resolve, steps: probe.series.steps, probe, proxies }
  const faultCtx: FaultContext = {
    rpc: ctx.rpc,
    prng: faultsPrng,
    resolve,
    now,
    rpcProxy: (name) => {
      const proxy = proxies.get(name)
      if (!proxy)
        throw new InputError(`${scenario.file}: no JSON-RPC fault proxy named \`${name}\` in this scenario.`, {
          context: { Known: [...proxies.keys()].join(', ') || 'none' },
          hint: '`target: { rpcProxy: true }` adds `fork`; `target: { upstreamProxy: true }` adds `upstream`.',
        })
      return proxy
    },
  }
  // For report.html: the protocol's views at each phase boundary. Those before the baseline are
  // read now, beside the start reads (nothing runs on the chain between here and the baseline).
  const views: Record<string, Record<string, string>> = {}
  const [, beforeBaseline] = await Promise.all([probe.readStart(startReads(ctx, [...scenario.checks, ...scenario.stop])), readState(ctx, reader, vault)])
  const window = (run: ForkRun) => ({ phase: run.phase, from: run.from, to: probe.now() })
  // `always` checks are judged after every step too; the first step after which one broke, by phase and check.
  const brokeAt = new Map<string, { where: string; label: string | undefined; observed: string }>()
  const judgeAlways = async (run: ForkRun, where: string) => {
    const specs = scenario.checks.filter((c) => c.always && (!c.phases || c.phases.includes(run.phase)) && !brokeAt.has(`${run.phase}:${c.name}`))
    if (specs.length === 0) return
    const w = window(run)
    await sampleForkChecks(ctx, probe, specs, w)
    const last = inWindow(probe.series, w).at(-1)?.label
    for (const spec of specs) {
      const outcome = evaluateCheck(spec, probe.series, w)
      if (!outcome.ok) brokeAt.set(`${run.phase}:${spec.name}`, { where, label: last, observed: outcome.observed })
    }
  }

  return {
    faults: faultCtx,
    now,
    async act(phase, io) {
      const steps = phase === 'baseline' ? scenario.baseline.steps : phase === 'inject' ? scenario.inject.steps : scenario.recover.steps
      if (phase === 'baseline') views['before baseline'] = beforeBaseline
      const run: ForkRun = { phase, from: probe.now() }
      // Faults the phase's `fault` steps apply: reverted by the phase's end on every way out of it.
      const schedule = faultSchedule({ phase, apply: io.apply, now, steps: () => ctx.steps, file: scenario.file })
      let at = -1
      try {
        for (const [i, step] of steps.entries()) {
          at = i
          await runStep(ctx, step, {
            phase,
            where: `${phase}.steps[${i}]`,
            record: (r) => probe.record(r),
            beforeStep: async () => {
              for (const fault of io.active) await fault.beforeStep()
            },
            stopCheck: () => io.guard(run),
            progress: (done, total) => info.emit({ type: 'progress', scenario: scenario.name, done, total }),
            faults: schedule,
          })
          at = -1
          await judgeAlways(run, `${phase}.steps[${i}]`)
          await io.guard(run)
        }
      } catch (error) {
        await schedule.close('error', at >= 0 ? at : undefined).catch(() => {})
        throw error
      }
      await schedule.close('phase end')
      if (phase === 'recover') views['after recover'] = await readState(ctx, reader, vault)
      return run
    },
    async check(specs, phase, run) {
      const w = window(run)
      await sampleForkChecks(ctx, probe, specs, w)
      return specs.map((spec) => {
        const outcome = outcomeOf(evaluateCheck(spec, probe.series, w))
        const broke = spec.always ? brokeAt.get(`${phase}:${spec.name}`) : undefined
        // Broken after a step and restored by the phase's end is still broken: the report names the step.
        if (broke) return { name: spec.name, kind: spec.kind, phase, ...outcome, ok: false, observed: `first broke after ${broke.where}${broke.label ? ` (${broke.label})` : ''}: ${broke.observed}; at the phase's end: ${outcome.observed}` }
        return { name: spec.name, kind: spec.kind, phase, ...outcome }
      })
    },
    extras: (phase, run) => expectations(inWindow(probe.series, window(run)), phase),
    beforeInject: async () => (views['before inject'] = await readState(ctx, reader, vault)),
    async observe(run, before) {
      views['after inject'] = await readState(ctx, reader, vault)
      return {
        steps: inWindow(probe.series, window(run)).map((s) => ({ label: s.label, ok: s.ok, ...(s.reason ? { reason: s.reason } : {}), ...(s.signals ? { signals: s.signals } : {}) })),
        viewsBefore: before as Record<string, string>,
        viewsAfter: views['after inject'],
      }
    },
    again: (attempt) => attempt < scenario.recover.attempts,
    rereadsUnread: true,
    async explain() {
      // A connection error may arrive before the process's exit is seen: give it a moment.
      for (let i = 0; i < 40 && !fork.anvil.exitInfo(); i++) await new Promise((r) => setTimeout(r, 50))
      const exit = fork.anvil.exitInfo()
      if (!exit) return undefined
      // The target process died under the experiment: say why, from its own last words.
      const plain = exit.lastOutput.replace(/\x1b\[[0-9;]*m/g, '')
      const why = /Message:\s*(.*)/.exec(plain)?.[1] ?? plain.trim().split('\n').at(-1) ?? ''
      return { verdict: 'error', reason: `the fork's ${fork.engine === 'hardhat' ? 'Hardhat node' : 'Anvil'} exited mid-experiment (code ${exit.code ?? 'signal'}): ${why.slice(0, 400)} (log: ${fork.anvil.logFile})` }
    },
    report: () => ({
      cycles: countCycles(ctx.steps),
      load: ctx.steps.flatMap((s) => (s.load ? [{ label: s.label, phase: s.phase, ...s.load }] : [])),
      proxies: Object.fromEntries([...proxies].map(([name, p]) => [name, p.stats()])),
      timeline: { steps: stepTimeline(ctx.steps), views },
    }),
    close: async () => {},
  }
}

/** Whether a phase of the scenario runs a `keeper` step (a keeper process of its own, writing to the fork). */
function usesKeeper(scenario: Scenario): boolean {
  return [scenario.baseline.steps, scenario.inject.steps, scenario.recover.steps].some((steps) => steps.some((step) => 'keeper' in step))
}

/** A check's outcome as a report row holds it (measured numbers are the devnet's, not a row's). */
function outcomeOf({ metrics: _metrics, ...outcome }: Outcome): Omit<Outcome, 'metrics'> {
  return outcome
}

/** Steps with `expect` become checks of their own: a deposit that must revert, a cycle that must succeed. */
function expectations(steps: StepRecord[], phase: Phase): CheckResult[] {
  return steps
    .filter((s) => s.expect && s.expect !== 'any')
    .map((s) => {
      const wantRevert = s.expect === 'revert'
      const ok = wantRevert ? !s.ok && (!s.expectReason || (s.reason ?? '').includes(s.expectReason)) : s.ok
      return {
        name: `step ${s.label}`,
        kind: s.expectKind ?? (wantRevert ? 'safety' : 'liveness'),
        phase,
        ok,
        observed: s.ok ? 'succeeded' : `reverted: ${s.reason ?? 'no reason'}`,
        expected: wantRevert ? `reverts${s.expectReason ? ` with "${s.expectReason}"` : ''}` : 'succeeds',
      }
    })
}

/** The protocol's state views (`protocol.state`), read together through `reader` (one batch); a view that reverts reads `reverts`. */
async function readState(ctx: RunContext, reader: Rpc, vault: Address): Promise<Record<string, string>> {
  const read = (ctx.protocol.state ?? []).map(async (view, i) => {
    const v = viewOf(view)
    try {
      return [v.key, String(await readUint(reader, vault, v.fn, v.args.map((a, j) => toArg(a, ctx.resolve, `protocol.state[${i}].args[${j}]`))))] as const
    } catch {
      // A view that reverts under a fault is itself an observation, not an error.
      return [v.key, 'reverts'] as const
    }
  })
  return Object.fromEntries(await Promise.all(read))
}

/** At most this many steps go into a report's step timeline: every failed one first, the rest evenly spaced. */
const MAX_TIMELINE_STEPS = 2_000

/** The step timeline of report.html: each step's index, phase, time (fork probe clock, ms), outcome, reason and signals. */
function stepTimeline(steps: StepRecord[]) {
  const rows = steps.map((s, i) => ({
    i,
    phase: s.phase,
    t: Math.round(s.t),
    type: s.type,
    label: s.label.slice(0, 200),
    ok: s.ok,
    ...(s.reason ? { reason: s.reason.slice(0, 300) } : {}),
    ...(s.signals?.length ? { signals: s.signals.slice(0, 8) } : {}),
    // A stress cycle's walks, and the share price after it and the bounty it paid (wei, decimal strings): the stress chart.
    ...(s.walk ? { walk: s.walk } : {}),
    ...(s.type === 'cycle' && s.after?.sharePrice !== undefined ? { sharePrice: String(s.after.sharePrice) } : {}),
    ...(s.type === 'cycle' && s.ok ? { bounty: String((s.bounties ?? []).reduce((a, b) => a + b, 0n)) } : {}),
  }))
  if (rows.length <= MAX_TIMELINE_STEPS) return rows
  const failed = rows.filter((r) => !r.ok).slice(0, MAX_TIMELINE_STEPS / 2)
  const every = Math.ceil(rows.length / (MAX_TIMELINE_STEPS - failed.length))
  const kept = new Set([...failed.map((r) => r.i), ...rows.filter((r) => r.i % every === 0).map((r) => r.i)])
  return rows.filter((r) => kept.has(r.i))
}

function countCycles(steps: StepRecord[]) {
  const out = { baseline: { total: 0, reverted: 0 }, inject: { total: 0, reverted: 0 }, recover: { total: 0, reverted: 0 } }
  for (const s of steps) {
    if (s.type !== 'cycle') continue
    out[s.phase].total++
    if (!s.ok) out[s.phase].reverted++
  }
  return out
}

/** Every name a scenario uses resolves before anything is applied: nothing half-applied. */
function preflight(scenario: Scenario, resolve: (n: string, f: string) => Address) {
  const proxies = [...(scenario.target.rpcProxy ? ['fork'] : []), ...(scenario.target.upstreamProxy ? ['upstream'] : [])]
  scenario.inject.faults.forEach((f, i) => {
    if (f.type.startsWith('rpc.')) {
      // rpc.* faults target a JSON-RPC fault proxy by name, not a contract.
      const name = String(f.target ?? 'fork')
      if (!proxies.includes(name))
        throw new InputError(`${scenario.file}: \`inject.faults[${i}].target\` names the proxy \`${name}\`, which this scenario does not have.`, {
          context: { File: scenario.file, Field: `inject.faults[${i}].target`, Proxies: proxies.join(', ') || 'none' },
          hint: '`target: { rpcProxy: true }` adds `fork`; `target: { upstreamProxy: true }` adds `upstream`.',
        })
    } else if (f.target !== undefined) resolve(String(f.target), `inject.faults[${i}].target`)
    const token = f.params?.token
    if (typeof token === 'string') resolve(token, `inject.faults[${i}].params.token`)
  })
  const phases: [string, Step[]][] = [
    ['baseline', scenario.baseline.steps],
    ['inject', scenario.inject.steps],
    ['recover', scenario.recover.steps],
  ]
  for (const [phase, steps] of phases) {
    steps.forEach((step, i) => {
      for (const [name, field] of stepNames(step, `${phase}.steps[${i}]`)) resolve(name, field)
    })
  }
}

/**
 * A second fork of the same source; for the embedded chain it forks the running upstream. With
 * `target.upstreamProxy` the fork reads its upstream through a JSON-RPC fault proxy named
 * `upstream`, with the scenario's Anvil flags (retries, timeout, compute units per second).
 * Built as a fork of its own (not by copying the shared one's fields).
 */
async function freshFork(fork: Fork, source: ForkSource, logDir: { logDir?: string }, scenario: Scenario, seed: number): Promise<Fork> {
  const upstreamUrl = fork.upstream?.instance.url ?? (source.kind === 'url' ? source.url : undefined)
  if (!upstreamUrl) return startFork(source, logDir)
  const proxies = new Map<string, RpcProxy>()
  const undo: (() => Promise<void>)[] = []
  const undoAll = async () => {
    for (const u of undo.splice(0).reverse()) await u()
  }
  try {
    let forkUrl = upstreamUrl
    if (scenario.target.upstreamProxy) {
      const proxy = await startRpcProxy({ upstream: upstreamUrl, prng: createPrng(seed).fork(`${scenario.name}.upstream`), name: 'upstream' })
      undo.push(() => proxy.close())
      proxies.set('upstream', proxy)
      forkUrl = proxy.url
    }
    const flags = scenario.target.anvil
    const forkBlockNumber = fork.upstream?.headBlock ?? (source.kind === 'url' ? source.blockNumber : undefined)
    const anvil = await startAnvil({
      label: 'fork-fresh',
      forkUrl,
      ...(forkBlockNumber !== undefined ? { forkBlockNumber } : {}),
      ...(flags.retries !== undefined ? { forkRetries: flags.retries } : {}),
      ...(flags.timeoutMs !== undefined ? { forkTimeoutMs: flags.timeoutMs } : {}),
      ...(flags.computeUnitsPerSecond !== undefined ? { computeUnitsPerSecond: flags.computeUnitsPerSecond } : {}),
      extraArgs: ['--auto-impersonate'],
      ...logDir,
    })
    undo.push(() => anvil.stop())
    const unregister = onTeardown('fresh fork', undoAll)
    return await leased(fork, anvil, 'anvil', proxies, async () => {
      unregister()
      await undoAll()
    })
  } catch (error) {
    await undoAll()
    throw error
  }
}

/** A scenario's own fork on `node`: the shared fork's book and accounts, reset to a snapshot taken now, stopped by `stop`. */
async function leased(fork: Fork, node: Fork['anvil'], engine: Fork['engine'], proxies: Fork['proxies'], stop: () => Promise<void>): Promise<Fork> {
  let snap = await snapshot(node.rpc)
  return {
    anvil: node,
    engine,
    upstream: fork.upstream,
    source: fork.source,
    book: fork.book,
    accounts: fork.accounts,
    proxies,
    async reset() {
      await revertTo(node.rpc, snap)
      snap = await snapshot(node.rpc)
    },
    stop,
  }
}

/**
 * A Hardhat node (EDR) forking what the shared fork forks: the embedded upstream chain at its
 * head block, or the user's URL at the pinned block; with `target.upstreamProxy`, through a
 * JSON-RPC fault proxy named `upstream`, as a fresh Anvil fork does. Stopped with the scenario's
 * lease, and by the teardown registry on error, Ctrl-C and SIGTERM.
 */
async function hardhatFork(fork: Fork, source: ForkSource, logDir: { logDir?: string }, scenario: Scenario, seed: number): Promise<Fork> {
  const upstreamUrl = fork.upstream?.instance.url ?? (source.kind === 'url' ? source.url : undefined)
  // The loader's and the suite's refusals make this unreachable; kept as a clear error, not a crash.
  if (!upstreamUrl) throw new InputError('`target.engine: hardhat` forks an RPC URL: the embedded chain (default) or `--fork-url`, not a state dump (`--state` is Anvil\'s own format).')
  const forkBlockNumber = fork.upstream?.headBlock ?? (source.kind === 'url' ? source.blockNumber : undefined)
  const chainId = Number(await fork.anvil.rpc.request<string>('eth_chainId'))
  const proxies = new Map<string, RpcProxy>()
  const proxy = scenario.target.upstreamProxy ? await startRpcProxy({ upstream: upstreamUrl, prng: createPrng(seed).fork(`${scenario.name}.upstream`), name: 'upstream' }) : undefined
  if (proxy) proxies.set('upstream', proxy)
  let node: Awaited<ReturnType<typeof startHardhat>> | undefined
  const stopAll = async () => {
    await node?.stop()
    await proxy?.close()
  }
  const unregister = onTeardown('hardhat fork', stopAll)
  try {
    node = await startHardhat({ label: 'fork-hardhat', forkUrl: proxy?.url ?? upstreamUrl, chainId, ...(forkBlockNumber !== undefined ? { forkBlockNumber } : {}), ...logDir })
    return await leased(fork, node, 'hardhat', proxies, async () => {
      unregister()
      await stopAll()
    })
  } catch (error) {
    unregister()
    await stopAll()
    throw error
  }
}
