import { rereadPrefix, unreadPrefix } from '../checks/registry.js'
import { InputError } from '../errors.js'
import { type ActiveFault, applyFault } from '../Fault.js'
import { faults } from '../faults/registry.js'
import { type CheckResult, type FaultRecord, type FaultWindow, type ScenarioReport, scenarioReport, type Verdict } from '../report/types.js'
import type { FaultSpec, Phase, Scenario } from '../scenario/types.js'
import type { RunEvent } from './events.js'
import type { RunInfo, Session, Target } from './target.js'
import { baselineVerdict, decideVerdict, verdictOfError } from './verdict.js'

export type { RunEvent } from './events.js'

export type RunOptions = { seed: number; replay: string; onEvent?: (event: RunEvent) => void }

/** A stop condition tripped: the faults are reverted at once and the verdict is `aborted`. */
class Abort extends Error {}

const noCycles = () => ({ baseline: { total: 0, reverted: 0 }, inject: { total: 0, reverted: 0 }, recover: { total: 0, reverted: 0 } })

/**
 * Runs one scenario on a target, the same way on every target: baseline → inject (faults
 * apply) → recover (faults revert; the recover phase runs again while checks are broken and the
 * target allows) → verdict. Owned here, once: the baseline rule, the stop conditions (a tripped
 * one reverts every fault at once: `aborted`), the fault records, the observations each fault's
 * `detect` gets, MTTR (faults reverted → every check back, when liveness broke during inject),
 * the verdict rules and the report. Faults are reverted on every way out; what the target
 * started for the scenario is released after it. Bad input (`InputError`) is rethrown (exit 2).
 */
