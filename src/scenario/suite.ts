import * as fs from 'node:fs'
import type { RunEvent } from '../experiment/events.js'
import type { Target } from '../experiment/target.js'
import { InputError, SetupRevertedError } from '../errors.js'
import type { RunReport, ScenarioReport, Verdict } from '../report/types.js'
import { verdictRank } from '../report/types.js'
import type { ForkSource } from '../targets/fork.js'
import { redactUrl } from '../util/redact.js'
import { findScenarioFiles, loadScenarios } from './loader.js'
import { cellMatches, parseCellSelection } from './sweep.js'
import type { Scenario } from './types.js'
import type { CheckSpec } from '../checks/registry.js'
import { packageRoot } from '../contracts.js'
import type { Engine } from '../targets/engine.js'
import { engineProblem } from './engine.js'

export type SuiteOptions = {
  paths: string[]
  seed: number
  source: ForkSource
  /** The command line that replays this run, printed in every report. */
  replay: string
  logDir?: string
  /** Test builds of devnet validators, by id (see `--devnet-build`). */
  devnetOverrides?: Record<number, Record<string, unknown>>
  /** An endpoints file (`--target endpoints.yaml`): every scenario runs on those nodes (src/experiment/targets/endpoints.ts). */
  endpoints?: string
  /** `--el`: every devnet scenario's execution client (over `target.el`); a slot the file does not set follows it. */
  el?: 'anvil' | 'ethereumjs'
  /** `--slot`: every devnet scenario's slot (ms); longer than a file's, its windows scale with it. */
  slotMs?: number
  /** `--topology`: every devnet scenario's topology file (over `target.topology`). */
  topology?: string
  onEvent?: (event: RunEvent | { type: 'scenario-done'; report: ScenarioReport }) => void
  /** `--engine`: every fork scenario's fork engine (over `target.engine`). */
  engine?: Engine
  /** `--cell bps=300,direction=up`: only the sweep cells with these values run (scenarios without a sweep do not). */
  cell?: string
}

// Its own module, so that `forkchaos --version` loads nothing else.
import { VERSION } from '../version.js'
export { VERSION }

/**
 * Loads and validates every scenario first (bad input fails before anything boots). With
 * `engine` (`--engine`), every fork scenario runs on it, and what it cannot do is refused here.
 */
export function loadAll(paths: string[], cell?: string, engine?: Engine): Scenario[] {
  const files = findScenarioFiles(paths)
  if (files.length === 0) throw new InputError(`No scenario files (*.yaml) under ${paths.join(', ')}.`)
  const all = files.flatMap(loadScenarios).map((s) => (engine === undefined ? s : withEngine(s, engine)))
  if (cell === undefined) return all
  const selection = parseCellSelection(cell)
  if (!selection) throw new InputError(`\`--cell\` must be key=value pairs separated by commas, as in a swept scenario's name (\`bps=300,direction=up\`). Got \`${cell}\`.`)
  const chosen = all.filter((s) => s.cell && cellMatches(s.cell.values, selection))
  if (chosen.length === 0)
    throw new InputError(`No sweep cell matches \`--cell ${cell}\` under ${paths.join(', ')}.`, {
      hint: `Swept scenarios there: ${[...new Set(all.filter((s) => s.cell).map((s) => s.name))].slice(0, 8).join(', ') || 'none'}.`,
    })
  return chosen
}

/** A fork scenario on the engine `--engine` names; refused (exit 2) when it cannot run there. */
function withEngine(s: Scenario, engine: Engine): Scenario {
  if (s.target.kind !== 'fork') return s
  const problem = engineProblem(s, engine)
  if (problem) throw new InputError(`${s.file}: ${problem.message} (\`--engine ${engine}\`)`, { context: { File: s.file, Field: problem.field } })
  return { ...s, target: { ...s.target, engine } }
}

/**
 * What running needs and validating does not (the experiment engine, the targets, the execution
 * clients, topologies: viem and the devnet come with them), loaded on the first run, so that
 * `forkchaos validate` opens only the loader and the units' specs.
 */
async function runtime() {
  const [Experiment, devnet, endpoints, fork, endpointsFile, el, spawn, topologyFile] = await Promise.all([
    import('../experiment/experiment.js'),
    import('../experiment/targets/devnet.js'),
    import('../experiment/targets/endpoints.js'),
    import('../experiment/targets/fork.js'),
    import('../topology/endpoints.js'),
    import('../el/index.js'),
    import('../topology/spawn.js'),
    import('../topology/topology.js'),
  ])
  return {
    Experiment,
    devnetTarget: devnet.devnetTarget,
    endpointsTarget: endpoints.endpointsTarget,
    prepareForEndpoints: endpoints.prepareForEndpoints,
    forkTarget: fork.forkTarget,
    loadEndpoints: endpointsFile.loadEndpoints,
    els: el.elSpecs,
    topology: { planDevnet: spawn.planDevnet, loadTimeStatics: spawn.loadTimeStatics, loadTopology: topologyFile.loadTopology },
  }
}

