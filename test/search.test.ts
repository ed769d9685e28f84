// `forkchaos search` on the embedded reference chain: against ReferenceVault.spike-cap-threshold
// (its gas price capped only beyond 10× maxGasPrice, so a smaller spike overpays the keeper) seed 3
// finds a schedule breaking `bounty-capped` in its first episode, shrinks it to one gas spike at
// its lowest level and one cycle, and the written scenario, run by `forkchaos run`, fails on that
// build and holds on the reference. Bad input exits 2 naming the flag and its bound (the CLI from
// dist/: `npx tsc -p tsconfig.json` first).
import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { search, shrink } from '../src/search/run.js'
import type { Item } from '../src/search/schedule.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const bin = path.join(root, 'bin', 'forkchaos.js')
const build = 'ReferenceVault.spike-cap-threshold'

/** The CLI as a child process, several at once (each boots its own fork). */
function cli(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const timer = setTimeout(() => child.kill('SIGTERM'), 90_000)
    child.on('error', reject)
    child.on('close', (status) => {
      clearTimeout(timer)
      resolve({ status, stdout, stderr })
    })
  })
}

describe('forkchaos search', () => {
  it('seed 3 on spike-cap-threshold: finds bounty-capped broken, shrinks it, the written file fails there and holds on the reference (forkchaos run)', async () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'search-'))
    try {
      const report = await search({ source: { kind: 'embedded', vaultBuild: build }, seed: 3, out, episodes: 5, timeMs: 60_000, steps: 8, replayFlags: ` --vault-build ${build}` })
      expect(report.verdict).toBe('failed')
      expect(report.episodes).toBe(1)
      const f = report.failure
      expect(f?.check).toBe('bounty-capped')
      expect(f?.reason).toContain('safety check `bounty-capped` broke in inject: first broke after inject.steps[1] (inject cycle#1)')
      expect(f?.original).toBe(8)
      expect(f?.shrunk).toBe(2)
      const file = path.join(out, 'search-3-bounty-capped.yaml')
      expect(f?.file).toBe(file)
      expect(f?.replay).toBe(`npx forkchaos run ${file} --seed 3 --vault-build ${build}`)
      const text = fs.readFileSync(file, 'utf8')
      // The minimal schedule: a spike just over the 100 gwei cap (the lowest level of its ladder) and one cycle.
      expect(text.split('inject:\n')[1]).toBe(
        [
          '  faults: []',
          '  steps:',
          '    - fault: { id: f1, apply: { type: gas.spike, params: { baseFeeGwei: 150 } } }',
          '    - cycle: { count: 1, expect: any }',
          `# replay: ${f?.replay}`,
          '',
        ].join('\n'),
      )
      const [broken, reference] = await Promise.all([
        cli(['run', file, '--seed', '3', '--vault-build', build, '--report-dir', path.join(out, 'broken')]),
        cli(['run', file, '--seed', '3', '--report-dir', path.join(out, 'reference')]),
      ])
      expect(broken.status, broken.stderr).toBe(1)
      expect(broken.stdout).toContain('failed   search-3-bounty-capped')
      expect(broken.stdout).toContain('safety check `bounty-capped` broke in inject')
      expect(reference.status, reference.stderr).toBe(0)
      expect(reference.stdout).toContain('held     search-3-bounty-capped')
    } finally {
      fs.rmSync(out, { recursive: true, force: true })
    }
  }, 150_000)

  it('bad input exits 2 naming the flag and its bound', async () => {
    const [episodes, time] = await Promise.all([cli(['search', '--episodes', '0']), cli(['search', '--steps', '8', '--time', '2h'])])
    expect([episodes.status, time.status]).toEqual([2, 2])
    expect(episodes.stderr).toBe('forkchaos: `--episodes` must be a whole number from 1 to 100,000. Got `0`.\n')
    expect(time.stderr).toBe('forkchaos: `--time` must be at most 1h. Got `"2h"`.\n')
  }, 60_000)

  it('shrink drops faults with their reverts, then steps, then lowers levels, each candidate re-run', async () => {
    // A stand-in for the chain: fails while fault 7 is applied at level ≥ 1 before some cycle.
    const fails = async (c: Item[]) => {
      const k = c.findIndex((i) => i.kind === 'apply' && i.fault === 7 && i.level >= 1)
      return k >= 0 && c.slice(k + 1).some((i) => i.kind === 'cycle')
    }
    const items: Item[] = [
      { kind: 'cycle', level: 2 },
      { kind: 'apply', id: 'f0', fault: 3, level: 0 },
      { kind: 'deposit', level: 1 },
      { kind: 'apply', id: 'f1', fault: 7, level: 2 },
      { kind: 'warp', level: 2 },
      { kind: 'revert', id: 'f0' },
      { kind: 'cycle', level: 2 },
      { kind: 'revert', id: 'f1' },
      { kind: 'withdraw', level: 0 },
    ]
    expect(await fails(items)).toBe(true)
    expect(await shrink(items, fails)).toEqual([
      { kind: 'apply', id: 'f1', fault: 7, level: 1 },
      { kind: 'cycle', level: 0 },
    ])
    // A schedule that does not fail comes back as it was (nothing to drop keeps a failure).
    const never = async () => false
    expect(await shrink(items, never)).toEqual(items)
  })
})
