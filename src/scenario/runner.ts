import { type Address, formatGwei, type Hex, parseGwei } from 'viem'
import { checks } from '../checks/registry.js'
import { decodeReason, readUint } from '../checks/read.js'
import type { Outcome } from '../checks/types.js'
import { InputError } from '../errors.js'
import { type ActiveFault, applyFault, type FaultContext } from '../Fault.js'
import { faults } from '../faults/registry.js'
import { findStorageField, readField, writeField } from '../faults/slots.js'
import { calldata } from '../faults/views.js'
import { type PairShift, shiftPairToken1 } from '../faults/pairs.js'
import { type CheckResult, type FaultRecord, type ScenarioReport, scenarioReport, type Verdict } from '../report/types.js'
import { increaseTime, mine, type Receipt, sendTransaction } from '../targets/chain.js'
import type { Fork } from '../targets/fork.js'
import { RpcError } from '../targets/rpc.js'
import { createPrng } from '../util/prng.js'
import { createResolver, type RunContext, type StepRecord, signalMatcher, toArg } from './context.js'
import { resolveProtocol, withReturns } from './protocol.js'
import type { CheckSpec, Phase, Scenario, Step } from './types.js'
import { userApi } from './user-api.js'
import { keeperDefaults } from '../keeper/keeper.js'
import { spawnKeeper } from '../keeper/spawn.js'
import { type RpcProxy, startRpcProxy } from '../proxy/jsonrpc/proxy.js'
import { parseDurationMs } from '../util/duration.js'
import { loadUserModule } from './user-module.js'
import { decideVerdict, verdictOfError } from './verdict.js'

export type RunEvent =
  | { type: 'phase'; scenario: string; phase: Phase | 'revert' }
  | { type: 'fault'; scenario: string; fault: string; action: 'apply' | 'revert' }
  | { type: 'progress'; scenario: string; done: number; total: number }

export type RunOptions = { seed: number; replay: string; onEvent?: (event: RunEvent) => void }

const KEEPER_GAS = 3_000_000n

class Abort extends Error {}

/**
 * Runs one scenario on a fork: baseline → inject (faults apply) → recover (faults revert) →
 * verdict. The fork must already be isolated (reset or fresh). Faults are reverted on every
 * way out of this function.
 */
