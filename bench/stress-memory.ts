/**
 * The stress runner's memory and speed, in one bench run: scenarios/defi/stress.yaml with its
 * stress step set to 250, 1,000 and 4,000 cycles, each in a fresh process (node RSS sampled
 * every 100 ms, peak and at the end; the heap still reachable after a GC), cycles per minute of the inject phase, against a direct
 * loop of cycle() transactions on the same fork (the same process, after the runner).
 *   npx tsc -p tsconfig.json && node dist/bench/stress-memory.js [250,1000,4000]
 */
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { Address } from 'viem'
import { calldata } from '../src/chain/views.js'
import { loadScenario } from '../src/scenario/loader.js'
import { runScenario } from '../src/scenario/runner.js'
import { sendTransaction } from '../src/targets/chain.js'
import { startFork } from '../src/targets/fork.js'
import * as rpcModule from '../src/targets/rpc.js'

const DIRECT_CYCLES = 500

async function child(cycles: number) {
  const scenario = loadScenario('scenarios/defi/stress.yaml')
  const step = scenario.inject.steps[0] as { stress: { cycles: number } }
  step.stress.cycles = cycles
  // The vault pays every cycle's bounty from its assets (2 ppm of them, plus the gas part): 4,000
  // cycles take the share price ~1.2 % below its baseline, under the scenario's 1 % floor, which
  // is set for its 250 cycles. This bench measures the runner, so the floor is the stop
  // condition's (90 %) at every count; the other checks are kept, and any verdict but `held` fails.
  const floor = scenario.checks.find((c) => c.name === 'no-funds-lost') as { sharePriceFloor?: { minBps: number } } | undefined
  if (!floor?.sharePriceFloor) throw new Error('scenarios/defi/stress.yaml has no `no-funds-lost` share-price floor to lower')
  floor.sharePriceFloor.minBps = 9_000
  const fork = await startFork({ kind: 'embedded' })
  let peak = 0
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 100)
  // HTTP round trips every JSON-RPC client of this process sent (absent from builds before the count existed).
  const trips = () => (rpcModule as { rpcRoundTrips?: { count: number } }).rpcRoundTrips?.count ?? Number.NaN
  try {
    const trips0 = trips()
    const t0 = performance.now()
    const r = await runScenario(scenario, fork, { seed: 1, replay: 'bench' })
    const runnerMs = performance.now() - t0
    const runnerTrips = trips() - trips0
    const endRss = process.memoryUsage.rss()
    // What is still reachable (run with --expose-gc; the parent does): RSS alone also counts garbage V8 has not collected.
    ;(globalThis as { gc?: () => void }).gc?.()
    const heapMB = process.memoryUsage().heapUsed / 2 ** 20
    if (r.verdict !== 'held') throw new Error(`stress verdict ${r.verdict}: ${r.reason}`)
    await fork.reset()
    const t1 = performance.now()
    for (let i = 0; i < DIRECT_CYCLES; i++)
      await sendTransaction(fork.anvil.rpc, { from: fork.accounts.keeper as Address, to: fork.book.vault as Address, data: calldata('cycle()') })
    const directMs = performance.now() - t1
    const total = r.cycles.inject.total
    const sharePrice = r.checks.filter((c) => c.name === 'no-funds-lost').at(-1)?.observed
    console.log(JSON.stringify({ cycles, total, sharePrice, tripsPerCycle: runnerTrips / total, runnerPerMin: (total / runnerMs) * 60_000, directPerMin: (DIRECT_CYCLES / directMs) * 60_000, peakMB: peak / 2 ** 20, endMB: endRss / 2 ** 20, heapMB, reportBytes: JSON.stringify(r, (_, v) => (typeof v === 'bigint' ? String(v) : v)).length }))
  } finally {
    clearInterval(sampler)
    await fork.stop()
  }
}

if (process.argv[2] === '--child') await child(Number(process.argv[3]))
else {
  const counts = (process.argv[2] ?? '250,1000,4000').split(',').map(Number)
  const rows: { cycles: number; sharePrice?: string; tripsPerCycle: number; runnerPerMin: number; directPerMin: number; peakMB: number; endMB: number; heapMB: number; reportBytes: number }[] = []
  for (const n of counts) {
    const run = spawnSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), '--child', String(n)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 2 ** 20 })
    const line = run.stdout.trim().split('\n').pop() ?? ''
    // The child's own error is the reason: shown whole, not left in a log behind this message.
    if (run.status !== 0) throw new Error(`${n} cycles: exit ${run.status}${run.signal ? ` (${run.signal})` : ''}\n${run.stderr.trim().slice(-4_000)}\n${run.stdout.trim().slice(-2_000)}`)
    if (run.stderr.trim()) process.stderr.write(run.stderr)
    rows.push(JSON.parse(line))
  }
  console.log('\nstress runner: node RSS and cycles per minute (runner = the whole scenario; direct = a bare cycle() loop on the same fork)')
  for (const r of rows)
    console.log(`  ${String(r.cycles).padStart(5)} cycles  RSS peak ${r.peakMB.toFixed(0)} MB, end ${r.endMB.toFixed(0)} MB, heap after GC ${r.heapMB.toFixed(0)} MB  runner ${r.runnerPerMin.toFixed(0)}/min  direct ${r.directPerMin.toFixed(0)}/min  (${(r.runnerPerMin / r.directPerMin).toFixed(2)}×)  ${r.tripsPerCycle.toFixed(1)} round trips/cycle  report ${(r.reportBytes / 1024).toFixed(0)} KiB  (${r.sharePrice ?? 'no share price'})`)
  const first = rows[0]
  const last = rows[rows.length - 1]
  if (first && last) console.log(`  RSS at ${last.cycles} / at ${first.cycles}: peak ${(last.peakMB / first.peakMB).toFixed(2)}×, end ${(last.endMB / first.endMB).toFixed(2)}×`)
}