type Topologies = Awaited<ReturnType<typeof runtime>>['topology']

/**
 * The command that replays one scenario: a sweep's cell is run alone, by its file and `--cell`
 * (the run's own command otherwise, which names what it ran).
 */
function replayOf(scenario: Scenario, replay: string): string {
  if (!scenario.cell) return replay
  const head = /^npx forkchaos run .*? --seed /.exec(replay)
  const rest = head ? replay.slice(head[0].length - ' --seed '.length) : ''
  return head ? `npx forkchaos run ${scenario.file} --cell ${scenario.cell.label}${rest.replace(/ --cell \S+/, '')}` : `${replay} --cell ${scenario.cell.label}`
}

/**
 * Runs scenarios through the one experiment engine, each on its target kind: the fork target
 * (booted once on the first fork scenario, reset by snapshot between scenarios, or a fresh
 * fork for `isolation: fresh` and faults that need one) and the devnet target (a fresh devnet
 * per scenario). A fork that cannot boot is an infrastructure error of the run, not a verdict.
 */
export async function runSuite(options: SuiteOptions): Promise<RunReport> {
  const files = loadAll(options.paths, options.cell, options.engine)
  const onHardhat = files.find((s) => s.target.kind === 'fork' && s.target.engine === 'hardhat')
  if (onHardhat && options.source.kind === 'state')
    throw new InputError(`${onHardhat.file}: engine hardhat cannot fork a state dump: \`--state\` is Anvil's own format (\`anvil --dump-state\`); a Hardhat node forks an RPC URL (the embedded chain, or \`--fork-url\`).`, { context: { File: onHardhat.file, Field: 'target.engine' } })
  const { Experiment, devnetTarget, endpointsTarget, prepareForEndpoints, forkTarget, loadEndpoints, els, topology } = await runtime()
  const loaded = files.map((s) => withTopology(withEl(s, options.el, options.slotMs, els), options.topology, els, topology))
  // On endpoints, what a scenario cannot run there is refused now, before anything runs (exit 2).
  const onEndpoints = options.endpoints === undefined ? undefined : loadEndpoints(options.endpoints)
  const scenarios = onEndpoints ? loaded.map((s) => prepareForEndpoints(s, onEndpoints)) : loaded
  const endpoints = onEndpoints && endpointsTarget(onEndpoints)
  const startedAt = new Date()
  const t0 = performance.now()
  const emit = options.onEvent ?? (() => {})
  const fork = forkTarget({ source: options.source, ...(options.logDir ? { logDir: options.logDir } : {}) })
  const devnet = devnetTarget(options.devnetOverrides ? { overrides: options.devnetOverrides } : {})
  const run = { seed: options.seed, replay: options.replay, ...(options.onEvent ? { onEvent: options.onEvent } : {}) }
  const reports: ScenarioReport[] = []
  let forkBlock: string | null = null
  let setupFailed: Target | undefined
  try {
    for (const scenario of scenarios) {
      let target: Target = endpoints ?? (scenario.target.kind === 'devnet' ? devnet : fork)
      if (target === fork && setupFailed) target = setupFailed
      else if (target === fork) {
        try {
          await fork.boot({ seed: options.seed, replay: options.replay, emit })
          forkBlock ??= fork.current()?.upstream ? String(fork.current()?.upstream?.headBlock) : null
        } catch (error) {
          // The protocol reverted during set-up: every fork scenario's report says where and why
          // (set up once: the same chain would revert the same way).
          if (!(error instanceof SetupRevertedError)) throw error
          target = setupFailed = unusable(error)
        }
      }
      emit({ type: 'scenario-start', scenario: scenario.name, target: scenario.target.kind, plannedMs: { baseline: scenario.baseline.durationMs, inject: scenario.inject.durationMs, recover: scenario.recover.durationMs }, steps: { baseline: scenario.baseline.steps.length, inject: scenario.inject.steps.length, recover: scenario.recover.steps.length } })
      const report = await Experiment.run(scenario, target, { ...run, replay: replayOf(scenario, options.replay) })
      reports.push(report)
      emit({ type: 'scenario-done', report })
    }
  } finally {
    await fork.stop()
    await devnet.stop()
  }
  return {
    tool: 'forkchaos',
    version: VERSION,
    seed: options.seed,
    replay: options.replay,
    startedAt: startedAt.toISOString(),
    durationMs: Math.round(performance.now() - t0),
    target: {
      kind: onEndpoints ? 'endpoints' : scenarios.every((s) => s.target.kind === 'devnet') ? 'devnet' : scenarios.some((s) => s.target.kind === 'devnet') ? 'fork+devnet' : 'fork',
      source: onEndpoints ? onEndpoints.file : options.source.kind === 'url' ? redactUrl(options.source.url) : options.source.kind === 'state' ? options.source.path : 'embedded',
      forkBlock: forkBlock ?? (options.source.kind === 'url' && options.source.blockNumber !== undefined ? String(options.source.blockNumber) : null),
    },
    scenarios: reports,
  }
}

