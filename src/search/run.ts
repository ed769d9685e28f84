import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import type { Address } from 'viem'
import * as Experiment from '../experiment/experiment.js'
import { forkTarget } from '../experiment/targets/fork.js'
import { InfraError, InputError } from '../errors.js'
import { protocolFrame } from '../explore/matrix.js'
import { resolveUserName, type UserSystem } from '../explore/run.js'
import { traceEntry } from '../explore/trace.js'
import { onTeardown } from '../lifecycle.js'
import type { Verdict } from '../report/types.js'
import { loadScenario } from '../scenario/loader.js'
import { KEEPER_GAS } from '../steps/tx.js'
import { devAccounts } from '../targets/embedded.js'
import { type ForkSource, pinForkBlock } from '../targets/fork.js'
import { createPrng } from '../util/prng.js'
import { drawSchedule, faultPool, type Item, protocolSteps, referenceSchedule, referenceSteps, type ScheduleFrame, scheduleYaml, searchChecks } from './schedule.js'
import { type ShrinkOps, shrinkLimits, shrinkSchedule } from './shrink.js'

/** Limits: episodes, wall time, and re-runs one shrink may spend. */
export const searchLimits = { episodes: 100_000, timeMs: 3_600_000, shrinkRuns: shrinkLimits.runs } as const

export type Failure = {
  episode: number
  /** The first safety check that broke: the shrunk schedule must break the same one. */
  check: string
  reason: string
  original: number
  shrunk: number
  shrinkRuns: number
  shrinkMs: number
  file: string
  replay: string
  /** Devnet: whether the shrunk schedule failed the same way once more (timing on a devnet is not exact). */
  confirmed?: boolean
  /** Devnet: the check that last run broke, when not `check` (the same schedule, another symptom). */
  confirmedCheck?: string
}

/** `episodesPerMinute` is over the time the episodes ran (not the boot, trace or shrink). */
export type SearchReport = {
  seed: number
  episodes: number
  durationMs: number
  episodesPerMinute: number
  verdict: Verdict
  failure?: Failure
  error?: string
  /** The target flags a replay repeats (`--fork-url` with the block the fork was made at). */
  replayFlags: string
  /** On a user's protocol: the search checks it gives nothing for, and why (left out of every schedule). */
  omitted?: { check: string; why: string }[]
}

/**
 * `forkchaos search`: boots the fork once, traces the entry for explore's fault pool, then runs
 * seeded schedules (each a scenario loaded by the normal loader, run by the engine from the
 * fork's snapshot) until one breaks a safety check or a budget runs out. A failing schedule is
 * shrunk (faults dropped, then steps, then parameters lowered, each candidate re-run) to the
 * smallest that breaks the same check, and written under `out`.
 */
