/**
 * Repeated-cycle stress throughput: the scenario runner's stress step (seeded random walks of
 * the pool and the feed between cycles, a keeper transaction per cycle) against the direct
 * path (a bare loop of cycle() transactions on the same fork), side by side in one run; then
 * the whole default DeFi suite, end to end.
 *   npm run bench
 */
import type { Address } from 'viem'
import { calldata } from '../src/chain/views.js'
import { loadScenario } from '../src/scenario/loader.js'
import { runScenario } from '../src/scenario/runner.js'
import { runSuite } from '../src/scenario/suite.js'
import { sendTransaction } from '../src/targets/chain.js'
import { startFork } from '../src/targets/fork.js'
import { median } from './stats.js'

const ROUNDS = 3
const fork = await startFork({ kind: 'embedded' })
const perMinute = { runner: [] as number[], direct: [] as number[] }
try {
  const scenario = loadScenario('scenarios/defi/stress.yaml')
  const cycles = 250
  for (let round = 0; round < ROUNDS; round++) {
    await fork.reset()
    const r = await runScenario(scenario, fork, { seed: round, replay: 'bench' })
    // Only the inject phase is the stress loop; time it from the report's own clock.
    const t0 = performance.now()
    await fork.reset()
    for (let i = 0; i < cycles; i++)
      await sendTransaction(fork.anvil.rpc, { from: fork.accounts.keeper as Address, to: fork.book.vault as Address, data: calldata('cycle()') })
    const directMs = performance.now() - t0
    perMinute.direct.push((cycles / directMs) * 60_000)
    perMinute.runner.push((r.cycles.inject.total / r.durationMs) * 60_000)
    if (r.verdict !== 'held') throw new Error(`stress verdict ${r.verdict}: ${r.reason}`)
  }
} finally {
  await fork.stop()
}
console.log('\nrepeated-cycle stress (cycle() episodes per minute, whole scenario incl. checks)')
console.log(`  runner (walks + checks)   median ${Math.round(median(perMinute.runner))}  [${perMinute.runner.map(Math.round).join(', ')}]`)
console.log(`  direct cycle() loop       median ${Math.round(median(perMinute.direct))}  [${perMinute.direct.map(Math.round).join(', ')}]`)
console.log(`  runner / direct = ${(median(perMinute.runner) / median(perMinute.direct)).toFixed(2)}`)

const suiteMs: number[] = []
for (let i = 0; i < 3; i++) {
  const t = performance.now()
  const report = await runSuite({ paths: ['scenarios/defi'], seed: 7, source: { kind: 'embedded' }, replay: 'bench' })
  suiteMs.push(performance.now() - t)
  if (!report.scenarios.every((s) => s.verdict === 'held')) throw new Error('suite did not hold')
}
console.log(`\ndefault DeFi suite (boot + 7 scenarios): median ${(median(suiteMs) / 1000).toFixed(2)} s  [${suiteMs.map((x) => (x / 1000).toFixed(2)).join(', ')}]`)
