/**
 * Detection power on the devnet: for the reference validator and each test build
 * (`devnetBuilds`, src/cli/options.ts: a guard of the validator switched off), which of these
 * catch it:
 *   - the shipped drills: every file of `scenarios/devnet`, seed 1, with shorter windows (below),
 *     caught when a drill is not held;
 *   - `search --target devnet`: a stated budget (below), caught when an episode breaks a check
 *     (then shrunk, with at most `shrinkRuns` candidates).
 * One build at a time, every drill and episode on a fresh 4-validator devnet (Anvil from npm).
 * A row is written to `<out>/<build>.json` as soon as it is done, so the run can be split into
 * chunks (`--builds a,b`) that release the machine between them; `--table` prints the table of
 * every row under `<out>`.
 *   npm run bench:detection-devnet   (or, built: node dist/bench/detection-devnet.js [--builds reference,double-vote] [--out DIR] [--table])
 */
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { devnetBuilds } from '../src/cli/options.js'
import { runDevnetScenario } from '../src/scenario/devnet-runner.js'
import { loadScenario } from '../src/scenario/loader.js'
import type { Scenario } from '../src/scenario/types.js'
import { searchDevnet } from '../src/search/devnet.js'

const flag = (name: string) => {
  const i = process.argv.indexOf(name)
  return i >= 0 ? process.argv[i + 1] : undefined
}
const int = (name: string, fallback: number) => {
  const v = flag(name)
  if (v === undefined) return fallback
  const n = Number(v)
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a whole number. Got \`${v}\`.`)
  return n
}

/**
 * The budgets, printed with the table. Drills: baseline 2 s, inject at most `injectMs` (as
 * test/devnet-scenarios.test.ts `shorter()` does), except the drills that need a turn of one
 * validator as proposer (every 4th height), which keep at most `turnInjectMs` (shipped: 8–20 s);
 * recover as shipped (it ends as soon as every check holds).
 */
const budget = {
  drillSeed: 1,
  baselineMs: 2_000,
  injectMs: int('--inject-ms', 4_000),
  turnInjectMs: int('--turn-inject-ms', 12_000),
  searchSeed: int('--seed', 1),
  episodes: int('--episodes', 3),
  steps: int('--steps', 6),
  shrinkRuns: int('--shrink-runs', 2),
  searchTimeMs: int('--search-time-s', 300) * 1_000,
} as const
/** The drills whose check needs a turn of one validator as proposer (evidence, refusals, rejections): 5 s could hold none. */
const needsTurns = new Set(['clock-skew.yaml', 'equivocation.yaml', 'invalid-tx.yaml', 'restart-mid-round.yaml', 'stale-parent.yaml', 'state-root-flip.yaml'])

const all = Object.keys(devnetBuilds).sort()
const out = flag('--out') ?? path.join('reports', 'detection-devnet')
type Row = { build: string; drills: string; drillsCaught: boolean; search: string; searchCaught: boolean; ms: number; drillMs: number; searchMs: number; load: string }

/** One line of at most `n` characters, safe in a Markdown table. */
const short = (text: string, n = 90) => {
  const s = (text.split('\n')[0] ?? '').replace(/\|/g, '/')
  return s.length > n ? `${s.slice(0, n - 1)}…` : s
}
const dir = 'scenarios/devnet'
const files = fs.readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort()
const shorter = (file: string): Scenario => {
  const s = loadScenario(path.join(dir, file))
  const injectMs = Math.min(s.inject.durationMs, needsTurns.has(file) ? budget.turnInjectMs : budget.injectMs)
  return { ...s, baseline: { ...s.baseline, durationMs: budget.baselineMs }, inject: { ...s.inject, durationMs: injectMs } }
}

