import * as fs from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { drillTestFiles } from './drill-seen.js'
import { runDevnetScenario } from '../src/scenario/devnet-runner.js'
import { loadScenario, parseScenario } from '../src/scenario/loader.js'
import { runScenario } from '../src/scenario/runner.js'
import { runSuite } from '../src/scenario/suite.js'
import type { Scenario } from '../src/scenario/types.js'
import { type Fork, startFork } from '../src/targets/fork.js'
import { liveProcesses } from '../src/targets/processes.js'

/**
 * The one experiment engine, by the bugs that three drifting loops had (issue 8): a devnet
 * `stop:` condition, a broken baseline judged the same on both targets, the soak's fault budget,
 * and devnet faults whose `detect` sees what the network showed.
 */
const scenario = (yaml: string, file = 'test/experiment.yaml'): Scenario => parseScenario(new TextEncoder().encode(yaml), file)
const devnet = (s: Scenario) => runDevnetScenario(s, { seed: 1, replay: 'test' })

describe('a devnet stop: condition', () => {
  it('trips during inject: the run is aborted, the fault reverted at once, nothing left running', async () => {
    const s = scenario(`
name: stop-on-stall
hypothesis: A 2|2 partition stalls the chain, and the stop condition ends the drill at once.
target: { kind: devnet, slot: 1s }
checks:
  - { name: no-fork, kind: safety, noFork: true }
stop:
  - { name: chain-moves, kind: liveness, phases: [inject], progress: { minCommitsPerSlot: 0.5 } }
baseline: { duration: 2s }
inject:
  faults:
    - { type: net.partition, params: { groups: [[0, 1], [2, 3]] } }
  duration: 30s
recover: { duration: 5s }
`)
    const r = await devnet(s)
    expect(r.verdict, r.reason).toBe('aborted')
    expect(r.reason).toMatch(/^stop condition `chain-moves` tripped in inject: 0 commits in \d+ ms/)
    // The tripped condition is in the report as a broken check of its phase.
    expect(r.checks.find((c) => c.name === 'chain-moves')).toMatchObject({ phase: 'inject', ok: false, kind: 'liveness' })
    // Reverted at once: long before the 30 s inject window would have ended.
    const fault = r.faults[0]
    expect(fault?.tStop).not.toBeNull()
    expect((fault?.tStop as number) - (fault?.tStart as number)).toBeLessThan(15_000)
    expect(liveProcesses()).toEqual([])
  })

  it('that keeps holding does not abort (the drill runs to its verdict)', async () => {
    const s = scenario(`
name: stop-holds
hypothesis: One killed validator of four leaves a quorum, so the stop condition keeps holding.
target: { kind: devnet, slot: 1s }
checks:
  - { name: no-fork, kind: safety, noFork: true }
stop:
  - { name: chain-moves, kind: liveness, progress: { minCommitsPerSlot: 0.3 } }
baseline: { duration: 2s }
inject:
  faults:
    - { type: node.kill, target: 3 }
  duration: 4s
recover: { duration: 5s }
`)
    const r = await devnet(s)
    expect(r.verdict, r.reason).toBe('held')
    expect(r.checks.some((c) => c.name === 'chain-moves')).toBe(false)
  })
})

describe('a check broken at baseline gets the same verdict on a fork and on the devnet', () => {
  let fork: Fork
  beforeAll(async () => {
    fork = await startFork({ kind: 'embedded' })
  })
  afterAll(() => fork?.stop())

  const forkScenario = (kind: 'safety' | 'liveness') =>
    scenario(`
name: fork-baseline-${kind}
hypothesis: The risk mode is 5 before anything is broken (it is 0).
protocol: reference
checks:
  - { name: mode-five, kind: ${kind}, phases: [baseline], riskMode: { equals: 5 } }
baseline: { steps: [ { cycle: {} } ] }
inject:
  faults:
    - { type: gas.spike, params: { baseFeeGwei: 100 } }
  steps: [ { cycle: {} } ]
recover: { steps: [ { cycle: {} } ] }
`)
  const devnetScenario = (kind: 'safety' | 'liveness') =>
    scenario(`
name: devnet-baseline-${kind}
hypothesis: The chain stands still before anything is broken (it commits).
target: { kind: devnet, slot: 1s }
checks:
  - { name: stands-still, kind: ${kind}, phases: [baseline], mustStall: true }
baseline: { duration: 3s }
inject:
  faults:
    - { type: node.kill, target: 3 }
  duration: 2s
recover: { duration: 2s }
`)

  it('safety: failed on both, no fault injected', async () => {
    await fork.reset()
    const onFork = await runScenario(forkScenario('safety'), fork, { seed: 1, replay: 'test' })
    const onDevnet = await devnet(devnetScenario('safety'))
    expect([onFork.verdict, onDevnet.verdict]).toEqual(['failed', 'failed'])
    expect(onFork.reason).toMatch(/^safety check `mode-five` broke at baseline, before any fault: /)
    expect(onDevnet.reason).toMatch(/^safety check `stands-still` broke at baseline, before any fault: \d+ commits between/)
    expect([onFork.faults, onDevnet.faults]).toEqual([[], []])
  })

  it('liveness: aborted on both (the steady state did not hold), no fault injected', async () => {
    await fork.reset()
    const onFork = await runScenario(forkScenario('liveness'), fork, { seed: 1, replay: 'test' })
    const onDevnet = await devnet(devnetScenario('liveness'))
    expect([onFork.verdict, onDevnet.verdict]).toEqual(['aborted', 'aborted'])
    expect(onFork.reason).toMatch(/^steady state did not hold at baseline, so no fault was injected: `mode-five` observed .+ \(expected .+\)$/)
    expect(onDevnet.reason).toMatch(/^steady state did not hold at baseline, so no fault was injected: `stands-still` observed \d+ commits between .+ \(expected .+\)$/)
    expect([onFork.faults, onDevnet.faults]).toEqual([[], []])
  })
})

