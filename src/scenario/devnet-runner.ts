import * as Experiment from '../experiment/experiment.js'
import type { RunEvent } from '../experiment/events.js'
import { devnetTarget } from '../experiment/targets/devnet.js'
import type { ScenarioReport } from '../report/types.js'
import type { Scenario } from './types.js'

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
  /** Each honest transfer's inclusion latency (ms) by when it was sent (probe clock, ms), the last 2,000: report.html's inclusion series. */
  inclusion?: { t: number; ms: number }[]
  maxRssMb: number
  /** Per validator: [ms since start, height] every ~500 ms, for plots. */
  heights: { t: number; heights: (number | null)[] }[]
  faultWindows: { type: string; target: string | undefined; tStart: number; tStop: number | null }[]
  /** A soak's draws: how many were applied, how many not because they would break the fault budget. */
  soak: { budget: number; draws: number; applied: number; overBudget: number } | null
  /** Each height's first commit any validator reported (probe clock, ms), the last 2,000. */
  commits: { height: number; t: number; proposer: number }[]
  /** Rejected proposals: who rejected whose, at which layer, how fast (ms), when (probe clock, ms); the last 2,000. */
  rejections: { node: number; proposer: number; height: number; layer: string; reason: string; latencyMs: number; t: number }[]
  /** Set when `--el` lengthened the file's slot: windows and check time bounds grew by `factor`. */
  timeScale?: { factor: number; fileSlotMs: number }
}

/**
 * Runs one devnet scenario on a fresh devnet (src/experiment/targets/devnet.ts) through the one
 * experiment engine (src/experiment/experiment.ts).
 */
export async function runDevnetScenario(scenario: Scenario, options: DevnetRunOptions): Promise<ScenarioReport & { devnet: DevnetMetrics }> {
  const target = devnetTarget(options.overrides ? { overrides: options.overrides } : {})
  return (await Experiment.run(scenario, target, { seed: options.seed, replay: options.replay, ...(options.onEvent ? { onEvent: options.onEvent } : {}) })) as ScenarioReport & { devnet: DevnetMetrics }
}