export async function runScenario(scenario: Scenario, fork: Fork, options: RunOptions): Promise<ScenarioReport> {
  const started = performance.now()
  const now = () => Math.round(performance.now() - started)
  const prng = createPrng(options.seed).fork(scenario.name)
  const emit = options.onEvent ?? (() => {})
  const protocol = resolveProtocol(scenario.protocol, fork.source.kind === 'embedded', scenario.file)
  const resolve = createResolver(scenario, fork)
  preflight(scenario, resolve)
  const vault = resolve(protocol.vault, 'protocol.vault')
  const matchSignals = signalMatcher(protocol.signals ?? [])
  const ctx: RunContext = {
    scenario,
    protocol,
    fork,
    rpc: fork.anvil.rpc,
    prng,
    now,
    resolve,
    steps: [],
    baseline: {},
    signalsIn: (receipt) => matchSignals(receipt, vault),
    proxies: new Map(fork.proxies),
  }
  const faultCtx: FaultContext = {
    rpc: ctx.rpc,
    prng: prng.fork('faults'),
    resolve,
    now,
    rpcProxy: (name) => {
      const proxy = ctx.proxies.get(name)
      if (!proxy)
        throw new InputError(`${scenario.file}: no JSON-RPC fault proxy named \`${name}\` in this scenario.`, {
          context: { Known: [...ctx.proxies.keys()].join(', ') || 'none' },
          hint: '`target: { rpcProxy: true }` adds `fork`; `target: { upstreamProxy: true }` adds `upstream`.',
        })
      return proxy
    },
  }
  if (scenario.target.rpcProxy) {
    const proxy = await startRpcProxy({ upstream: fork.anvil.url, prng: prng.fork('proxy'), name: 'fork' })
    ctx.proxies.set('fork', proxy)
  }
  const results: CheckResult[] = []
  const active: ActiveFault[] = []
  const records: FaultRecord[] = []
  let aborted: string | undefined
  let mttrMs: number | null = null
  let recovered = true

  const report = (verdict: Verdict, reason: string): ScenarioReport =>
    scenarioReport(scenario, {
      verdict,
      reason,
      faults: records,
      checks: results,
      mttrMs,
      durationMs: now(),
      cycles: countCycles(ctx.steps),
      load: ctx.steps.flatMap((s) => (s.load ? [{ label: s.label, phase: s.phase, ...s.load }] : [])),
      proxies: Object.fromEntries([...ctx.proxies].map(([name, p]) => [name, p.stats()])),
      seed: options.seed,
      replay: options.replay,
    })

  try {
    for (const view of [protocol.sharePrice, ...(protocol.state ?? [])]) {
      if (view) ctx.baseline[withReturns(view)] = await readUint(ctx.rpc, vault, withReturns(view))
    }
    const stopCheck = async (phase: Phase, steps: StepRecord[]) => {
      for (const spec of scenario.stop) {
        if (spec.phases && !spec.phases.includes(phase)) continue
        const outcome = await evaluate(ctx, spec, phase, steps)
        if (!outcome.ok) {
          results.push({ name: spec.name, kind: spec.kind, phase, ...outcome })
          throw new Abort(`stop condition \`${spec.name}\` tripped in ${phase}: ${outcome.observed} (expected ${outcome.expected})`)
        }
      }
    }
    const runPhase = async (phase: Phase, steps: Step[]) => {
      emit({ type: 'phase', scenario: scenario.name, phase })
      const phaseSteps: StepRecord[] = []
      for (const [i, step] of steps.entries()) {
        await runStep(ctx, step, phase, `${phase}.steps[${i}]`, active, phaseSteps, async () => stopCheck(phase, phaseSteps), emit)
        await stopCheck(phase, phaseSteps)
      }
      return phaseSteps
    }
    const evaluatePhase = async (phase: Phase, steps: StepRecord[]) => {
      const out: CheckResult[] = [...expectations(steps, phase)]
      for (const spec of scenario.checks) {
        if (spec.phases && !spec.phases.includes(phase)) continue
        out.push({ name: spec.name, kind: spec.kind, phase, ...(await evaluate(ctx, spec, phase, steps)) })
      }
      return out
    }

    // Baseline: the steady state must hold before anything is broken, or there is nothing to learn.
    const baselineSteps = await runPhase('baseline', scenario.baseline.steps)
    const baselineResults = await evaluatePhase('baseline', baselineSteps)
    results.push(...baselineResults)
    const brokenAtBaseline = baselineResults.filter((r) => !r.ok)
    if (brokenAtBaseline.length > 0) {
      const safety = brokenAtBaseline.find((r) => r.kind === 'safety')
      if (safety) return report('failed', `safety check \`${safety.name}\` broke at baseline, before any fault: ${safety.observed}`)
      return report('aborted', `steady state did not hold at baseline (\`${brokenAtBaseline[0]?.name}\`): no fault injected`)
    }

    // Inject.
    const viewsBefore = await readState(ctx, vault)
    for (const [i, spec] of scenario.inject.faults.entries()) {
      emit({ type: 'fault', scenario: scenario.name, fault: spec.type, action: 'apply' })
      const fault = await applyFault(faults[spec.type as keyof typeof faults], faultCtx, { target: spec.target === undefined ? undefined : String(spec.target), params: spec.params ?? {} }, `${scenario.file}: inject.faults[${i}]`)
      active.push(fault)
      records.push({ type: fault.type, target: fault.target, params: fault.params, tStart: fault.tStart, tStop: null, evidence: null })
    }
    const injectSteps = await runPhase('inject', scenario.inject.steps)
    const observations = {
      steps: injectSteps.map((s) => ({ label: s.label, ok: s.ok, ...(s.reason ? { reason: s.reason } : {}), ...(s.signals ? { signals: s.signals } : {}) })),
      viewsBefore,
      viewsAfter: await readState(ctx, vault),
    }
    for (const [i, fault] of active.entries()) (records[i] as FaultRecord).evidence = await fault.detect(observations)
    const injectResults = await evaluatePhase('inject', injectSteps)
    results.push(...injectResults)

    // Recover: revert every fault, then run the recover steps until the checks hold again.
    emit({ type: 'phase', scenario: scenario.name, phase: 'revert' })
    await revertAll(active, records, emit, scenario.name)
    const tRevert = now()
    let recoverResults: CheckResult[] = []
    for (let attempt = 1; attempt <= scenario.recover.attempts; attempt++) {
      const steps = await runPhase('recover', scenario.recover.steps)
      recoverResults = await evaluatePhase('recover', steps)
      if (recoverResults.every((r) => r.ok)) break
    }
    results.push(...recoverResults)
    recovered = recoverResults.every((r) => r.ok)
    if (recovered && injectResults.some((r) => !r.ok && r.kind === 'liveness')) mttrMs = now() - tRevert
  } catch (error) {
    await revertAll(active, records, emit, scenario.name)
    if (error instanceof Abort) aborted = error.message
    else if (error instanceof InputError) throw error
    else {
      // A connection error may arrive before the process's exit is seen: give it a moment.
      for (let i = 0; i < 40 && !fork.anvil.exitInfo(); i++) await new Promise((r) => setTimeout(r, 50))
      const exit = fork.anvil.exitInfo()
      if (exit) {
        // The target process died under the experiment: say why, from its own last words.
        const plain = exit.lastOutput.replace(/\x1b\[[0-9;]*m/g, '')
        const why = /Message:\s*(.*)/.exec(plain)?.[1] ?? plain.trim().split('\n').at(-1) ?? ''
        return report('error', `the fork's Anvil exited mid-experiment (code ${exit.code ?? 'signal'}): ${why.slice(0, 400)} (log: ${fork.anvil.logFile})`)
      }
      const { verdict, reason } = verdictOfError(error)
      return report(verdict, reason)
    }
  }
  finally {
    const own = ctx.proxies.get('fork')
    if (scenario.target.rpcProxy && own) {
      ctx.proxies.delete('fork')
      await own.close()
      ctx.proxies.set('fork', own)
    }
  }
  const { verdict, reason } = decideVerdict(results, { recovered, aborted })
  return report(verdict, reason)
}

/** Reverts every fault still active, last applied first, and records each `tStop`. */
export async function revertAll(active: ActiveFault[], records: FaultRecord[], emit: (e: RunEvent) => void = () => {}, scenario = '') {
  // Last applied, first reverted: faults on the same contract unwind in order.
  for (let i = active.length - 1; i >= 0; i--) {
    const fault = active[i] as ActiveFault
    if (fault.tStop !== null) continue
    emit({ type: 'fault', scenario, fault: fault.type, action: 'revert' })
    await fault.revert()
    ;(records[i] as FaultRecord).tStop = fault.tStop
  }
}

async function evaluate(ctx: RunContext, spec: CheckSpec, phase: Phase, steps: StepRecord[]): Promise<Outcome> {
  const key = (Object.keys(checks) as (keyof typeof checks)[]).find((k) => spec[k] !== undefined)
  if (!key) throw new InputError(`${ctx.scenario.file}: check \`${spec.name}\` names no check kind.`)
  try {
    // biome-ignore lint/suspicious/noExplicitAny: the key picks the matching body
    return await (checks[key] as any)(ctx, spec[key], { name: phase, steps })
  } catch (error) {
    if (error instanceof InputError) throw error
    return { ok: false, observed: `the check could not be evaluated: ${(error as Error).message}`, expected: spec.name }
  }
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

async function readState(ctx: RunContext, vault: Address): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const view of ctx.protocol.state ?? []) {
    try {
      out[view.split(' ')[0] as string] = String(await readUint(ctx.rpc, vault, withReturns(view)))
    } catch {
      // A view that reverts under a fault is itself an observation, not an error.
      out[view.split(' ')[0] as string] = 'reverts'
    }
  }
  return out
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
      const where = `${phase}.steps[${i}]`
      if ('call' in step) {
        resolve(step.call.to, `${where}.call.to`)
        if (step.call.from) resolve(step.call.from, `${where}.call.from`)
      }
      if ('cycle' in step && step.cycle.from) resolve(step.cycle.from, `${where}.cycle.from`)
      if ('stress' in step) {
        if (step.stress.walk?.pair) resolve(step.stress.walk.pair.target, `${where}.stress.walk.pair.target`)
        if (step.stress.walk?.feed) resolve(step.stress.walk.feed.target, `${where}.stress.walk.feed.target`)
      }
    })
  }
}

