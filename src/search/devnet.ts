import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import * as Experiment from '../experiment/experiment.js'
import { devnetTarget } from '../experiment/targets/devnet.js'
import { onTeardown } from '../lifecycle.js'
import type { ScenarioReport, Verdict } from '../report/types.js'
import { loadScenario } from '../scenario/loader.js'
import { createPrng } from '../util/prng.js'
import { type DevnetItem, devnetScheduleYaml, drawDevnetSchedule, stopSuffix, withinBudget } from './devnet-schedule.js'
import type { SearchReport } from './run.js'
import { type ShrinkOps, shrinkSchedule } from './shrink.js'

/** Candidates a devnet shrink tries by default (each run boots a devnet: ~20–30 s on 2 busy cores). */
export const devnetShrinkRuns = 24

/**
 * How a shrink candidate is judged. A devnet's timing is not exact (which peer hears an
 * equivocator's second proposal first, where a restart lands in a round, how far a busy machine
 * lets the chain get before a fault ends): a candidate that broke a check once may hold the next
 * time, and one that holds once may break the next. A candidate is kept when `devnetVotes.fail`
 * of its runs fail and dropped when `devnetVotes.hold` hold, whichever comes first (at most 3
 * counted runs). Computed (p² + 2p²(1 − p)): a candidate that fails 9 runs in 10 is kept 97 % of
 * the time (two in a row: 81 %; seed 290's true cause was dropped that way once in CI), one that
 * fails 1 in 10 is kept 3 % of the time
 * (a shrink that kept it would write a file that does not reproduce). A run that could not run
 * (verdict `error`: a boot that timed out on a loaded machine) is no evidence either way: it is
 * run again, at most `devnetVotes.errors` times per candidate.
 */
export const devnetVotes = { fail: 2, hold: 2, errors: 2 } as const

/**
 * Runs a candidate until `devnetVotes.fail` runs fail (kept: true) or `devnetVotes.hold` hold
 * (false). Runs that end `error` are not counted, at most `devnetVotes.errors` of them; past
 * that, an error counts as a hold. At most 3 counted runs, plus the errors.
 */
export async function failsByVotes(run: () => Promise<'fail' | 'hold' | 'error'>): Promise<boolean> {
  let failed = 0
  let held = 0
  let errors = 0
  while (failed < devnetVotes.fail && held < devnetVotes.hold) {
    const r = await run()
    if (r === 'error' && errors < devnetVotes.errors) errors++
    else if (r === 'fail') failed++
    else held++
  }
  return failed >= devnetVotes.fail
}

/**
 * `forkchaos search --target devnet`: seeded timed schedules of node, network and byzantine
 * faults, at most `budget` validators faulty at once, each episode a devnet scenario (written as
 * YAML, read by the normal loader, run by the engine on a fresh devnet of `validators`). Safety
 * (no fork, no honest validator named in equivocation evidence) is judged over every sample of
 * the run (a stop condition on each ends the episode the moment one breaks); liveness and
 * catch-up after the heal. The first failing schedule is shrunk (faults
 * dropped, then waits and reverts, then levels lowered; a candidate kept when most of its
 * runs fail: `devnetVotes`) to the smallest that does, confirmed once more, and written
 * under `out`.
 */
