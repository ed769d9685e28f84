import { describe, expect, it } from 'vitest'
import { runSuite } from '../src/scenario/suite.js'

/**
 * Every DeFi drill must hold against the reference vault and fail against a test build of the
 * vault with the matching guard removed (contracts/ReferenceVault.sol, GUARD_* constants):
 * the checks can fail, and do, exactly where the protocol is broken.
 */
const drills = [
  { file: 'scenarios/defi/oracle-divergence.yaml', build: 'ReferenceVault.no-oracle-guard', broken: /only-unwind-engaged|deposits-paused|deposit/ },
  { file: 'scenarios/defi/blocked-close-trade.yaml', build: 'ReferenceVault.no-close-guard', broken: /no-partial-state|no-funds-lost|step/ },
  { file: 'scenarios/defi/cooldown-blocks-unwind.yaml', build: 'ReferenceVault.no-cooldown-guard', broken: /no-funds-lost|books-match-perp|no-partial-state/ },
  { file: 'scenarios/defi/gas-spike-bounty.yaml', build: 'ReferenceVault.no-bounty-guard', broken: /bounty-capped/ },
  { file: 'scenarios/defi/flash-reserve-cap.yaml', build: 'ReferenceVault.no-flash-guard', broken: /no-funds-lost/ },
] as const

describe('DeFi drills: reference vault holds, guard-removed builds fail', () => {
  it('the whole defi suite holds on the reference vault', async () => {
    const report = await runSuite({ paths: ['scenarios/defi'], seed: 7, source: { kind: 'embedded' }, replay: 'test' })
    expect(report.scenarios.map((s) => [s.name, s.verdict])).toEqual(report.scenarios.map((s) => [s.name, 'held']))
    expect(report.scenarios.length).toBeGreaterThanOrEqual(7)
    // Faults took effect and were seen by the vault.
    const oracle = report.scenarios.find((s) => s.name === 'oracle-divergence-only-unwind')
    expect(oracle?.faults[0]?.evidence?.seen).toMatch(/RiskModeChanged\(0, 1/)
    const blocked = report.scenarios.find((s) => s.name === 'blocked-close-trade')
    expect(blocked?.faults[0]?.evidence?.seen).toMatch(/reverted: perp: market closed/)
    expect(blocked?.cycles.inject).toEqual({ total: 1, reverted: 1 })
    const stress = report.scenarios.find((s) => s.name === 'repeated-cycle-stress')
    expect(stress?.cycles.inject.total).toBeGreaterThanOrEqual(200)
  })

  for (const drill of drills) {
    it(`${drill.file} fails on ${drill.build}`, async () => {
      const report = await runSuite({ paths: [drill.file], seed: 7, source: { kind: 'embedded', vaultBuild: drill.build }, replay: 'test' })
      const [scenario] = report.scenarios
      expect(scenario?.verdict).toBe('failed')
      const broken = scenario?.checks.filter((c) => !c.ok).map((c) => c.name) ?? []
      expect(broken.join(' ')).toMatch(drill.broken)
      expect(broken.every((name) => scenario?.checks.find((c) => c.name === name)?.kind !== undefined)).toBe(true)
    })
  }
})

describe('a protocol that reverts during set-up', () => {
  it('ends each fork scenario `error` naming the step and the revert reason, with a report (not a crash)', async () => {
    // bounty-units: the bounty's price term lost its 1e18 scale, so every cycle() of the embedded
    // chain's history reverts; the run still reports, once per fork scenario (set up once).
    const report = await runSuite({ paths: ['scenarios/defi/gas-spike-bounty.yaml', 'scenarios/defi/reorg.yaml'], seed: 7, source: { kind: 'embedded', vaultBuild: 'ReferenceVault.bounty-units' }, replay: 'test' })
    expect(report.scenarios.map((s) => s.verdict)).toEqual(['error', 'error'])
    for (const s of report.scenarios) expect(s.reason).toMatch(/setup reverted at vault\.cycle\(\): ERC20: insufficient balance/)
    expect(report.scenarios[0]?.checks).toEqual([])
  })
})