describe('the soak fault budget', () => {
  const soak = (faults: Scenario['inject']['faults'], budget: number): Scenario => {
    const s = loadScenario('scenarios/soak/devnet-soak.yaml')
    return {
      ...s,
      baseline: { ...s.baseline, durationMs: 2_000 },
      inject: { ...s.inject, durationMs: 10_000, random: { faults, everyMs: 3_000, holdMs: 2_000, budget, flakeBudget: 10 } },
      recover: { ...s.recover, durationMs: 5_000 },
    }
  }
  // At most `budget` validators faulty at any moment, counted from the fault records.
  const mostAtOnce = (r: Awaited<ReturnType<typeof devnet>>) =>
    Math.max(0, ...r.faults.map((f) => r.faults.filter((g) => g.tStart <= f.tStart && (g.tStop ?? Number.POSITIVE_INFINITY) > f.tStart).reduce((n, g) => n + (Array.isArray(g.params.validators) ? g.params.validators.length : 1), 0)))

  it('budget 0 applies no fault at all', async () => {
    const r = await devnet(soak([{ type: 'node.wedge' }], 0))
    expect(r.devnet.soak, `${r.verdict}: ${r.reason}`).toMatchObject({ applied: 0, overBudget: 3 })
    expect(r.faults).toEqual([])
  })

  it('budget 1 never applies a fault that would make two validators faulty; one-validator faults go ahead', async () => {
    const r = await devnet(soak([{ type: 'node.burst-kill', params: { validators: [2, 3] } }, { type: 'node.wedge' }], 1))
    expect(r.devnet.soak, `${r.verdict}: ${r.reason}`).not.toBeNull()
    expect(r.faults.map((f) => f.type).filter((t) => t !== 'node.wedge')).toEqual([])
    expect(r.faults.length).toBeGreaterThanOrEqual(1)
    expect(mostAtOnce(r)).toBe(1)
    expect((r.devnet.soak?.applied ?? 0) + (r.devnet.soak?.overBudget ?? 0)).toBe(3)
    expect(r.devnet.soak?.overBudget).toBeGreaterThanOrEqual(1)
  })
})

describe('every shipped devnet drill: its fault was seen', () => {
  const files = fs
    .readdirSync('scenarios/devnet')
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => `scenarios/devnet/${f}`)
  // The drill test files check `seen` on every reference run (drill-seen.ts); here only the
  // drills none of them runs, so each drill is booted for this once, not twice.
  const runElsewhere = drillTestFiles.map((t) => fs.readFileSync(t, 'utf8')).join('\n')
  const notRunElsewhere = files.filter((f) => !runElsewhere.includes(f))
  it('every shipped devnet drill is run either by a drill test file (which checks `seen`) or below', () => {
    for (const t of drillTestFiles) expect(fs.readFileSync(t, 'utf8')).toContain('expectSeen(r)')
    expect(notRunElsewhere.length).toBeLessThan(files.length)
  })
  it.each(notRunElsewhere)('%s: each fault has non-null `seen` evidence from the devnet probe', async (file) => {
    const s = loadScenario(file)
    const r = await devnet({ ...s, baseline: { ...s.baseline, durationMs: 2_000 }, inject: { ...s.inject, durationMs: Math.min(s.inject.durationMs, 5_000) }, recover: { ...s.recover, durationMs: Math.min(s.recover.durationMs, 8_000) } })
    if (r.verdict === 'skipped') return
    expect(r.faults.length, r.reason).toBeGreaterThan(0)
    for (const f of r.faults) {
      expect(f.evidence?.took, `${f.type}: ${r.reason}`).toBeTruthy()
      expect(f.evidence?.seen, `${f.type}: ${f.evidence?.took}`).toEqual(expect.any(String))
    }
  }, 180_000)
})

describe('the fork target', () => {
  it('boots once per run, gives the reorg drill a fresh fork of its own and stops it right after, leaves nothing running', async () => {
    const anvilsAtEnd: Record<string, string[]> = {}
    let boots = 0
    const report = await runSuite({
      paths: ['scenarios/defi/cooldown-blocks-unwind.yaml', 'scenarios/defi/reorg.yaml', 'scenarios/defi/blocked-close-trade.yaml'],
      seed: 1,
      source: { kind: 'embedded' },
      replay: 'test',
      onEvent: (e) => {
        if (e.type === 'booted') boots++
        // Which Anvil processes are alive as each scenario ends (the shared upstream and fork, and any fresh one).
        if (e.type === 'scenario-done') anvilsAtEnd[e.report.name] = liveProcesses().filter((p) => p.kind === 'anvil').map((p) => p.label).sort()
      },
    })
    expect(Object.fromEntries(report.scenarios.map((s) => [s.name, s.verdict]))).toEqual({ 'cooldown-blocks-unwind': 'held', 'reorg-after-cycles': 'held', 'blocked-close-trade': 'held' })
    expect(boots).toBe(1)
    // The fresh fork is gone by the time its scenario is reported; the shared fork stays for the next.
    expect(anvilsAtEnd['reorg-after-cycles']).toEqual(anvilsAtEnd['cooldown-blocks-unwind'])
    expect(anvilsAtEnd['blocked-close-trade']).toEqual(anvilsAtEnd['cooldown-blocks-unwind'])
    expect(anvilsAtEnd['blocked-close-trade']?.length).toBeGreaterThan(0)
    expect(liveProcesses()).toEqual([])
  })
})