async function runStep(
  ctx: RunContext,
  step: Step,
  phase: Phase,
  where: string,
  active: ActiveFault[],
  out: StepRecord[],
  stopCheck: () => Promise<void>,
  emit: (e: RunEvent) => void,
) {
  const record = (r: StepRecord) => {
    out.push(r)
    ctx.steps.push(r)
  }
  const before = async () => {
    for (const fault of active) await fault.beforeStep()
  }
  if ('cycle' in step) {
    const c = step.cycle
    const from = ctx.resolve(c.from ?? 'keeper', `${where}.cycle.from`)
    for (let i = 0; i < (c.count ?? 1); i++) {
      await before()
      if ((c.intervalS ?? 12) > 0) await increaseTime(ctx.rpc, c.intervalS ?? 12)
      const gasPrice = c.gasPriceGwei !== undefined ? parseGwei(String(c.gasPriceGwei)) : undefined
      const label = `${c.label ?? `${phase} cycle`}#${ctx.steps.filter((s) => s.type === 'cycle' && s.phase === phase).length + 1}`
      record({ ...(await keeperCall(ctx, from, gasPrice, label, phase)), ...expectOf(c) })
    }
    return
  }
  if ('call' in step) {
    const c = step.call
    await before()
    const to = ctx.resolve(c.to, `${where}.call.to`)
    const from = ctx.resolve(c.from ?? 'deployer', `${where}.call.from`)
    const args = (c.args ?? []).map((a, i) => toArg(a, ctx.resolve, `${where}.call.args[${i}]`))
    const data = calldata(c.fn, args)
    const tx = { from, to, data, gas: KEEPER_GAS, ...(c.value ? { value: toArg(c.value, ctx.resolve, `${where}.call.value`) as bigint } : {}) }
    const label = c.label ?? `${c.to}.${c.fn.split('(')[0]}`
    let receipt: Receipt
    try {
      receipt = await sendTransaction(ctx.rpc, tx)
    } catch (error) {
      if (!(error instanceof RpcError)) throw error
      record({ label, phase, type: 'call', ok: false, reason: `node refused the transaction: ${error.message.slice(0, 300)}`, ...expectOf({ expect: c.expect ?? 'success', ...(c.kind ? { kind: c.kind } : {}), ...(c.reason ? { reason: c.reason } : {}) }) })
      return
    }
    const ok = receipt.status === '0x1'
    record({
      label,
      phase,
      type: 'call',
      ok,
      receipt,
      ...(ok ? {} : { reason: await replayReason(ctx, tx, receipt) }),
      expect: c.expect ?? 'success',
      ...(c.kind ? { expectKind: c.kind } : {}),
      ...(c.reason ? { expectReason: c.reason } : {}),
    })
    return
  }
  if ('mine' in step) {
    await mine(ctx.rpc, step.mine.blocks ?? 1, step.mine.intervalS)
    return
  }
  if ('warp' in step) {
    await increaseTime(ctx.rpc, step.warp.seconds)
    await mine(ctx.rpc, 1)
    return
  }
  if ('stress' in step) return stress(ctx, step.stress, phase, where, record, before, stopCheck, emit)
  if ('keeper' in step) {
    await before()
    const k = step.keeper
    const proxy = ctx.proxies.get('fork') as RpcProxy
    const load = await spawnKeeper({
      ...keeperDefaults,
      rpcUrl: proxy.url,
      to: ctx.resolve(ctx.protocol.vault, 'protocol.vault'),
      from: ctx.resolve(k.from ?? 'keeper', `${where}.keeper.from`),
      data: calldata(ctx.protocol.entry),
      mode: k.mode,
      durationMs: parseDurationMs(k.duration, `${where}.keeper.duration`),
      ...(k.interval !== undefined ? { intervalMs: parseDurationMs(k.interval, `${where}.keeper.interval`) } : {}),
      ...(k.timeout !== undefined ? { timeoutMs: parseDurationMs(k.timeout, `${where}.keeper.timeout`) } : {}),
      ...(k.budgetRatio !== undefined ? { budgetRatio: k.budgetRatio } : {}),
      ...(k.maxAttempts !== undefined ? { maxAttempts: k.maxAttempts } : {}),
      seed: ctx.prng.int(0, 2 ** 31),
    })
    record({ label: k.label ?? `keeper-${k.mode}`, phase, type: 'keeper', ok: load.gaveUp === 0, load })
    return
  }
  if ('module' in step) {
    const run = await loadUserModule<(api: unknown) => Promise<void>>(ctx.scenario, step.module.path, `${where}.module.path`)
    await before()
    await run(await userApi(ctx))
    record({ label: step.module.label ?? step.module.path, phase, type: 'module', ok: true })
  }
}

