/**
 * Detection power: for every test build of the reference vault (a guard switched off or a planted
 * bug, scripts/build-contracts.mjs) and the reference itself, which of these catch it:
 *   - the shipped drills: `scenarios/defi` with every sweep cell, seed 7 (a verdict other than held);
 *   - `explore`: its whole matrix on cycle(), seed 7 (a cell that does not hold);
 *   - `search`: a stated budget, `--episodes 30 --steps 8 --seed 1` (a safety check broken);
 * and whether the file explore (else search) wrote fails on that build and holds on the reference,
 * each run again by the engine `forkchaos run` uses. One build at a time, so it stays within the
 * shared machine's two cores: one fork per build for explore and the file (reset by snapshot), one
 * for search (as `forkchaos search` boots it), one reference fork for the whole run.
 *   npm run bench:detection   (or, built: node dist/bench/detection.js [--builds a,b] [--out DIR])
 */
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import * as Experiment from '../src/experiment/experiment.js'
import { forkTarget } from '../src/experiment/targets/fork.js'
import { explore } from '../src/explore/run.js'
import { packageRoot } from '../src/contracts.js'
import { loadScenario } from '../src/scenario/loader.js'
import { runSuite } from '../src/scenario/suite.js'
import { search } from '../src/search/run.js'

/** The budgets, printed with the table. */
const budget = { seed: 7, searchSeed: 1, episodes: 30, steps: 8, searchTimeMs: 300_000 } as const

const flag = (name: string) => {
  const i = process.argv.indexOf(name)
  return i >= 0 ? process.argv[i + 1] : undefined
}
const all = Object.keys((JSON.parse(fs.readFileSync(path.join(packageRoot, 'dist', 'contracts', 'artifacts.json'), 'utf8')) as { variants: Record<string, unknown> }).variants).filter((v) => !v.startsWith('ReferenceVault.fixture-'))
  .map((v) => v.replace(/^ReferenceVault\./, ''))
  .sort()
const chosen = flag('--builds')?.split(',') ?? ['reference', ...all]
for (const b of chosen) if (b !== 'reference' && !all.includes(b)) throw new Error(`--builds: no vault build \`${b}\`; known: ${all.join(', ')}`)
const out = flag('--out') ?? path.join('reports', 'detection')
fs.rmSync(out, { recursive: true, force: true })

type Row = { build: string; drills: string; explore: string; search: string; file: string; ms: number }
const rows: Row[] = []
/** One line of at most `n` characters (an error's first line, without the engine's preamble). */
const short = (text: string, n = 90) => {
  const s = (text.split('\n')[0] ?? '').replace(/^the experiment could not run: /, '').replace(/\|/g, '/')
  return s.length > n ? `${s.slice(0, n - 1)}…` : s
}
const t0 = performance.now()
const reference = forkTarget({ source: { kind: 'embedded' } })

