import type { Engine } from '../targets/engine.js'
import type { KeeperStats } from '../keeper/keeper.js'
import type { CheckKind, Phase, Scenario } from '../scenario/types.js'

/** `skipped`: a prerequisite is missing on this machine; neither held nor failed. */
export type Verdict = 'held' | 'degraded' | 'failed' | 'aborted' | 'error' | 'skipped'

/**
 * Best first: CI compares runs by this order. `skipped` has no rank: a scenario that did not
 * run is neither worse nor better than one that did.
 */
export const verdictRank: Record<Exclude<Verdict, 'skipped'>, number> = { held: 0, degraded: 1, aborted: 2, failed: 3, error: 4 }

export type CheckResult = {
  name: string
  kind: CheckKind
  phase: Phase
  ok: boolean
  observed: string
  expected: string
}

export type FaultRecord = {
  type: string
  target: string | undefined
  params: Record<string, unknown>
  /** ms since the scenario started. */
  tStart: number
  tStop: number | null
  evidence: { took: string; seen: string | null } | null
  /** A fault a step applied (`fault: { apply, id }`): when, by step index and time, it was applied and reverted. */
  window?: FaultWindow
}

/**
 * The window of a step-scheduled fault: the step (index in its phase's `steps`) and time (ms,
 * the scenario's clock) it was applied and reverted; `by`: a `revert` step, the phase's end, or
 * a step error (`step`: the step that threw; null when it was a stop condition or the target).
 */
export type FaultWindow = {
  id: string
  applied: { phase: Phase; step: number; t: number }
  reverted: { phase: Phase; step: number | null; by: 'step' | 'phase end' | 'error'; t: number } | null
}

export type ScenarioReport = {
  name: string
  file: string
  target: 'fork' | 'devnet'
  /** Fork scenarios: the node the fork ran on (anvil or hardhat). */
  engine?: Engine
  hypothesis: string
  verdict: Verdict
  reason: string
  faults: FaultRecord[]
  checks: CheckResult[]
  mttrMs: number | null
  durationMs: number
  /** Counts of keeper entry-point calls by phase, and how many reverted. */
  cycles: Record<Phase, { total: number; reverted: number }>
  /** Keeper steps: offered vs effective request rate, retries, outcomes (see src/keeper). */
  load: (KeeperStats & { label: string; phase: Phase })[]
  /** JSON-RPC fault proxies of the scenario: requests and errors by method. */
  proxies: Record<string, unknown>
  seed: number
  replay: string
}

export type RunReport = {
  tool: 'forkchaos'
  version: string
  seed: number
  replay: string
  startedAt: string
  durationMs: number
  /** What ran: the fork source (when a fork scenario ran) and the kinds of targets used. */
  target: { kind: 'fork' | 'devnet' | 'fork+devnet' | 'endpoints'; source: string; forkBlock: string | null }
  scenarios: ScenarioReport[]
}

/** A scenario's report: its identity from the scenario, the rest from the run. */
export function scenarioReport(scenario: Scenario, run: Omit<ScenarioReport, 'name' | 'file' | 'target' | 'hypothesis'>): ScenarioReport {
  return { name: scenario.name, file: scenario.file, target: scenario.target.kind, ...(scenario.target.kind === 'fork' ? { engine: scenario.target.engine } : {}), hypothesis: scenario.hypothesis, ...run }
}