function table(): void {
  const rows = fs.existsSync(out)
    ? fs.readdirSync(out).filter((f) => f.endsWith('.json')).map((f) => JSON.parse(fs.readFileSync(path.join(out, f), 'utf8')) as Row)
    : []
  rows.sort((a, b) => (a.build === 'reference' ? -1 : b.build === 'reference' ? 1 : a.build.localeCompare(b.build)))
  console.log(
    `\ndevnet detection power: ${rows.filter((r) => r.build !== 'reference').length} validator builds · drills: ${files.length} files of ${dir}, seed ${budget.drillSeed}, baseline ${budget.baselineMs / 1000} s, inject ≤ ${budget.injectMs / 1000} s (${[...needsTurns].join(', ')}: ≤ ${budget.turnInjectMs / 1000} s), recover as shipped · search: --seed ${budget.searchSeed} --episodes ${budget.episodes} --steps ${budget.steps} --shrink-runs ${budget.shrinkRuns} (at most ${budget.searchTimeMs / 1000} s of episodes)\n`,
  )
  console.log('| build | caught by shipped drills (which) | caught by search (episode, check, shrink) | s (drills + search) | load |')
  console.log('| --- | --- | --- | --- | --- |')
  for (const r of rows) console.log(`| ${r.build} | ${r.drills} | ${r.search} | ${(r.ms / 1000).toFixed(0)} (${(r.drillMs / 1000).toFixed(0)} + ${(r.searchMs / 1000).toFixed(0)}) | ${r.load} |`)
  const builds = rows.filter((r) => r.build !== 'reference')
  const count = (f: (r: Row) => boolean) => builds.filter(f).length
  console.log(`\ncaught of ${builds.length}: shipped drills ${count((r) => r.drillsCaught)} · search ${count((r) => r.searchCaught)} · either ${count((r) => r.drillsCaught || r.searchCaught)}`)
}

if (process.argv.includes('--table')) {
  table()
} else {
  const chosen = flag('--builds')?.split(',') ?? ['reference', ...all]
  for (const b of chosen) if (b !== 'reference' && !all.includes(b)) throw new Error(`--builds: no devnet build \`${b}\`; known: reference, ${all.join(', ')}`)
  fs.mkdirSync(out, { recursive: true })
  for (const build of chosen) {
    const b0 = performance.now()
    const overrides = build === 'reference' ? undefined : devnetBuilds[build]
    const flags = overrides ? ` --devnet-build ${build}` : ''

    // (a) The shipped drills, every file.
    const notHeld: string[] = []
    for (const file of files) {
      const d0 = performance.now()
      const r = await runDevnetScenario(shorter(file), { seed: budget.drillSeed, replay: `npx forkchaos run ${dir}/${file}${flags}`, ...(overrides ? { overrides } : {}) })
      const broke = r.checks.filter((c) => !c.ok).map((c) => c.name)
      if (r.verdict !== 'held') notHeld.push(`${file.replace(/\.yaml$/, '')} ${r.verdict}${broke.length ? ` (${[...new Set(broke)].join(', ')})` : ''}`)
      console.error(`${build}: ${file} ${r.verdict} ${((performance.now() - d0) / 1000).toFixed(1)} s${r.verdict !== 'held' ? `: ${short(r.reason, 160)}` : ''}`)
    }
    const drillMs = performance.now() - b0
    const drills = notHeld.length === 0 ? `no (${files.length} held)` : `yes: ${notHeld.length}/${files.length} (${notHeld.join('; ')})`

    // (b) search, the stated budget.
    const s0 = performance.now()
    let search: string
    let searchCaught = false
    try {
      const s = await searchDevnet({
        seed: budget.searchSeed,
        out: path.join(out, build, 'search'),
        episodes: budget.episodes,
        timeMs: budget.searchTimeMs,
        steps: budget.steps,
        validators: 4,
        budget: 1,
        ...(overrides ? { overrides } : {}),
        replayFlags: flags,
        shrinkRuns: budget.shrinkRuns,
        onEpisode: (n, verdict, reason) => console.error(`${build}: search episode ${n} ${verdict}${verdict !== 'held' ? `: ${short(reason, 160)}` : ''}`),
      })
      if (s.verdict === 'failed' && s.failure) {
        const f = s.failure
        searchCaught = true
        search = `yes: episode ${f.episode}, \`${f.check}\`, ${f.original} → ${f.shrunk} items in ${f.shrinkRuns} runs${f.confirmed ? '' : ' (its confirming run held)'}${f.confirmedCheck ? ` (confirming run: \`${f.confirmedCheck}\`)` : ''}`
      } else search = s.verdict === 'held' ? `no (${s.episodes} episodes held)` : `${s.verdict}: ${short(s.error ?? '', 80)}`
    } catch (error) {
      search = `error: ${short((error as Error).message, 80)}`
    }
    const row: Row = {
      build,
      drills,
      drillsCaught: notHeld.length > 0,
      search,
      searchCaught,
      ms: Math.round(performance.now() - b0),
      drillMs: Math.round(drillMs),
      searchMs: Math.round(performance.now() - s0),
      load: os.loadavg().map((l) => l.toFixed(1)).join(' '),
    }
    fs.writeFileSync(path.join(out, `${build}.json`), `${JSON.stringify(row, null, 2)}\n`)
    console.error(`${build}: drills ${row.drills} · search ${row.search} · ${(row.ms / 1000).toFixed(1)} s`)
  }
  table()
}