try {
  for (const build of chosen) {
    const b0 = performance.now()
    const vaultBuild = build === 'reference' ? undefined : `ReferenceVault.${build}`
    const source = { kind: 'embedded', ...(vaultBuild ? { vaultBuild } : {}) } as const
    const flags = vaultBuild ? ` --vault-build ${vaultBuild}` : ''
    const row: Row = { build, drills: '', explore: '', search: '', file: '', ms: 0 }

    // The shipped drills, every cell.
    const suite = await runSuite({ paths: ['scenarios/defi'], seed: budget.seed, source, replay: `npx forkchaos run scenarios/defi --seed ${budget.seed}${flags}` })
    const notHeld = suite.scenarios.filter((s) => s.verdict !== 'held')
    const verdicts = [...new Set(notHeld.map((s) => s.verdict))].join('/')
    row.drills = notHeld.length === 0 ? `no (${suite.scenarios.length} held)` : `yes: ${notHeld.length}/${suite.scenarios.length} ${verdicts} (${short(notHeld.map((s) => s.name).join(', '), 70)})`
    if (notHeld.every((s) => s.verdict === 'error') && notHeld.length === suite.scenarios.length) row.drills = `error in all ${notHeld.length}: ${short(notHeld[0]?.reason ?? '', 80)}`

    const target = forkTarget({ source })
    let written: string | undefined
    try {
      try {
        const ex = await explore({ source, entry: 'cycle()', seed: budget.seed, out: path.join(out, build, 'explore'), replayFlags: flags, target })
        const bad = ex.cells.filter((c) => c.verdict !== 'held')
        row.explore = bad.length === 0 ? `no (${ex.cells.length} held, ${(ex.durationMs / 1000).toFixed(1)} s)` : `yes: ${bad.length}/${ex.cells.length} (${short(bad.map((c) => (c.fault.startsWith('dependency.') ? `${c.fault.replace('dependency.', '')} ${c.contract}.${c.signature.split('(')[0]}` : c.name.replace(/^explore-/, ''))).join(', '), 60)})`
        written = bad.find((c) => c.verdict === 'failed' && c.file)?.file
      } catch (error) {
        row.explore = `error: ${short((error as Error).message, 80)}`
      }
      try {
        // On a fork of its own, so its episodes are exactly `forkchaos search --seed 1 --episodes 30` (its trace, so its pool, from a fresh fork).
        const s = await search({ source, seed: budget.searchSeed, out: path.join(out, build, 'search'), episodes: budget.episodes, timeMs: budget.searchTimeMs, steps: budget.steps, replayFlags: flags })
        row.search =
          s.verdict === 'failed' && s.failure
            ? `yes: episode ${s.failure.episode}, \`${s.failure.check}\`, ${s.failure.original} → ${s.failure.shrunk} items`
            : s.verdict === 'held'
              ? `no (${s.episodes} held, ${s.episodesPerMinute}/min)`
              : `${s.verdict}: ${short(s.error ?? '', 80)}`
        written ??= s.failure?.file
      } catch (error) {
        row.search = `error: ${short((error as Error).message, 80)}`
      }
      // The written file, run again by the engine: it must fail on this build and hold on the reference.
      if (written) {
        const scenario = loadScenario(written)
        const onBuild = await Experiment.run(scenario, target, { seed: budget.seed, replay: 'bench' })
        const onReference = await Experiment.run(scenario, reference, { seed: budget.seed, replay: 'bench' })
        const ok = onBuild.verdict === 'failed' && onReference.verdict === 'held'
        row.file = `${ok ? 'yes' : 'NO'}: ${path.basename(written)} ${onBuild.verdict} on the build, ${onReference.verdict} on the reference`
      } else row.file = build === 'reference' ? 'none written (nothing failed)' : 'none written: neither explore nor search failed'
    } finally {
      await target.stop()
    }
    row.ms = Math.round(performance.now() - b0)
    rows.push(row)
    console.error(`${build}: drills ${row.drills} · explore ${row.explore} · search ${row.search} · file ${row.file} · ${(row.ms / 1000).toFixed(1)} s`)
  }
} finally {
  await reference.stop()
}

const builds = rows.filter((r) => r.build !== 'reference')
const count = (f: (r: Row) => boolean) => builds.filter(f).length
const caught = (s: string) => s.startsWith('yes')
console.log(`\ndetection power: ${builds.length} vault builds · drills scenarios/defi seed ${budget.seed} · explore seed ${budget.seed} (whole matrix) · search seed ${budget.searchSeed}, ${budget.episodes} episodes of ${budget.steps} steps · ${((performance.now() - t0) / 1000).toFixed(0)} s, load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}\n`)
console.log('| build | caught by shipped drills | caught by explore | caught by search | written file fails on build & holds on reference | s |')
console.log('| --- | --- | --- | --- | --- | --- |')
for (const r of rows) console.log(`| ${r.build} | ${r.drills} | ${r.explore} | ${r.search} | ${r.file} | ${(r.ms / 1000).toFixed(0)} |`)
console.log(
  `\ncaught of ${builds.length}: shipped drills ${count((r) => caught(r.drills))} · explore ${count((r) => caught(r.explore))} · search ${count((r) => caught(r.search))} · explore or search ${count((r) => caught(r.explore) || caught(r.search))} · any ${count((r) => caught(r.drills) || caught(r.explore) || caught(r.search))} · written file checked ${count((r) => caught(r.file))}`,
)