function expectOf(c: { expect?: StepRecord['expect']; kind?: StepRecord['expectKind']; reason?: string }) {
  return {
    ...(c.expect ? { expect: c.expect } : {}),
    ...(c.kind ? { expectKind: c.kind } : {}),
    ...(c.reason ? { expectReason: c.reason } : {}),
  }
}

/** The views read around every keeper cycle, as one JSON-RPC batch each side. */
function aroundViews(ctx: RunContext, vault: Address) {
  const views: { key: string; to: Address; data: Hex }[] = []
  if (ctx.protocol.bountyCap) views.push({ key: 'bountyCap', to: vault, data: calldata(withReturns(ctx.protocol.bountyCap)) })
  if (ctx.protocol.lender) {
    const lender = ctx.resolve(ctx.protocol.lender.address, 'protocol.lender.address')
    const token = ctx.resolve(ctx.protocol.lender.token, 'protocol.lender.token')
    views.push({ key: 'lenderBalance', to: token, data: calldata('balanceOf(address)', [lender]) })
  }
  for (const view of ctx.protocol.state ?? []) views.push({ key: `state:${view.split(' ')[0]}`, to: vault, data: calldata(withReturns(view)) })
  return views
}

async function readAround(ctx: RunContext, views: { key: string; to: Address; data: Hex }[], extra: { method: string; params?: unknown[] }[] = []) {
  const answers = await ctx.rpc.batch([...extra, ...views.map((v) => ({ method: 'eth_call', params: [{ to: v.to, data: v.data }, 'latest'] }))])
  const out: Record<string, bigint> = {}
  views.forEach((v, i) => {
    const answer = answers[extra.length + i]
    // A view that reverts under a fault is left out; checks that need it say so.
    if (typeof answer === 'string' && answer.length >= 66) out[v.key] = BigInt(answer.slice(0, 66))
  })
  return { out, extra: answers.slice(0, extra.length) }
}

