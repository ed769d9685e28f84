// `forkchaos explore` on the embedded reference chain: the traced dependency list names the
// vault's real external calls, a closeTrade revert propagates on the reference vault (its cells
// hold) and is caught on ReferenceVault.no-close-guard (its revert cell fails, and the scenario
// file explore writes, read by the normal loader and run by the engine `forkchaos run` uses, fails
// on that build and holds on the reference). One finding on the unmodified vault is asserted as
// such: closeTrade answering garbage without closing loses funds. Bad input exits 2 naming the
// flag (the CLI from dist/: `npx tsc -p tsconfig.json` first).
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
  it('lists the dependencies; on no-close-guard the closeTrade revert cell fails, its written file (normal loader, run engine) fails there and holds on the reference', async () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'explore-'))
    const ncg = forkTarget({ source: { kind: 'embedded', vaultBuild: 'ReferenceVault.no-close-guard' } })
    let scenario: Scenario
    try {
      const broken = await explore({ source: { kind: 'embedded', vaultBuild: 'ReferenceVault.no-close-guard' }, entry: 'cycle()', seed: 7, out, replayFlags: ' --vault-build ReferenceVault.no-close-guard', only: [close], faults: ['dependency.revert'], target: ncg })
      expect(broken.trace.dependencies.find((d) => d.signature === close)?.failure).toBe('caught')
      expect(broken.cells.map((c) => c.name)).toEqual(['explore-revert-perp-closetrade'])
      const cell = broken.cells[0]
      expect(cell?.verdict).toBe('failed')
      expect(cell?.checks['no-funds-lost']).toBe(false)
      const file = path.join(out, 'explore-revert-perp-closetrade.yaml')
      expect(cell?.file).toBe(file)
      expect(cell?.replay).toBe(`npx forkchaos run ${file} --seed 7 --vault-build ReferenceVault.no-close-guard`)
      expect(fs.readFileSync(file, 'utf8')).toContain(`# replay: ${cell?.replay}`)
      // The written file, read by the normal loader and run by the engine `run` uses, on that build: it fails the same way.
      scenario = loadScenario(file)
      expect(scenario.name).toBe('explore-revert-perp-closetrade')
      const again = await Experiment.run(scenario, ncg, { seed: 7, replay: cell?.replay ?? '' })
      expect(again.verdict).toBe('failed')
      expect(again.reason).toContain('safety check `no-funds-lost` broke in inject')
    } finally {
      await ncg.stop()
    }

    // The reference vault: its real external calls, a closeTrade revert propagates, and the file holds.
    const target = forkTarget({ source: { kind: 'embedded' } })
    try {
      const refOut = path.join(out, 'ref')
      const report = await explore({ source: { kind: 'embedded' }, entry: 'cycle()', seed: 7, out: refOut, replayFlags: '', only: [close], target })
      const deps = new Map(report.trace.dependencies.map((d) => [`${d.contract}.${d.signature}`, d]))
      for (const name of ['twap.update()', 'twap.consult()', 'feed.latestRoundData()', 'feed.decimals()', 'pair.getReserves()', 'perp.closeTrade(uint256)', 'perp.openTrade(uint256)', 'asset.transfer(address,uint256)'])
        expect(deps.has(name), name).toBe(true)
      expect(deps.get('perp.closeTrade(uint256)')).toMatchObject({ selector: '0xa39cea84', view: false, failure: 'propagates' })
      expect(deps.get('twap.consult()')).toMatchObject({ selector: '0x7eeda703', view: true })
      expect(report.trace.reads.find((r) => r.contract === 'vault')?.slots).toBeGreaterThan(0)
      expect(report.cells.map((c) => `${c.fault} ${c.verdict}`)).toEqual(['dependency.revert held', 'dependency.garbage failed', 'dependency.gas held'])
      // A finding on the unmodified vault: closeTrade answering without closing (garbage) loses funds.
      expect(report.cells[1]?.checks['no-funds-lost']).toBe(false)
      expect(fs.readdirSync(refOut)).toEqual(['explore-garbage-perp-closetrade.yaml'])
      const held = await Experiment.run(scenario, target, { seed: 7, replay: 'test' })
      expect(held.verdict).toBe('held')
      expect(held.checks.filter((c) => c.name === 'no-funds-lost').every((c) => c.ok)).toBe(true)
    } finally {
      await target.stop()
      fs.rmSync(out, { recursive: true, force: true })
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