export async function run(scenario: Scenario, target: Target, options: RunOptions): Promise<ScenarioReport & Record<string, unknown>> {
  const started = performance.now()
  const emit = options.onEvent ?? (() => {})
  const info: RunInfo = { seed: options.seed, replay: options.replay, emit }
  const results: CheckResult[] = []
  const records: FaultRecord[] = []
  const active: ActiveFault[] = []
  let opened: { session: Session<unknown>; release(): Promise<void> } | undefined
  let mttrMs: number | null = null
  let recovered = true
  let aborted: string | undefined

  const report = (verdict: Verdict, reason: string): ScenarioReport & Record<string, unknown> => {
    const { cycles, load, proxies, ...extra } = opened?.session.report() ?? { cycles: noCycles(), load: [], proxies: {} }
    // A fault a step applied and reverted outside revertAll (a revert step, its phase's end): its stop time and evidence.
    for (const [i, record] of records.entries()) {
      if (!record.window) continue
      record.tStop ??= active[i]?.tStop ?? null
      record.evidence ??= (record.window as { evidence?: FaultRecord['evidence'] }).evidence ?? null
    }
    return {
      ...scenarioReport(scenario, { verdict, reason, faults: records, checks: results, mttrMs, durationMs: Math.round(performance.now() - started), cycles, load, proxies, seed: options.seed, replay: options.replay }),
      ...extra,
    }
  }
  const revertAll = async () => {
    // Last applied, first reverted: faults on the same contract unwind in order.
    // A fault the target reverted itself (a soak's) is only recorded.
    for (let i = active.length - 1; i >= 0; i--) {
      const fault = active[i] as ActiveFault
      if (fault.tStop === null) {
        emit({ type: 'fault', scenario: scenario.name, fault: fault.type, action: 'revert' })
        await fault.revert()
      }
      ;(records[i] as FaultRecord).tStop = fault.tStop
    }
  }

  try {
    opened = await target.open(scenario, info)
    const session = opened.session
    const apply = async (spec: FaultSpec, where: string, window?: FaultWindow) => {
      emit({ type: 'fault', scenario: scenario.name, fault: spec.type, action: 'apply' })
      const fault = await applyFault(faults[spec.type as keyof typeof faults], session.faults, { target: spec.target === undefined ? undefined : String(spec.target), params: spec.params ?? {}, ...parsedOf(spec) }, where)
      active.push(fault)
      records.push({ type: fault.type, target: fault.target, params: fault.params, tStart: fault.tStart, tStop: null, evidence: null, ...(window ? { window } : {}) })
      return fault
    }
    const guard = async (phase: Phase, run: unknown) => {
      const specs = scenario.stop.filter((s) => !s.phases || s.phases.includes(phase))
      if (specs.length === 0) return
      const tripped = (await session.check(specs, phase, run, 'stop')).find((r) => !r.ok)
      if (!tripped) return
      results.push(tripped)
      throw new Abort(`stop condition \`${tripped.name}\` tripped in ${phase}: ${tripped.observed} (expected ${tripped.expected})`)
    }
    const phaseRun = (phase: Phase, revertedAt?: number) => session.act(phase, { guard: (r) => guard(phase, r), apply, active, ...(revertedAt !== undefined ? { revertedAt } : {}) })
    const judge = async (phase: Phase, run: unknown) => [
      ...(session.extras?.(phase, run) ?? []),
      ...(await session.check(scenario.checks.filter((s) => !s.phases || s.phases.includes(phase)), phase, run, 'check')),
    ]

    // Baseline: the steady state must hold before anything is broken, or there is nothing to learn.
    emit({ type: 'phase', scenario: scenario.name, phase: 'baseline' })
    const baseline = await judge('baseline', await phaseRun('baseline'))
    results.push(...baseline)
    const broken = baselineVerdict(baseline)
    if (broken) return report(broken.verdict, broken.reason)

    // Inject: the listed faults apply, then the phase runs (steps, a wait, or a soak drawing faults).
    emit({ type: 'phase', scenario: scenario.name, phase: 'inject' })
    const before = await session.beforeInject?.()
    for (const [i, spec] of scenario.inject.faults.entries()) await apply(spec, `${scenario.file}: inject.faults[${i}]`)
    const inject = await phaseRun('inject')
    const observations = await session.observe(inject, before)
    for (const [i, fault] of active.entries())
      (records[i] as FaultRecord).evidence = await fault.detect(observations).catch((e: Error) => ({ took: `detect failed: ${e.message}`, seen: null }))
    const injectResults = await judge('inject', inject)
    results.push(...injectResults)

    // Recover: revert every fault, then run the recover phase until the checks hold again.
    emit({ type: 'phase', scenario: scenario.name, phase: 'revert' })
    await revertAll()
    if (session.rereadsUnread) await reread(scenario, session, inject, injectResults)
    const revertedAt = session.now()
    emit({ type: 'phase', scenario: scenario.name, phase: 'recover' })
    let recoverResults: CheckResult[] = []
    for (let attempt = 1; ; attempt++) {
      recoverResults = await judge('recover', await phaseRun('recover', revertedAt))
      if (recoverResults.every((r) => r.ok) || !session.again(attempt)) break
    }
    results.push(...recoverResults)
    recovered = recoverResults.every((r) => r.ok)
    if (recovered && injectResults.some((r) => !r.ok && r.kind === 'liveness')) mttrMs = session.now() - revertedAt
  } catch (error) {
    await revertAll().catch(() => {})
    if (error instanceof Abort) aborted = error.message
    else if (error instanceof InputError) throw error
    else {
      const { verdict, reason } = (await opened?.session.explain?.(error)) ?? verdictOfError(error)
      return report(verdict, reason)
    }
  } finally {
    await opened?.session.close()
    await opened?.release()
  }
  const { verdict, reason } = decideVerdict(results, { recovered, aborted })
  return report(verdict, reason)
}

/**
 * The inject checks that could not be read under the faults (their view calls the faulted
 * dependency: `sharePrice()` reads the TWAP), read again now that every fault is reverted and
 * before any recover step, so on the state the inject phase left; each result is replaced in
 * place by that judgement, saying so. One that still cannot be read stays failed. `always`
 * checks are not read again: each of their step-by-step judgements stands as it was.
 */
async function reread(scenario: Scenario, session: Session<unknown>, run: unknown, results: CheckResult[]): Promise<void> {
  const unread = results.filter((r) => !r.ok && r.observed.startsWith(unreadPrefix))
  const specs = scenario.checks.filter((s) => !s.always && unread.some((r) => r.name === s.name))
  if (specs.length === 0) return
  for (const again of await session.check(specs, 'inject', run, 'check')) {
    const first = unread.find((r) => r.name === again.name)
    if (first) Object.assign(first, { ok: again.ok, observed: `${rereadPrefix} (${first.observed}); read once the faults were reverted: ${again.observed}` })
  }
}

/** Params the loader already parsed (`parsed`), when the spec carries them. */
function parsedOf(spec: FaultSpec): { parsed?: unknown } {
  const parsed = (spec as { parsed?: unknown }).parsed
  return parsed === undefined ? {} : { parsed }
}