/**
 * A devnet scenario on the execution client `--el` names, on the slot `--slot` names. Without
 * `--slot` its slot is at least the client's default (a file's slot was chosen for the client it
 * names, Anvil when none): the shipped drills say `slot: 1s`, which ethereumjs does not hold on
 * 2 cores (3 commits in 10 s).
 */
function withEl(s: Scenario, el: SuiteOptions['el'], slotOverride: number | undefined, elSpecs: typeof import('../el/index.js').elSpecs): Scenario {
  if (s.target.kind !== 'devnet' || (el === undefined && slotOverride === undefined)) return s
  const elSlot = (e: NonNullable<SuiteOptions['el']>) => (s.target.slotGiven && s.target.el === e ? s.target.slotMs : Math.max(s.target.slotGiven ? s.target.slotMs : 0, elSpecs[e].defaultSlotMs))
  // `--slot` wins over both; a longer slot than the file's scales its windows once, from the file's.
  const slotMs = slotOverride ?? elSlot(el ?? s.target.el ?? 'anvil')
  return scaleWindows({ ...s, target: { ...s.target, ...(el ? { el } : {}), ...(slotOverride !== undefined ? { slotGiven: true } : {}) } }, slotMs)
}

/**
 * A devnet scenario on a longer slot than its file's keeps its meaning in slots: its windows
 * (baseline, inject and recover durations) and its checks' time bounds (params ending in `Ms`:
 * catch-up `withinMs`, inclusion `maxMs`) grow by the same factor. A drill written for 1 s
 * slots on Anvil ("catch up within 5 s", 5 slots) would otherwise ask a 2 s-slot client to catch
 * up in 2.5 slots. Faults' own params are not touched. The report shows the factor
 * (`devnet.timeScale`).
 */
export function scaleWindows(s: Scenario, slotMs: number): Scenario {
  const factor = slotMs / s.target.slotMs
  if (!(factor > 1)) return { ...s, target: { ...s.target, slotMs } }
  const scale = (ms: number) => Math.round(ms * factor)
  const scaleParams = (body: unknown): unknown =>
    body && typeof body === 'object' && !Array.isArray(body)
      ? Object.fromEntries(Object.entries(body).map(([k, v]) => [k, k.endsWith('Ms') && typeof v === 'number' ? scale(v) : v]))
      : body
  const scaleCheck = (c: CheckSpec): CheckSpec => Object.fromEntries(Object.entries(c).map(([k, v]) => [k, ['name', 'kind', 'phases', 'always'].includes(k) ? v : scaleParams(v)])) as CheckSpec
  return {
    ...s,
    target: { ...s.target, slotMs, timeScale: { factor, fileSlotMs: s.target.slotMs } },
    checks: s.checks.map(scaleCheck),
    stop: s.stop.map(scaleCheck),
    baseline: { ...s.baseline, durationMs: scale(s.baseline.durationMs) },
    inject: { ...s.inject, durationMs: scale(s.inject.durationMs) },
    recover: { ...s.recover, durationMs: scale(s.recover.durationMs) },
  }
}

/**
 * A devnet scenario started from a topology (`--topology` over `target.topology`), checked now,
 * before anything runs (exit 2 naming the file and field: its size against `target.validators`,
 * its commands, its placeholders). A slot the file does not set is at least 2 s when a
 * validator's execution client is not Anvil.
 */
function withTopology(s: Scenario, topology: string | undefined, elSpecs: typeof import('../el/index.js').elSpecs, { planDevnet, loadTopology, loadTimeStatics }: Topologies): Scenario {
  const file = topology ?? s.target.topology
  if (s.target.kind !== 'devnet' || file === undefined) return s
  const plan = planDevnet(loadTopology(file), loadTimeStatics(packageRoot), s.target.validators)
  const engine = Array.from({ length: plan.n }, (_, id) => plan.client(id)).some((c) => c !== 'anvil')
  const slotMs = !s.target.slotGiven && engine ? Math.max(s.target.slotMs, elSpecs.ethereumjs.defaultSlotMs) : s.target.slotMs
  return { ...s, target: { ...s.target, topology: file, slotMs } }
}

/** A target whose set-up failed: each scenario on it ends `error` with the set-up's reason. */
function unusable(error: SetupRevertedError): Target {
  return {
    kind: 'fork',
    boot: async () => {},
    open: async () => {
      throw error
    },
    stop: async () => {},
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
