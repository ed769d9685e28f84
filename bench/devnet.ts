/**
 * Devnet speed, measured through the same runner the scenarios use (the probe samples every
 * 100 ms, so every time below carries up to ~100 ms of sampling granularity):
 * - `devnet up` to first commit (1 s slots), n runs;
 * - sustained slot time: commits per second over the inject window at 1 s slots with a
 *   1,000 tx/s flood, and at 500 ms slots without;
 * - bad-block rejection latency (state-root flip), as the validators report it;
 * - catch-up of a validator partitioned for 30 s, after the heal.
 *   node dist/bench/devnet.js            (BENCH_RUNS=3 by default)
 */
import { loadScenario } from '../src/scenario/loader.js'
import { runDevnetScenario } from '../src/scenario/devnet-runner.js'
import type { Scenario } from '../src/scenario/types.js'
import { median } from './stats.js'

const runs = Number(process.env.BENCH_RUNS ?? 3)
const run = (s: Scenario) => runDevnetScenario(s, { seed: 1, replay: 'bench' })
const msPerCommit = (r: Awaited<ReturnType<typeof run>>, from: number, to: number) => {
  const inWindow = r.devnet.heights.filter((h) => h.t >= from && h.t <= to)
  const first = inWindow[0]
  const last = inWindow.at(-1)
  if (!first || !last) return Number.NaN
  const height = (x: (number | null)[]) => Math.max(...x.map((v) => v ?? 0))
  return (last.t - first.t) / Math.max(1, height(last.heights) - height(first.heights))
}
const window = (r: Awaited<ReturnType<typeof run>>) => {
  const f = r.faults[0]
  return f ? [f.tStart, f.tStop ?? f.tStart] : [0, r.durationMs]
}

const firstCommit: number[] = []
const flood = loadScenario('scenarios/devnet/mempool-flood.yaml')
const floodSlots: number[] = []
const inclusion: number[] = []
for (let i = 0; i < runs; i++) {
  const r = await run(flood)
  if (r.devnet.firstCommitMs !== null) firstCommit.push(r.devnet.firstCommitMs)
  const [a, b] = window(r) as [number, number]
  floodSlots.push(msPerCommit(r, a, b))
  if (r.devnet.inclusionMs) inclusion.push(r.devnet.inclusionMs.p99)
  console.log(`flood run ${i + 1}: ${r.verdict} (${r.reason})`)
}
const fast = loadScenario('scenarios/devnet/kill-restart.yaml')
const fastNoFault: Scenario = { ...fast, name: 'bench-500ms', target: { ...fast.target, slotMs: 500 }, inject: { ...fast.inject, faults: [], durationMs: 8_000 }, checks: fast.checks.filter((c) => c.name !== 'catch-up') }
const fastSlots: number[] = []
for (let i = 0; i < runs; i++) {
  const r = await run(fastNoFault)
  fastSlots.push(msPerCommit(r, 3_000, r.durationMs))
}
const flip = await run(loadScenario('scenarios/devnet/state-root-flip.yaml'))
const partition = loadScenario('scenarios/devnet/lossy-validator.yaml')
const part = await run({ ...partition, name: 'bench-partition-30s', inject: { ...partition.inject, faults: [{ type: 'net.partition', target: 3 }] } })

console.log('\ndevnet (4 validators, this machine)')
console.log(`  up → first commit (1 s slots)        median ${Math.round(median(firstCommit))} ms   [${firstCommit.map(Math.round).join(', ')}]`)
console.log(`  slot time, 1 s slots + 1,000 tx/s     median ${Math.round(median(floodSlots))} ms per commit   [${floodSlots.map(Math.round).join(', ')}]`)
console.log(`  honest tx inclusion p99 under flood   median ${Math.round(median(inclusion))} ms   [${inclusion.map(Math.round).join(', ')}]`)
console.log(`  slot time, 500 ms slots, no flood     median ${Math.round(median(fastSlots))} ms per commit   [${fastSlots.map(Math.round).join(', ')}]`)
console.log(`  bad-block rejection latency (worst)   ${flip.devnet.rejectionLatencyMs ?? '—'} ms   (${flip.verdict})`)
console.log(`  catch-up after a 30 s partition       ${part.devnet.catchUpMs ?? '—'} ms after heal   (${part.verdict})`)
