// `forkchaos explore` on the embedded reference chain: on the reference vault every cell of the
// whole matrix holds (the CLI, exit 0), the checks whose view calls the faulted dependency judged
// on a read right after the fault's revert (`ok*`); the traced dependency list names the vault's
// real external calls. Each build that keeps a finding explore made on an earlier reference vault
// (ReferenceVault.trusts-close-return, .trusts-open-id) and no-close-guard fails its cell, and the
// scenario file explore writes, read by the normal loader and run by the engine `forkchaos run`
// uses, fails on that build and holds on the reference. A check that cannot be read after the
// revert either fails. Bad input exits 2 naming the flag (the CLI from dist/: `npx tsc -p
// tsconfig.json` first).
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { explore } from '../src/explore/run.js'
import { loadScenario } from '../src/scenario/loader.js'
import type { Scenario } from '../src/scenario/types.js'
import * as Experiment from '../src/experiment/experiment.js'
import { forkTarget } from '../src/experiment/targets/fork.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const bin = path.join(root, 'bin', 'forkchaos.js')
const cli = (args: string[]) => spawnSync(process.execPath, [bin, ...args], { cwd: root, encoding: 'utf8', timeout: 60_000 })
const close = 'closeTrade(uint256)'

describe('forkchaos explore', () => {
  it('on the reference vault every cell of the whole matrix holds (exit 0), views that call the faulted dependency read after its revert', () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'explore-ref-'))
    try {
      const run = cli(['explore', '--seed', '7', '--out', out])
      expect(run.status, run.stderr + run.stdout.slice(-3000)).toBe(0)
      const text = run.stdout
      expect(text).toContain('cycle() on 0xB7f8BC63BbcaD18155201308C8f3540b07f84F5e: 14 external functions')
      for (const dep of ['twap     update()', 'twap     consult()', 'feed     latestRoundData()', 'pair     getReserves()', 'perp     closeTrade(uint256)', 'perp     openTrade(uint256)', 'perp     tradeCollateral(uint256)', 'asset    transfer(address,uint256)'])
        expect(text, dep).toContain(dep)
      // The guards found by perturbing the entry's inputs, beside the dependency list: the vault's own defaults, each as declared.
      expect(text).toMatch(/\n {2}guards found by perturbing 4 inputs: \d+ calls \(budget 200\), [\d.]+ s\n/)
      for (const g of ['price-down 200 bps', 'price-up   200 bps', 'feed-age   86400 s', 'gas-price  100 gwei']) expect(text, g).toMatch(new RegExp(`\\n {4}${g}\\s+declared`))
      expect(text).toMatch(/\n62 cells: 62 held, 0 not · [\d.]+ s · seed 7\n/)
      const rows = text.split('\n').filter((l) => /^ {2}(revert|garbage|gas|oracle|spike|shortfall|found) /.test(l))
      // 14 external functions × 3 dependency faults, then the guard rows around each threshold found (which is the one declared):
      // the feed 180/220/2,000 bps under and over the TWAP (its answer sits 48.6 bps under it, so the moves differ), 77,760/95,040/864,000 s
      // old, gas at 90/110/2,000 gwei; a 50/90 % shortfall of the lender's and of the pool's balance under a 400k deposit; and the four
      // comparisons of found with declared.
      expect(rows).toHaveLength(62)
      expect(rows.slice(42).map((r) => r.replace(/\s+(ok|-)\s.*$/, '').replace(/\s+/g, ' ').trim())).toEqual([
        'oracle feed down 132 bps, 180 under TWAP (guard 200 bps)',
        'oracle feed down 172 bps, 220 under TWAP (guard 200 bps)',
        'oracle feed down 1961 bps, 2000 under TWAP (guard 200 bps)',
        'oracle feed up 230 bps, 180 over TWAP (guard 200 bps)',
        'oracle feed up 270 bps, 220 over TWAP (guard 200 bps)',
        'oracle feed up 2059 bps, 2000 over TWAP (guard 200 bps)',
        'oracle feed 77760 s old (guard 86400 s)',
        'oracle feed 95040 s old (guard 86400 s)',
        'oracle feed 864000 s old (guard 86400 s)',
        'spike chain base fee 90 gwei (guard 100 gwei)',
        'spike chain base fee 110 gwei (guard 100 gwei)',
        'spike chain base fee 2000 gwei (guard 100 gwei)',
        'shortfall lender 50 % asset cut, 400k deposit',
        'shortfall lender 90 % asset cut, 400k deposit',
        'shortfall pair 50 % reserves cut, 400k deposit',
        'shortfall pair 90 % reserves cut, 400k deposit',
        'found vault price-down found 200 bps, declared 200 bps',
        'found vault price-up found 200 bps, declared 200 bps',
        'found vault feed-age found 86400 s, declared 86400 s',
        'found vault gas-price found 100 gwei, declared 100 gwei',
      ])
      expect(rows.filter((r) => !r.endsWith(' held'))).toEqual([])
      expect(rows.filter((r) => / FAIL | UNREAD /.test(r))).toEqual([])
      // The six cells whose share price cannot be read under the fault (sharePrice() calls the TWAP and both balances): judged after the revert.
      const late = rows.filter((r) => r.includes(' ok* ')).map((r) => r.split(/\s+/).slice(1, 3).join(' '))
      expect(late).toEqual(['revert twap.consult()', 'garbage twap.consult()', 'revert asset.balanceOf(address)', 'garbage asset.balanceOf(address)', 'revert other.balanceOf(address)', 'garbage other.balanceOf(address)'])
      expect(fs.readdirSync(out)).toEqual([])
    } finally {
      fs.rmSync(out, { recursive: true, force: true })
    }
  }, 120_000)

  it('each finding kept as a build fails its cell; the written file (normal loader, run engine) fails there and holds on the reference', async () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'explore-'))
    const cases = [
      { build: 'no-close-guard', only: close, fault: 'dependency.revert', cell: 'explore-revert-perp-closetrade', check: 'no-funds-lost', reason: 'safety check `no-funds-lost` broke in inject: sharePrice 0.69' },
      { build: 'trusts-close-return', only: close, fault: 'dependency.garbage', cell: 'explore-garbage-perp-closetrade', check: 'no-funds-lost', reason: 'safety check `no-funds-lost` broke in inject: sharePrice 0.69' },
      { build: 'trusts-open-id', only: 'openTrade(uint256)', fault: 'dependency.garbage', cell: 'explore-garbage-perp-opentrade', check: 'cycles-run', reason: 'first revert: PerpDex: no trade' },
    ] as const
    const written: { file: string; cell: string }[] = []
    try {
      for (const c of cases) {
        const source = { kind: 'embedded', vaultBuild: `ReferenceVault.${c.build}` } as const
        const target = forkTarget({ source })
        try {
          const flags = ` --vault-build ReferenceVault.${c.build}`
          const dir = path.join(out, c.build)
          const broken = await explore({ source, entry: 'cycle()', seed: 7, out: dir, replayFlags: flags, only: [c.only], faults: [c.fault], target })
          if (c.build === 'no-close-guard') expect(broken.trace.dependencies.find((d) => d.signature === close)?.failure).toBe('caught')
          expect(broken.cells.map((x) => [x.name, x.verdict]), c.build).toEqual([[c.cell, 'failed']])
          const cell = broken.cells[0]
          expect(cell?.checks[c.check], c.build).toBe(false)
          expect(cell?.reason).toContain(c.reason)
          const file = path.join(dir, `${c.cell}.yaml`)
          expect(cell?.file).toBe(file)
          expect(cell?.replay).toBe(`npx forkchaos run ${file} --seed 7${flags}`)
          expect(fs.readFileSync(file, 'utf8')).toContain(`# replay: ${cell?.replay}`)
          // The written file, read by the normal loader and run by the engine `run` uses, on that build: it fails the same way.
          const scenario = loadScenario(file)
          expect(scenario.name).toBe(c.cell)
          const again = await Experiment.run(scenario, target, { seed: 7, replay: cell?.replay ?? '' })
          expect(again.verdict).toBe('failed')
          expect(again.reason).toContain(c.reason)
          written.push({ file, cell: c.cell })
        } finally {
          await target.stop()
        }
      }
      // The same files on the reference vault: each holds, its fault seen taking effect (the cycle under it reverts whole).
      const target = forkTarget({ source: { kind: 'embedded' } })
      try {
        for (const w of written) {
          const held = await Experiment.run(loadScenario(w.file), target, { seed: 7, replay: 'test' })
          expect(held.verdict, w.cell).toBe('held')
          expect(held.cycles.inject, w.cell).toEqual({ total: 1, reverted: 1 })
          expect(held.faults[0]?.evidence?.seen, w.cell).toMatch(/inject cycle#1 reverted: (perp: market closed|forkchaos explore|Vault: close not paid|Vault: trade not opened)/)
        }
      } finally {
        await target.stop()
      }
    } finally {
      fs.rmSync(out, { recursive: true, force: true })
    }
  }, 180_000)

  it('a guard row fails where the guard is broken: one-sided-feed-guard misses the feed moving up past 200 bps (risk-mode), and only there', async () => {
    const source = { kind: 'embedded', vaultBuild: 'ReferenceVault.one-sided-feed-guard' } as const
    const target = forkTarget({ source })
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'explore-guards-'))
    try {
      const report = await explore({ source, entry: 'cycle()', seed: 7, out, replayFlags: ' --vault-build ReferenceVault.one-sided-feed-guard', only: [], guards: true, target })
      // Nothing flips with the feed up to 5,000 bps over the TWAP: rows at the declared 180/220/2,000 and at the range's top, 5,000.
      expect(report.guards.guards.find((g) => g.axis === 'price-up')?.threshold).toBeUndefined()
      expect(report.cells).toHaveLength(21)
      expect(report.cells.filter((c) => c.verdict !== 'held').map((c) => [c.name, c.verdict, c.checks['risk-mode'] ?? c.checks['guard-as-declared']])).toEqual([
        ['explore-price-feed-up-220', 'failed', false],
        ['explore-price-feed-up-2000', 'failed', false],
        ['explore-price-feed-up-5000', 'failed', false],
        ['explore-guard-price-up', 'failed', false],
      ])
      expect(report.cells.find((c) => c.name === 'explore-price-feed-up-220')?.reason).toContain('safety check `risk-mode` broke in inject: riskMode 0')
      expect(report.cells.find((c) => c.name === 'explore-guard-price-up')?.reason).toBe('guard `price-up` is not as declared: none found within [0, 5000] bps, declared 200 bps (tolerance ±10 bps; 1 call)')
      expect(fs.readdirSync(out).sort()).toEqual(['explore-price-feed-up-2000.yaml', 'explore-price-feed-up-220.yaml', 'explore-price-feed-up-5000.yaml'])
    } finally {
      await target.stop()
      fs.rmSync(out, { recursive: true, force: true })
    }
  }, 120_000)

  it('a check whose view reverts under the fault is judged on a read after the revert; one that cannot be read then either fails', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'explore-reread-'))
    const file = path.join(dir, 'reread.yaml')
    // bountyCap() and sharePrice() both call twap.consult(); the inject step makes bountyCap() overflow for good.
    fs.writeFileSync(
      file,
      `name: reread-after-revert
hypothesis: h
protocol: reference
checks:
  - { name: floor, kind: safety, sharePriceFloor: { minBps: 9950 } }
  - { name: cap, kind: safety, view: { to: vault, fn: "bountyCap() returns (uint256)", atLeast: "0" } }
baseline:
  steps:
    - cycle: {}
inject:
  faults:
    - { type: dependency.revert, target: twap, params: { selectors: ["consult()"], reason: "oracle down" } }
  steps:
    - call: { to: vault, fn: "setParams(uint256,uint256,uint256,uint256,uint256,uint256,uint256,uint256,uint256)", args: ["200", "86400", "100000000000", "1e70", "2", "3000", "1000", "50", "50"] }
`,
    )
    const target = forkTarget({ source: { kind: 'embedded' } })
    try {
      const report = await Experiment.run(loadScenario(file), target, { seed: 7, replay: 'test' })
      const inject = Object.fromEntries(report.checks.filter((c) => c.phase === 'inject').map((c) => [c.name, c]))
      expect(inject.floor?.ok).toBe(true)
      expect(inject.floor?.observed).toMatch(/^not readable under the fault \(the check could not be evaluated: eth_call: execution reverted: oracle down \(code 3\)\); read once the faults were reverted: sharePrice 0\.99\d+$/)
      expect(inject.cap?.ok).toBe(false)
      expect(inject.cap?.observed).toMatch(/^not readable under the fault \(the check could not be evaluated: .*oracle down.*\); read once the faults were reverted: the check could not be evaluated: .*overflow/)
      expect(report.verdict).toBe('failed')
      expect(report.reason).toContain('safety check `cap` broke in inject')
    } finally {
      await target.stop()
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }, 120_000)

  it('bad input exits 2 naming the flag', () => {
    const entry = cli(['explore', '--entry', 'nope()'])
    expect(entry.status).toBe(2)
    expect(entry.stderr).toContain('`--entry` must be a state-changing function of the reference vault without arguments: cycle()')
    expect(entry.stderr).toContain('Got `nope()`')
    const flag = cli(['explore', '--fail-on', 'failed'])
    expect(flag.status).toBe(2)
    expect(flag.stderr).toContain("unknown option '--fail-on'")
    const build = cli(['explore', '--vault-build', 'nope'])
    expect(build.status).toBe(2)
    expect(build.stderr).toContain('`--vault-build` must name a test build of the reference vault')
  })
})
