import { describe, expect, it } from 'vitest'
import { runSuite } from '../src/scenario/suite.js'

/**
 * Issue 10, the bounty-cap false alarm: the reference vault's cap moves inside cycle() (its TWAP
 * refreshes first), so a cap read before the transaction failed the unmodified vault after a long
 * warp under a gas spike ("62.624894 vs cap 62.390449"). The cap is now read as the vault applied
 * it (BountyPaid's `cap` field), and the bounty can be bounded independently (assets, gas paid).
 */
describe('bountyCapped reads the cap the protocol applied', () => {
  it('a gas spike after a 60 min warp before one cycle holds on the reference vault (it failed with the cap read before the call)', async () => {
    const report = await runSuite({ paths: ['test/fixtures/protocol/gas-spike-after-warp.yaml'], seed: 7, source: { kind: 'embedded' }, replay: 'test' })
    const [s] = report.scenarios
    expect(s?.reason).toBe('all 6 checks held through baseline, inject and recover')
    const inject = s?.checks.filter((c) => c.phase === 'inject') ?? []
    expect(inject.map((c) => [c.name, c.ok])).toEqual([
      ['bounty-capped', true],
      ['bounty-bounded', true],
    ])
    expect(inject[0]?.observed).toMatch(/^1 bounties; largest over cap: ([\d.]+) vs cap \1$/)
    expect(inject[0]?.expected).toBe("every bounty ≤ its cap (the BountyPaid event's `cap`)")
    expect(inject[1]?.observed).toMatch(/^1 bounties; largest over cap: [\d.]+ vs cap [\d.]+; largest over gas bound: [\d.]+ vs [\d.]+ \(inject cycle#1\); largest over assets bound: [\d.]+ vs [\d.]+ \(inject cycle#1\)$/)
    expect(s?.verdict).toBe('held')
  }, 300_000)

  it('the no-bounty-guard build (pays the spiked gas price) still fails, and the independent assets bound catches it on its own', async () => {
    const report = await runSuite({ paths: ['test/fixtures/protocol/gas-spike-after-warp.yaml'], seed: 7, source: { kind: 'embedded', vaultBuild: 'ReferenceVault.no-bounty-guard' }, replay: 'test' })
    const [s] = report.scenarios
    expect(s?.verdict).toBe('failed')
    const inject = s?.checks.filter((c) => c.phase === 'inject') ?? []
    expect(inject.map((c) => [c.name, c.ok])).toEqual([
      ['bounty-capped', false],
      ['bounty-bounded', false],
    ])
    // Over 10 bps of the assets: the assets bound catches it on its own.
    const assets = /largest over assets bound: ([\d.]+) vs ([\d.]+)/.exec(inject[1]?.observed ?? '')
    expect(Number(assets?.[1])).toBeGreaterThan(Number(assets?.[2]))
  }, 300_000)
})
