/**
 * Scenario isolation: snapshot/revert (with a fresh snapshot after each revert) against booting
 * a fresh fork of the same upstream, measured side by side in one run. Prints medians and ratio.
 *   npm run bench
 */
import { startAnvil } from '../src/targets/anvil.js'
import { startFork } from '../src/targets/fork.js'
import { median, report } from './stats.js'

const RESETS = 200
const BOOTS = 15

const fork = await startFork({ kind: 'embedded' })
try {
  const upstream = fork.upstream
  if (!upstream) throw new Error('no upstream')
  const resetMs: number[] = []
  for (let i = 0; i < RESETS; i++) {
    const t = performance.now()
    await fork.reset()
    resetMs.push(performance.now() - t)
  }
  const bootMs: number[] = []
  for (let i = 0; i < BOOTS; i++) {
    const t = performance.now()
    const fresh = await startAnvil({ label: 'bench-fresh', forkUrl: upstream.instance.url, forkBlockNumber: upstream.headBlock })
    await fresh.rpc.request('eth_blockNumber')
    bootMs.push(performance.now() - t)
    await fresh.stop()
  }
  report('scenario reset', [
    ['snapshot/revert reset (ms)', resetMs],
    ['fresh fork boot (ms)', bootMs],
  ])
  console.log(`ratio: fresh boot / reset = ${(median(bootMs) / median(resetMs)).toFixed(1)}x (medians)`)
} finally {
  await fork.stop()
}
