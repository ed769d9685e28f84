// Guard discovery on the real fork (src/explore/guards.ts): on the reference vault the three
// thresholds the vault holds (read from the contract: maxDeviationBps(), heartbeat(), maxGasPrice())
// are found exactly, each way; on a build without the oracle guard nothing flips, and the rows at
// the search range's top fail; on a units bug (deviation-units) the threshold found is not the
// declared one and its comparison row fails naming both, as does the row just over the declared
// guard. A bad `guards:` block exits 2 naming the field (the CLI from dist/: `npx tsc -p tsconfig.json` first).
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Address } from 'viem'
import { describe, expect, it } from 'vitest'
import { tryWord } from '../src/chain/views.js'
import { forkTarget } from '../src/experiment/targets/fork.js'
import { discoverGuards, discoveryLimits } from '../src/explore/guards.js'
import { explore } from '../src/explore/run.js'
import { traceEntry } from '../src/explore/trace.js'
import { referenceProtocol } from '../src/scenario/protocol.js'
import { KEEPER_GAS } from '../src/steps/tx.js'
import { devAccounts } from '../src/targets/embedded.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const bin = path.join(root, 'bin', 'forkchaos.js')
const info = { seed: 7, replay: '', emit: () => {} }

/** Boots the embedded fork (of a build), traces cycle() and runs the discovery with nothing declared. */
async function discover(build?: string) {
  const target = forkTarget({ source: { kind: 'embedded', ...(build ? { vaultBuild: `ReferenceVault.${build}` } : {}) } })
  try {
    await target.boot(info)
    const fork = target.current()
    if (!fork?.book.vault) throw new Error('no fork')
    const rpc = fork.anvil.rpc
    const vault = fork.book.vault as Address
    const base = { from: devAccounts.keeper as Address, to: vault, entry: 'cycle()', gas: KEEPER_GAS }
    const trace = await traceEntry(rpc, { ...base, book: fork.book as Record<string, Address> })
    const found = await discoverGuards(rpc, { ...base, dependencies: trace.dependencies, bountyEvent: referenceProtocol.bountyEvent, declared: {} })
    const read = async (fn: string) => Number(await tryWord(rpc, vault, `${fn}() returns (uint256)`))
    return { found, vault: { maxDeviationBps: await read('maxDeviationBps'), heartbeat: await read('heartbeat'), maxGasPriceGwei: (await read('maxGasPrice')) / 1e9 } }
  } finally {
    await target.stop()
  }
}
const threshold = (d: Awaited<ReturnType<typeof discover>>['found'], axis: string) => d.guards.find((g) => g.axis === axis)?.threshold

