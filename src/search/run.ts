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
import type { CheckResult, Verdict } from '../report/types.js'
import { loadScenario } from '../scenario/loader.js'
import { KEEPER_GAS } from '../steps/tx.js'
import { devAccounts } from '../targets/embedded.js'
import { type ForkSource, pinnedFlags, pinnedSource } from '../targets/fork.js'
import type { Target } from '../experiment/target.js'
import { createPrng } from '../util/prng.js'
import { drawSchedule, faultPool, type Item, protocolSteps, referenceSchedule, referenceSteps, type ScheduleFrame, scheduleYaml, searchChecks, userSchedule } from './schedule.js'
import { type ShrinkOps, shrinkLimits, shrinkSchedule } from './shrink.js'

/** Limits: episodes, wall time, and re-runs one shrink may spend. */
export const searchLimits = { episodes: 100_000, timeMs: 3_600_000, shrinkRuns: shrinkLimits.runs, workers: 8 } as const

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

/** `episodesPerMinute` is over the wall time the episodes ran (not the boot, trace or shrink), all workers together. */
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
 *
 * With `workers` > 1 that many forks run episodes at once (more Anvil forks of the same embedded
 * upstream, each warmed and reset to its own snapshot; or of the same URL at the block the first
 * was made at, or the same state dump). Episodes are handed out in index order, each schedule
 * drawn from the seed as one worker draws it; once one breaks a safety check or ends in error no
 * more are handed out, those running finish, and the lowest such index decides: the same episode,
 * shrink (on the first fork, one candidate at a time) and file as with one worker.
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
  /** Each episode in index order, up to the one that ends the search, with its checks as judged. */
  onEpisode?: (n: number, verdict: Verdict, checks: CheckResult[]) => void
  target?: ReturnType<typeof forkTarget>
  /** The user's system on a fork (`--protocol`); absent: the reference protocol of the embedded chain. */
  user?: UserSystem
  /** After the trace: the checks left out (a user's protocol). */
  onOmitted?: (omitted: { check: string; why: string }[]) => void
  /** Forks running episodes at once, 1–`searchLimits.workers` (default 1). */
  workers?: number
  /**
   * Answer a read of a state already read from its answer (`cachingReads`, src/targets/rpc.ts;
   * default true): an episode's writes all go through its session's client. Off: every read sent.
   */
  cacheReads?: boolean
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
  const frame: ScheduleFrame = judged ? userSchedule(judged.header, checks) : referenceSchedule
  // Every episode resets the fork: its cache of upstream state is filled once, before the snapshot
  // (a fork of the embedded chain only: warming needs the upstream's dump).
  const cacheReads = options.cacheReads ?? true
  const target = options.target ?? forkTarget({ source: options.source, warm: true, cacheReads })
  const workers = options.workers ?? 1
  if (!Number.isInteger(workers) || workers < 1 || workers > searchLimits.workers) throw new InputError(`\`--workers\` must be a whole number from 1 to ${searchLimits.workers}. Got \`${workers}\`.`)
  // The other workers' forks (the first is `target`): booted beside the trace, stopped with it.
  const extras: ReturnType<typeof forkTarget>[] = []
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
    // The other workers fork the same block as the first, and a replay names it.
    const source = await pinnedSource(fork)
    replayFlags = pinnedFlags(options.replayFlags, fork, source)
    for (let w = 1; w < workers; w++) extras.push(forkTarget({ source, warm: true, cacheReads, ...(fork.upstream ? { upstream: fork.upstream } : {}) }))
    const booting = Promise.allSettled(extras.map((t) => t.boot({ seed: options.seed, replay: '', emit: () => {} })))
    const book = user ? user.contracts : (fork.book as Record<string, Address>)
    const trace = await traceEntry(fork.anvil.rpc, { from: devAccounts.keeper as Address, to: vault, entry, book, gas: KEEPER_GAS, abis: Object.values(user?.abis ?? {}) })
    await fork.reset()
    const bootFailed = (await booting).find((b) => b.status === 'rejected')
    if (bootFailed) throw bootFailed.reason
    if (!trace.ok) throw new InfraError(`The healthy call of \`${entry}\` reverts on this fork before any fault: nothing to search.`)
    if (omitted) options.onOmitted?.(omitted)
    // The feed the oracle faults move: the reference's `feed`, or on a user's fork the dependency that answers latestRoundData() (none: no feed moves).
    const feedDep = trace.dependencies.find((d) => d.signature === 'latestRoundData()')
    const pool = faultPool(trace.dependencies, user ? (feedDep ? (feedDep.contract ?? `"${feedDep.address}"`) : undefined) : 'feed')
    const kinds = user ? protocolSteps : referenceSteps
    const attempt = async (on: Target, items: readonly Item[], name: string) => {
      const file = path.join(tmp, `${name}.yaml`)
      fs.writeFileSync(file, scheduleYaml('search-episode', items, pool, 'an episode', frame))
      const report = await Experiment.run(loadScenario(file), on, { seed: options.seed, replay: '' })
      // A check that broke only because its own view reverted under the fault (explore's UNREAD)
      // is not a finding: the protocol cannot be read while that dependency fails.
      const broke = report.checks.find((c) => !c.ok && c.kind === 'safety' && !c.observed.includes('could not be evaluated'))
      // Where an `always` check first broke (the engine's text names the step): nothing after it matters.
      const at = broke && /first broke after inject\.steps\[(\d+)\]/.exec(broke.observed)
      return { verdict: report.verdict, check: broke?.name, reason: report.reason, brokeAt: at ? Number(at[1]) : undefined, checks: report.checks }
    }
    type Result = Awaited<ReturnType<typeof attempt>>
    // An episode that ends the search: a broken safety check, or an error.
    const ends = (r: Result) => r.verdict === 'error' || (r.verdict !== 'held' && r.check !== undefined)
    const ran: { items: Item[]; result: Result }[] = []
    let handed = 0
    // The lowest index of an episode that ends the search; once one is known none is handed out.
    let decisive = Number.POSITIVE_INFINITY
    let thrown = false
    let told = 0
    const work = async (on: Target) => {
      while (handed < options.episodes && decisive === Number.POSITIVE_INFINITY && !thrown && performance.now() - t0 < options.timeMs) {
        // Handed out and drawn in index order (this runs without a pause in between), as one worker draws them.
        const i = handed++
        const items = drawSchedule(prng.fork(`episode-${i}`), pool, options.steps, kinds)
        const result = await attempt(on, items, `e${i}`).catch((error: unknown) => {
          thrown = true
          throw error
        })
        ran[i] = { items, result }
        if (ends(result)) decisive = Math.min(decisive, i)
        // Told in index order, up to the one that ends the search.
        for (let next = ran[told]; next && told <= decisive; next = ran[told]) {
          told++
          options.onEpisode?.(told, next.result.verdict, next.result.checks)
        }
      }
    }
    const e0 = performance.now()
    const settled = await Promise.allSettled([target, ...extras].map(work))
    episodesMs = performance.now() - e0
    const rejected = settled.find((r) => r.status === 'rejected')
    if (rejected) throw rejected.reason
    episodes = decisive === Number.POSITIVE_INFINITY ? ran.length : decisive + 1
    const last = ran[episodes - 1]
    if (last && decisive !== Number.POSITIVE_INFINITY) {
      const { items, result } = last
      if (result.verdict === 'error' || !result.check) return done('error', { error: result.reason })
      const s0 = performance.now()
      let runs = 0
      const check = result.check
      // The shrink runs on the first fork, one candidate at a time.
      const rerun = (c: readonly Item[]) => attempt(target, c, `r${runs++}`)
      const fails = async (c: Item[]) => (await rerun(c)).check === check
      // First cut: the schedule up to the step after which the check broke (one re-run confirms it).
      const cut = result.brokeAt !== undefined && result.brokeAt + 1 < items.length ? items.slice(0, result.brokeAt + 1) : undefined
      const start = cut && (await fails(cut)) ? cut : items
      const shrunk = await shrinkSchedule(start, fails, forkItems, options.shrinkRuns ?? searchLimits.shrinkRuns)
      const final = await rerun(shrunk)
      const name = `search-${options.seed}-${check}`
      fs.mkdirSync(options.out, { recursive: true })
      const file = path.join(options.out, `${name}.yaml`)
      const replay = `npx forkchaos run ${file} --seed ${options.seed}${replayFlags}`
      fs.writeFileSync(file, `${scheduleYaml(name, shrunk, pool, `episode ${episodes} of seed ${options.seed}, shrunk from ${items.length} items to ${shrunk.length}; it breaks \`${check}\`.`, frame)}# replay: ${replay}\n`)
      return done('failed', {
        failure: { episode: episodes, check, reason: final.reason, original: items.length, shrunk: shrunk.length, shrinkRuns: runs, shrinkMs: Math.round(performance.now() - s0), file, replay },
      })
    }
    return done('held')
  } finally {
    // The other forks first: the first one's owns the embedded upstream they fork.
    await Promise.allSettled(extras.map((t) => t.stop()))
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
