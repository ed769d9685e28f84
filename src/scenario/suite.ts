import * as fs from 'node:fs'
import { InputError } from '../errors.js'
import { faults } from '../faults/registry.js'
import type { RunReport, ScenarioReport, Verdict } from '../report/types.js'
import { verdictRank } from '../report/types.js'
import { onTeardown } from '../lifecycle.js'
import { type RpcProxy, startRpcProxy } from '../proxy/jsonrpc/proxy.js'
import { startAnvil } from '../targets/anvil.js'
import { revertTo, snapshot } from '../targets/chain.js'
import { type ForkSource, startFork, type Fork } from '../targets/fork.js'
import { createPrng } from '../util/prng.js'
import { redactUrl } from '../util/redact.js'
import { runDevnetScenario } from './devnet-runner.js'
import { findScenarioFiles, loadScenario } from './loader.js'
import { type RunEvent, runScenario } from './runner.js'
import type { Scenario } from './types.js'

export type SuiteOptions = {
  paths: string[]
  seed: number
  source: ForkSource
  /** The command line that replays this run, printed in every report. */
  replay: string
  logDir?: string
  /** Test builds of devnet validators, by id (see `--devnet-build`). */
  devnetOverrides?: Record<number, Record<string, unknown>>
  onEvent?: (event: RunEvent | { type: 'scenario-done'; report: ScenarioReport } | { type: 'booted'; url: string; ms: number }) => void
}

export const VERSION = '0.1.0'

/** Loads and validates every scenario first (bad input fails before anything boots). */
export function loadAll(paths: string[]): Scenario[] {
  const files = findScenarioFiles(paths)
  if (files.length === 0) throw new InputError(`No scenario files (*.yaml) under ${paths.join(', ')}.`)
  return files.map(loadScenario)
}

/**
 * Runs scenarios on one fork target. Isolation between scenarios is by snapshot/revert (with a
 * new snapshot after each revert); a scenario that asks for `isolation: fresh`, or has a fault
 * that needs one (reorgs), gets its own fork of the same source, stopped right after.
 */
export async function runSuite(options: SuiteOptions): Promise<RunReport> {
  const scenarios = loadAll(options.paths)
  const startedAt = new Date()
  const t0 = performance.now()
  const emit = options.onEvent ?? (() => {})
  const logDir = options.logDir ? { logDir: options.logDir } : {}
  // The fork boots only if a fork scenario runs; devnet scenarios each get a fresh devnet.
  let fork: Fork | undefined
  const reports: ScenarioReport[] = []
  try {
    for (const scenario of scenarios) {
      if (scenario.target.kind === 'devnet') {
        const report = await runDevnetScenario(scenario, { seed: options.seed, replay: options.replay, ...(options.onEvent ? { onEvent: options.onEvent } : {}), ...(options.devnetOverrides ? { overrides: options.devnetOverrides } : {}) })
        reports.push(report)
        emit({ type: 'scenario-done', report })
        continue
      }
      if (!fork) {
        const bootStart = performance.now()
        fork = await startFork(options.source, logDir)
        emit({ type: 'booted', url: fork.anvil.url, ms: Math.round(performance.now() - bootStart) })
      }
      const fresh = scenario.target.isolation === 'fresh' || scenario.inject.faults.some((f) => faults[f.type as keyof typeof faults].needsFreshTarget)
      let target: Fork = fork
      if (fresh) target = await freshFork(fork, options.source, logDir, scenario, options.seed)
      else await fork.reset()
      try {
        const report = await runScenario(scenario, target, { seed: options.seed, replay: options.replay, ...(options.onEvent ? { onEvent: options.onEvent } : {}) })
        reports.push(report)
        emit({ type: 'scenario-done', report })
      } finally {
        if (target !== fork) await target.stop()
      }
    }
  } finally {
    await fork?.stop()
  }
  return {
    tool: 'forkchaos',
    version: VERSION,
    seed: options.seed,
    replay: options.replay,
    startedAt: startedAt.toISOString(),
    durationMs: Math.round(performance.now() - t0),
    target: {
      kind: scenarios.every((s) => s.target.kind === 'devnet') ? 'devnet' : scenarios.some((s) => s.target.kind === 'devnet') ? 'fork+devnet' : 'fork',
      source: options.source.kind === 'url' ? redactUrl(options.source.url) : options.source.kind === 'state' ? options.source.path : 'embedded',
      forkBlock: fork?.upstream ? String(fork.upstream.headBlock) : options.source.kind === 'url' && options.source.blockNumber !== undefined ? String(options.source.blockNumber) : null,
    },
    scenarios: reports,
  }
}

/**
 * A second fork of the same source; for the embedded chain it forks the running upstream. With
 * `target.upstreamProxy` the fork reads its upstream through a JSON-RPC fault proxy named
 * `upstream`, with the scenario's Anvil flags (retries, timeout, compute units per second).
 */
async function freshFork(fork: Fork, source: ForkSource, logDir: { logDir?: string }, scenario: Scenario, seed: number): Promise<Fork> {
  const upstreamUrl = fork.upstream?.instance.url ?? (source.kind === 'url' ? source.url : undefined)
  if (!upstreamUrl) return startFork(source, logDir)
  const proxies = new Map<string, RpcProxy>()
  const undo: (() => Promise<void>)[] = []
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
    const unregister = onTeardown('fresh fork', async () => {
      for (const u of undo.reverse()) await u()
    })
    let snap = await snapshot(anvil.rpc)
    return {
      ...fork,
      anvil,
      proxies,
      async reset() {
        await revertTo(anvil.rpc, snap)
        snap = await snapshot(anvil.rpc)
      },
      async stop() {
        unregister()
        for (const u of undo.reverse()) await u()
      },
    }
  } catch (error) {
    for (const u of undo.reverse()) await u()
    throw error
  }
}

/** Scenarios whose verdict is worse than in an earlier report.json (for CI's --compare). */
export function regressions(report: RunReport, previousFile: string): { name: string; was: Verdict; now: Verdict }[] {
  let previous: RunReport
  try {
    previous = JSON.parse(fs.readFileSync(previousFile, 'utf8')) as RunReport
  } catch (error) {
    throw new InputError(`Cannot read the previous report ${previousFile}: ${(error as Error).message}`, { hint: '--compare takes a report.json written by an earlier run.' })
  }
  const before = new Map((previous.scenarios ?? []).map((s) => [s.name, s.verdict]))
  return report.scenarios.flatMap((s) => {
    const was = before.get(s.name)
    if (was === undefined || was === 'skipped' || s.verdict === 'skipped') return []
    return verdictRank[s.verdict] > verdictRank[was] ? [{ name: s.name, was, now: s.verdict }] : []
  })
}