async function keeperCall(ctx: RunContext, from: Address, gasPrice: bigint | undefined, label: string, phase: Phase): Promise<StepRecord> {
  const to = ctx.resolve(ctx.protocol.vault, 'protocol.vault')
  const views = aroundViews(ctx, to)
  const before = await readAround(ctx, views, gasPrice === undefined ? [{ method: 'eth_gasPrice' }] : [])
  // A keeper pays the going price unless told otherwise; a gas spike shows up here.
  const price = gasPrice ?? BigInt(before.extra[0] as Hex)
  const tx = { from, to, data: calldata(ctx.protocol.entry), gas: KEEPER_GAS, gasPrice: price }
  let receipt: Receipt
  try {
    receipt = await sendTransaction(ctx.rpc, tx)
  } catch (error) {
    // The node refused the transaction (e.g. a fork that cannot reach its upstream): the cycle
    // did not happen — a failed step of the system under test, not of the experiment.
    if (!(error instanceof RpcError)) throw error
    return { label, phase, type: 'cycle', ok: false, reason: `node refused the transaction: ${error.message.slice(0, 300)}`, pre: before.out }
  }
  const after = await readAround(ctx, views)
  const ok = receipt.status === '0x1'
  const signals = ctx.signalsIn(receipt)
  return {
    label,
    phase,
    type: 'cycle',
    ok,
    receipt,
    pre: before.out,
    post: after.out,
    ...(signals.length ? { signals } : {}),
    ...(ok ? {} : { reason: await replayReason(ctx, tx, receipt) }),
  }
}