export async function search(options: {
  source: ForkSource
  seed: number
  out: string
  episodes: number
  timeMs: number
  steps: number
  /** Appended to the replay command (`--vault-build …`). */
  replayFlags: string
  /** Re-runs the shrink may spend (default `searchLimits.shrinkRuns`). */
  shrinkRuns?: number
  onEpisode?: (n: number, verdict: Verdict) => void
  target?: ReturnType<typeof forkTarget>
  /** The user's system on a fork (`--protocol`); absent: the reference protocol of the embedded chain. */
  user?: UserSystem
  /** After the trace: the checks left out (a user's protocol). */
  onOmitted?: (omitted: { check: string; why: string }[]) => void
}): Promise<SearchReport> {
  const t0 = performance.now()
  const user = options.user
  const entry = user?.protocol.entry.replace(/\s+/g, '') ?? 'cycle()'
  const userVault = user ? resolveUserName(user, user.protocol.vault, 'protocol.vault') : undefined
  // The search checks the user's protocol provides for (explore's choice: a field it lacks leaves its check out).
  const judged = user ? protocolFrame(user.protocol, user.contracts, user.accounts, entry, undefined) : undefined
  const omitted = judged?.omitted.filter((o) => (searchChecks as readonly string[]).includes(o.check))
  const checks = judged ? searchChecks.filter((c) => judged.names.includes(c)) : [...searchChecks]
  if (user && checks.length === 0)
    throw new InputError(`${user.file}: the protocol block gives none of the fields search judges a schedule by (\`sharePrice\`: no-funds-lost; \`state\`: no-partial-state; \`bountyEvent\` with a cap: bounty-capped).`, { context: { File: user.file, Field: 'protocol' } })
  const frame: ScheduleFrame = judged ? { header: judged.header, checks } : referenceSchedule
  // Every episode resets the fork: its cache of upstream state is filled once, before the snapshot
  // (a fork of the embedded chain only: warming needs the upstream's dump).
  const target = options.target ?? forkTarget({ source: options.source, warm: true })
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'forkchaos-search-'))
  const forget = onTeardown('search schedules directory', () => fs.rmSync(tmp, { recursive: true, force: true }))
  const prng = createPrng(options.seed)
  let episodes = 0
  // Time spent running episodes only (not the boot, the trace or a shrink): the rate's base.
  let episodesMs = 0
  // The flags every replay repeats, the fork's block pinned once it is known (after boot).
  let replayFlags = options.replayFlags
  const done = (verdict: Verdict, extra: Partial<SearchReport> = {}): SearchReport => {
    const durationMs = Math.round(performance.now() - t0)
    return { seed: options.seed, episodes, durationMs, episodesPerMinute: Math.round((episodes * 60_000) / Math.max(1, episodesMs)), verdict, replayFlags, ...(omitted ? { omitted } : {}), ...extra }
  }
  try {
    await target.boot({ seed: options.seed, replay: '', emit: () => {} })
    const fork = target.current()
    const vault = userVault ?? fork?.book.vault
    if (!fork || !vault) throw new InfraError('The fork target did not boot with a `vault` in its address book.')
    replayFlags = await pinForkBlock(options.replayFlags, fork)
    const book = user ? user.contracts : (fork.book as Record<string, Address>)
    const trace = await traceEntry(fork.anvil.rpc, { from: devAccounts.keeper as Address, to: vault, entry, book, gas: KEEPER_GAS })
    await fork.reset()
    if (!trace.ok) throw new InfraError(`The healthy call of \`${entry}\` reverts on this fork before any fault: nothing to search.`)
    if (omitted) options.onOmitted?.(omitted)
    // The feed the oracle faults move: the reference's `feed`, or on a user's fork the dependency that answers latestRoundData() (none: no feed moves).
    const feedDep = trace.dependencies.find((d) => d.signature === 'latestRoundData()')
    const pool = faultPool(trace.dependencies, user ? (feedDep ? (feedDep.contract ?? `"${feedDep.address}"`) : undefined) : 'feed')
    const kinds = user ? protocolSteps : referenceSteps
    let runs = 0
    const attempt = async (items: readonly Item[]) => {
      const file = path.join(tmp, `s${runs++}.yaml`)
      fs.writeFileSync(file, scheduleYaml('search-episode', items, pool, 'an episode', frame))
      const report = await Experiment.run(loadScenario(file), target, { seed: options.seed, replay: '' })
      // A check that broke only because its own view reverted under the fault (explore's UNREAD)
      // is not a finding: the protocol cannot be read while that dependency fails.
      const broke = report.checks.find((c) => !c.ok && c.kind === 'safety' && !c.observed.includes('could not be evaluated'))
      // Where an `always` check first broke (the engine's text names the step): nothing after it matters.
      const at = broke && /first broke after inject\.steps\[(\d+)\]/.exec(broke.observed)
      return { verdict: report.verdict, check: broke?.name, reason: report.reason, brokeAt: at ? Number(at[1]) : undefined }
    }
    while (episodes < options.episodes && performance.now() - t0 < options.timeMs) {
      const items = drawSchedule(prng.fork(`episode-${episodes}`), pool, options.steps, kinds)
      const e0 = performance.now()
      const result = await attempt(items)
      episodesMs += performance.now() - e0
      episodes++
      options.onEpisode?.(episodes, result.verdict)
      if (result.verdict === 'error') return done('error', { error: result.reason })
      if (result.verdict === 'held' || !result.check) continue
      const s0 = performance.now()
      const before = runs
      const check = result.check
      const fails = async (c: Item[]) => (await attempt(c)).check === check
      // First cut: the schedule up to the step after which the check broke (one re-run confirms it).
      const cut = result.brokeAt !== undefined && result.brokeAt + 1 < items.length ? items.slice(0, result.brokeAt + 1) : undefined
      const start = cut && (await fails(cut)) ? cut : items
      const shrunk = await shrinkSchedule(start, fails, forkItems, options.shrinkRuns ?? searchLimits.shrinkRuns)
      const final = await attempt(shrunk)
      const name = `search-${options.seed}-${check}`
      fs.mkdirSync(options.out, { recursive: true })
      const file = path.join(options.out, `${name}.yaml`)
      const replay = `npx forkchaos run ${file} --seed ${options.seed}${replayFlags}`
      fs.writeFileSync(file, `${scheduleYaml(name, shrunk, pool, `episode ${episodes} of seed ${options.seed}, shrunk from ${items.length} items to ${shrunk.length}; it breaks \`${check}\`.`, frame)}# replay: ${replay}\n`)
      return done('failed', {
        failure: { episode: episodes, check, reason: final.reason, original: items.length, shrunk: shrunk.length, shrinkRuns: runs - before, shrinkMs: Math.round(performance.now() - s0), file, replay },
      })
    }
    return done('held')
  } finally {
    if (!options.target) await target.stop()
    fs.rmSync(tmp, { recursive: true, force: true })
    forget()
  }
}

/**
 * Shrinks a failing fork schedule (src/search/shrink.ts): drops each fault (its apply with its
 * revert), then each step, until no single drop keeps the failure; then lowers each parameter
 * to the smallest level that still fails. Every candidate is re-run (`fails`); at most
 * `searchLimits.shrinkRuns` of them.
 */
export function shrink(items: readonly Item[], fails: (c: Item[]) => Promise<boolean>): Promise<Item[]> {
  return shrinkSchedule(items, fails, forkItems, searchLimits.shrinkRuns)
}

/** A fork schedule's items as a shrink sees them: faults by id, steps and reverts dropped alone, levels on every item but a revert. */
const forkItems: ShrinkOps<Item> = {
  fault: (i) => (i.kind === 'apply' || i.kind === 'revert' ? i.id : undefined),
  alone: (i) => i.kind !== 'apply',
  level: (i) => (i.kind === 'revert' ? undefined : i.level),
  withLevel: (i, level) => (i.kind === 'revert' ? i : { ...i, level }),
}