describe('explore: guard discovery by perturbation', () => {
  it("finds the reference vault's three thresholds exactly, within the call budget", async () => {
    const { found, vault } = await discover()
    expect(vault).toEqual({ maxDeviationBps: expect.any(Number), heartbeat: expect.any(Number), maxGasPriceGwei: expect.any(Number) })
    expect(found.guards.map((g) => [g.axis, g.threshold])).toEqual([
      ['price-down', vault.maxDeviationBps],
      ['price-up', vault.maxDeviationBps],
      ['feed-age', vault.heartbeat],
      ['gas-price', vault.maxGasPriceGwei],
    ])
    // Past each one the outcome changes: the risk mode flips (the vault's RiskModeChanged), the bounty stops rising.
    expect(found.guards.map((g) => g.outcome.split(' with ')[0])).toEqual(['emits RiskModeChanged, UnwindDeferred', 'emits RiskModeChanged, UnwindDeferred', 'emits RiskModeChanged', `the bounty stops rising at ${vault.maxGasPriceGwei} gwei (${found.guards[3]?.outcome.match(/\((\d+) wei/)?.[1]} wei of the asset from there on)`])
    // A bisection each (12 of 5,000 bps each way, 22 of 30 days, 43 of 10,000 gwei to the wei), with the range's top and the first
    // point past the threshold (gas: twice the top, the top and the bottom), and the healthy trace.
    expect(found.guards.map((g) => g.calls)).toEqual([14, 14, 24, 46])
    expect(found.calls).toBe(99)
    expect(found.calls).toBeLessThanOrEqual(discoveryLimits.calls)
    // Wide margin: it took 0.33 s here.
    expect(found.durationMs).toBeLessThan(20_000)
  }, 120_000)

  it('a build without the oracle guard: discovery finds none on the feed, and the rows at the range top fail (ONLY_UNWIND expected)', async () => {
    const { found } = await discover('no-oracle-guard')
    expect(found.guards.map((g) => [g.axis, g.threshold])).toEqual([
      ['price-down', undefined],
      ['price-up', undefined],
      ['feed-age', undefined],
      ['gas-price', 100],
    ])
    const source = { kind: 'embedded', vaultBuild: 'ReferenceVault.no-oracle-guard' } as const
    const target = forkTarget({ source })
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'explore-noguard-'))
    try {
      // Nothing declared: rows only around what was found, and at the top of each range where nothing was.
      const report = await explore({ source, entry: 'cycle()', seed: 7, out, replayFlags: ' --vault-build ReferenceVault.no-oracle-guard', faults: [], guards: true, declared: {}, target })
      expect(report.guards.guards.slice(0, 3).map((g) => g.outcome)).toEqual(Array(3).fill('no guard found: the entry reads no price feed (no dependency answers latestRoundData())'))
      const bad = report.cells.filter((c) => c.verdict !== 'held').map((c) => [c.name, c.verdict, c.checks['risk-mode']])
      expect(bad).toEqual([
        ['explore-price-feed-down-5000', 'failed', false],
        ['explore-price-feed-up-5000', 'failed', false],
        [`explore-stale-feed-${discoveryLimits.ageMaxS}`, 'failed', false],
      ])
      expect(report.cells.find((c) => c.name === 'explore-price-feed-up-5000')?.reason).toContain('safety check `risk-mode` broke in inject: riskMode 0')
      // No declaration, so no comparison rows.
      expect(report.cells.filter((c) => c.fault === 'guard.discovery')).toEqual([])
    } finally {
      await target.stop()
      fs.rmSync(out, { recursive: true, force: true })
    }
  }, 180_000)

  it('a units bug (deviation-units): the threshold found is not the declared one, and that row fails naming both', async () => {
    const source = { kind: 'embedded', vaultBuild: 'ReferenceVault.deviation-units' } as const
    const target = forkTarget({ source })
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'explore-units-'))
    try {
      const declared = referenceProtocol.guards?.deviationBps
      expect(declared).toBe(200)
      const report = await explore({ source, entry: 'cycle()', seed: 7, out, replayFlags: ' --vault-build ReferenceVault.deviation-units', faults: [], guards: true, target })
      // The deviation counted in tenths of the vault's unit: ten times the move is needed (2,010 bps flips it).
      expect(report.guards.guards.map((g) => [g.axis, g.threshold])).toEqual([
        ['price-down', 2009],
        ['price-up', 2009],
        ['feed-age', 86_400],
        ['gas-price', 100],
      ])
      const rows = Object.fromEntries(report.cells.map((c) => [c.name, c]))
      for (const direction of ['down', 'up']) {
        const row = rows[`explore-guard-price-${direction}`]
        expect(row?.verdict).toBe('failed')
        expect(row?.reason).toBe(`guard \`price-${direction}\` is not as declared: found 2009 bps, declared 200 bps (tolerance ±10 bps; 15 calls)`)
        // Just over the declared guard the vault must unwind; it does not.
        expect(rows[`explore-price-feed-${direction}-220`]?.checks['risk-mode']).toBe(false)
        expect(rows[`explore-price-feed-${direction}-180`]?.verdict).toBe('held')
      }
      expect(rows['explore-guard-feed-age']?.verdict).toBe('held')
      expect(rows['explore-guard-gas-price']?.verdict).toBe('held')
    } finally {
      await target.stop()
      fs.rmSync(out, { recursive: true, force: true })
    }
  }, 180_000)

  it('a bad `guards:` block exits 2 naming the field and the bound', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'guards-bad-'))
    try {
      const cases = [
        ['{ deviationBps: 0 }', '`protocol.guards.deviationBps` must be at least 1. Got `0`.', 'protocol.guards.deviationBps'],
        ['{ heartbeatS: 40000000 }', '`protocol.guards.heartbeatS` must be at most 31536000. Got `40000000`.', 'protocol.guards.heartbeatS'],
        ['{ maxGasPriceGwei: "100" }', '`protocol.guards.maxGasPriceGwei` must be number. Got `"100"`.', 'protocol.guards.maxGasPriceGwei'],
        ['{ maxGasPrice: 100 }', '`protocol.guards.maxGasPrice` is not a known field of protocol.guards.', 'protocol.guards'],
      ] as const
      for (const [guards, message, field] of cases) {
        const file = path.join(dir, 'bad.yaml')
        fs.writeFileSync(file, `name: bad-guards\nhypothesis: h\nprotocol:\n  vault: vault\n  entry: "cycle()"\n  guards: ${guards}\ninject:\n  steps:\n    - cycle: {}\n`)
        const run = spawnSync(process.execPath, [bin, 'validate', file], { cwd: root, encoding: 'utf8', timeout: 30_000 })
        expect(run.status, run.stderr).toBe(2)
        expect(run.stderr).toContain(`${file}:6: ${message}`)
        expect(run.stderr).toContain(`Field: ${field}`)
        expect(run.stderr).not.toMatch(/\n\s+at /)
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})
