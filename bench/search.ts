/**
 * `forkchaos search` episodes per minute on the embedded default, side by side in one run: this
 * build at each worker count of BENCH_WORKERS (default `1,2`), and with `--before <dir>` another
 * checkout's built CLI (e.g. main's, run without `--workers`), alternated round by round so that
 * each sees the same load. Each run is `node bin/forkchaos.js search --seed 3 --episodes 100` as a
 * user types it (boot, trace and all); the rate is the one it prints (over the episodes' wall
 * time), the load average is read before each run.
 *   npx tsc -p tsconfig.json && node dist/bench/search.js [--before /tmp/main-copy]
 * BENCH_ROUNDS (default 3), BENCH_EPISODES (default 100), BENCH_SEED (default 3).
 */
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { packageRoot } from '../src/contracts.js'
import { median } from './stats.js'

const rounds = Number(process.env.BENCH_ROUNDS ?? 3)
const episodes = Number(process.env.BENCH_EPISODES ?? 100)
const seed = Number(process.env.BENCH_SEED ?? 3)
const workers = (process.env.BENCH_WORKERS ?? '1,2').split(',').map(Number)
const beforeAt = process.argv.indexOf('--before')
const beforeDir = beforeAt >= 0 ? process.argv[beforeAt + 1] : undefined
if (beforeAt >= 0 && (!beforeDir || !fs.existsSync(path.join(beforeDir, 'bin', 'forkchaos.js')) || !fs.existsSync(path.join(beforeDir, 'dist')))) {
  console.error(`--before needs a checkout with bin/forkchaos.js and a built dist/; got ${JSON.stringify(beforeDir ?? '')}`)
  process.exit(2)
}
if (!(rounds >= 1) || !(episodes >= 1) || workers.some((w) => !(w >= 1))) {
  console.error('BENCH_ROUNDS, BENCH_EPISODES and each of BENCH_WORKERS must be whole numbers ≥ 1')
  process.exit(2)
}
const args = ['search', '--seed', String(seed), '--episodes', String(episodes)]
const variants: [string, string[]][] = [
  ...(beforeDir ? ([['before', [path.resolve(beforeDir, 'bin', 'forkchaos.js'), ...args]]] as [string, string[]][]) : []),
  ...workers.map((w): [string, string[]] => [`--workers ${w}`, [path.join(packageRoot, 'bin', 'forkchaos.js'), ...args, '--workers', String(w)]]),
]

type Run = { rate: number; seconds: number; wallS: number; load: number; summary: string }
function once(argv: string[]): Run {
  const load = os.loadavg()[0] ?? 0
  const t = performance.now()
  const run = spawnSync(process.execPath, argv, { cwd: packageRoot, encoding: 'utf8' })
  const wallS = (performance.now() - t) / 1000
  // "100 episodes: held · 8.1 s · 744 episodes/min · seed 3"
  const line = /^(\d+) episodes: (\w+) · ([\d.]+) s · (\d+) episodes\/min/m.exec(run.stdout)
  if (!line) throw new Error(`node ${argv.join(' ')} exited ${run.status} without its summary line:\n${run.stdout}\n${run.stderr}`)
  return { rate: Number(line[4]), seconds: Number(line[3]), wallS, load, summary: `${line[1]} ${line[2]}` }
}

const runs = new Map(variants.map(([name]) => [name, [] as Run[]]))
const started = new Date()
for (let round = 0; round < rounds; round++)
  for (const [name, argv] of variants) {
    const r = once(argv)
    runs.get(name)?.push(r)
    console.log(`  round ${round + 1}  ${name.padEnd(12)} ${r.summary} · ${r.seconds.toFixed(1)} s · ${r.rate} episodes/min · ${r.wallS.toFixed(1)} s wall · load ${r.load.toFixed(1)}`)
  }

console.log(`\nsearch --seed ${seed} --episodes ${episodes}, ${rounds} rounds alternated, ${started.toISOString().slice(11, 16)}–${new Date().toISOString().slice(11, 16)} UTC, ${os.cpus().length} cores`)
const base = median(runs.get(variants[0]?.[0] ?? '')?.map((r) => r.rate) ?? [])
for (const [name] of variants) {
  const rs = runs.get(name) ?? []
  const m = median(rs.map((r) => r.rate))
  console.log(`  ${name.padEnd(12)} episodes/min ${rs.map((r) => r.rate).join(', ').padEnd(18)} median ${String(m).padStart(5)} (${(m / base).toFixed(2)}×)  wall median ${median(rs.map((r) => r.wallS)).toFixed(1)} s  load ${rs.map((r) => r.load.toFixed(1)).join(' ')}  [${[...new Set(rs.map((r) => r.summary))].join(' / ')}]`)
}