export async function searchDevnet(options: {
  seed: number
  out: string
  episodes: number
  timeMs: number
  steps: number
  validators: number
  budget: number
  /** A test build of the validators (`--devnet-build`), by validator id. */
  overrides?: Record<number, Record<string, unknown>>
  /** Appended to the replay commands (`--devnet-build …`). */
  replayFlags: string
  shrinkRuns?: number
  onEpisode?: (n: number, verdict: Verdict, reason: string) => void
}): Promise<SearchReport> {
  const t0 = performance.now()
  const target = devnetTarget(options.overrides ? { overrides: options.overrides } : {})
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'forkchaos-search-devnet-'))
  const forget = onTeardown('search schedules directory', () => fs.rmSync(tmp, { recursive: true, force: true }))
  const prng = createPrng(options.seed)
  const schedule = { validators: options.validators, budget: options.budget }
  let episodes = 0
  let episodesMs = 0
  let runs = 0
  const done = (verdict: Verdict, extra: Partial<SearchReport> = {}): SearchReport => ({
    seed: options.seed,
    episodes,
    durationMs: Math.round(performance.now() - t0),
    episodesPerMinute: Math.round(((episodes * 60_000) / Math.max(1, episodesMs)) * 10) / 10,
    verdict,
    replayFlags: options.replayFlags,
    ...extra,
  })
  const attempt = async (items: readonly DevnetItem[]) => {
    const file = path.join(tmp, `s${runs++}.yaml`)
    fs.writeFileSync(file, devnetScheduleYaml('search-episode', items, { ...schedule, note: 'an episode', stopOnSafety: true }))
    const report = await Experiment.run(loadScenario(file), target, { seed: options.seed, replay: '' })
    return { verdict: report.verdict, check: brokenCheck(report), reason: report.reason }
  }
  // Any broken check counts, not only the first one's: on a devnet one schedule shows one bug as
  // a safety break or as a chain locked after the heal depending on timing (the double-vote build
  // does both), and a shrink that demanded the same check would keep what it should drop.
  const failsMostly = (items: readonly DevnetItem[]) =>
    failsByVotes(async () => {
      const r = await attempt(items)
      return r.verdict === 'error' ? 'error' : r.check !== undefined ? 'fail' : 'hold'
    })
  try {
    while (episodes < options.episodes && performance.now() - t0 < options.timeMs) {
      const items = drawDevnetSchedule(prng.fork(`episode-${episodes}`), options.steps, options.validators, options.budget)
      const e0 = performance.now()
      const result = await attempt(items)
      episodesMs += performance.now() - e0
      episodes++
      // An episode that a safety check's stop condition ended is a failure of that check.
      options.onEpisode?.(episodes, result.verdict === 'aborted' && result.check ? 'failed' : result.verdict, result.reason)
      if (result.verdict === 'error' || result.verdict === 'skipped') return done('error', { error: result.reason })
      if ((result.verdict !== 'failed' && result.verdict !== 'aborted') || !result.check) continue
      const s0 = performance.now()
      const before = runs
      const check = result.check
      const shrunk = await shrinkSchedule(items, (c) => failsMostly(c), devnetItems(options.budget), options.shrinkRuns ?? devnetShrinkRuns)
      // Timing on a devnet is not exact: the shrunk schedule runs once more, and the report says whether it failed the same way again.
      const final = await attempt(shrunk)
      const name = `search-devnet-${options.seed}-${check}`
      fs.mkdirSync(options.out, { recursive: true })
      const file = path.join(options.out, `${name}.yaml`)
      const replay = `npx forkchaos run ${file} --seed ${options.seed}${options.replayFlags}`
      const note = `episode ${episodes} of seed ${options.seed}, shrunk from ${items.length} items to ${shrunk.length}; it broke \`${check}\`${final.check && final.check !== check ? ` (its last run \`${final.check}\`)` : ''}.`
      fs.writeFileSync(file, `${devnetScheduleYaml(name, shrunk, { ...schedule, note })}# replay: ${replay}\n`)
      return done('failed', {
        failure: {
          episode: episodes,
          check,
          // The episode's own account, of `check`; the confirming run's check is `confirmedCheck` when another.
          reason: result.reason,
          original: items.length,
          shrunk: shrunk.length,
          shrinkRuns: runs - before,
          shrinkMs: Math.round(performance.now() - s0),
          file,
          replay,
          confirmed: final.check !== undefined,
          ...(final.check && final.check !== check ? { confirmedCheck: final.check } : {}),
        },
      })
    }
    return done('held')
  } finally {
    await target.stop()
    fs.rmSync(tmp, { recursive: true, force: true })
    forget()
  }
}

/**
 * The check an episode broke: the first safety check (at any phase: safety is judged over the
 * whole run), else, when the verdict is `failed` without one, the first liveness check still
 * broken after the heal (the chain did not recover).
 */
function brokenCheck(report: ScenarioReport): string | undefined {
  // A tripped stop condition (`honest-not-accused-now`) is its safety check broken.
  const safety = report.checks.find((c) => !c.ok && c.kind === 'safety')
  if (safety) return safety.name.endsWith(stopSuffix) ? safety.name.slice(0, -stopSuffix.length) : safety.name
  if (report.verdict !== 'failed') return undefined
  return report.checks.find((c) => !c.ok && c.phase === 'recover')?.name
}

/** A devnet schedule's items as a shrink sees them; a candidate over the fault budget is never run. */
const devnetItems = (budget: number): ShrinkOps<DevnetItem> => ({
  fault: (i) => (i.kind === 'wait' ? undefined : i.id),
  alone: (i) => i.kind !== 'apply',
  level: (i) => (i.kind === 'revert' ? undefined : i.level),
  withLevel: (i, level) => (i.kind === 'revert' ? i : { ...i, level }),
  valid: (items) => withinBudget(items, budget),
})