/**
 * Why a mined transaction reverted: replay it with eth_call on the latest state — a reverted
 * transaction changed nothing but the sender's nonce and balance, so that is its pre-state.
 */
async function replayReason(ctx: RunContext, tx: { from: Address; to: Address; data: Hex; gasPrice?: bigint }, receipt: Receipt) {
  try {
    await ctx.rpc.request('eth_call', [{ from: tx.from, to: tx.to, data: tx.data, gas: `0x${KEEPER_GAS.toString(16)}` }, 'latest'])
    return `reverted at gas ${BigInt(receipt.gasUsed)} (no reason on replay; out of gas?) at ${formatGwei(BigInt(receipt.effectiveGasPrice))} gwei`
  } catch (error) {
    return error instanceof RpcError ? decodeReason(error) : (error as Error).message
  }
}

/**
 * Repeated-cycle stress: N keeper cycles with seeded random walks of the pair's price and the
 * feed's answer between them (each walk stays within ±maxBps of where it started, and is
 * undone at the end). Stop conditions are checked every 25 cycles.
 */
async function stress(
  ctx: RunContext,
  s: Extract<Step, { stress: unknown }>['stress'],
  phase: Phase,
  where: string,
  record: (r: StepRecord) => void,
  before: () => Promise<void>,
  stopCheck: () => Promise<void>,
  emit: (e: RunEvent) => void,
) {
  const prng = ctx.prng.fork(`${where}.stress`)
  const from = ctx.resolve(s.from ?? 'keeper', `${where}.stress.from`)
  const feed = s.walk?.feed
  const feedAddress = feed ? ctx.resolve(feed.target, `${where}.stress.walk.feed.target`) : undefined
  const feedField = feedAddress
    ? await findStorageField(ctx.rpc, { to: feedAddress, data: calldata('latestRoundData()'), outputWord: 1, label: 'latestRoundData().answer' })
    : undefined
  const feedStart = feedField ? await readField(ctx.rpc, feedField) : 0n
  const updatedField = feedAddress
    ? await findStorageField(ctx.rpc, { to: feedAddress, data: calldata('latestRoundData()'), outputWord: 3, label: 'latestRoundData().updatedAt' })
    : undefined
  const shifts: PairShift[] = []
  let pairBps = 0
  let feedBps = 0
  const walk = (current: number, w: { stepBps: number; maxBps: number }) =>
    Math.max(-w.maxBps, Math.min(w.maxBps, current + (prng.next() * 2 - 1) * w.stepBps))
  try {
    for (let i = 0; i < s.cycles; i++) {
      await before()
      if ((s.intervalS ?? 12) > 0) await increaseTime(ctx.rpc, s.intervalS ?? 12)
      if (s.walk?.pair) {
        const next = walk(pairBps, s.walk.pair)
        const delta = next - pairBps
        if (Math.abs(delta) >= 0.5) {
          shifts.push(await shiftPairToken1(ctx.rpc, ctx.resolve(s.walk.pair.target, `${where}.stress.walk.pair.target`), Math.abs(delta), delta > 0 ? 'up' : 'down'))
          pairBps = next
        }
      }
      if (feedField && feed && updatedField) {
        feedBps = walk(feedBps, feed)
        await writeField(ctx.rpc, feedField, (feedStart * BigInt(Math.round(10_000 + feedBps) * 100)) / 1_000_000n)
        // An oracle that keeps publishing: the answer moves and stays fresh.
        const ts = BigInt((await ctx.rpc.request<{ timestamp: Hex }>('eth_getBlockByNumber', ['latest', false])).timestamp)
        await writeField(ctx.rpc, updatedField, ts)
      }
      record(await keeperCall(ctx, from, undefined, `stress#${i + 1}`, phase))
      if ((i + 1) % 25 === 0) {
        emit({ type: 'progress', scenario: ctx.scenario.name, done: i + 1, total: s.cycles })
        await stopCheck()
      }
    }
  } finally {
    for (const shift of shifts.reverse()) await shift.undo()
    if (feedField) await writeField(ctx.rpc, feedField, feedStart)
  }
}
