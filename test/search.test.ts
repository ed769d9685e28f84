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
import { isAlive } from '../src/process/registry.js'
import { forkTarget } from '../src/experiment/targets/fork.js'
import { startUpstream } from '../src/targets/embedded.js'
import type { Item } from '../src/search/schedule.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const bin = path.join(root, 'bin', 'forkchaos.js')
const build = 'ReferenceVault.spike-cap-threshold'

/** The CLI as a child process, several at once (each boots its own fork). */
function cli(args: string[], env: Record<string, string> = {}, onSpawn?: (child: ReturnType<typeof spawn>) => void): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } })
    onSpawn?.(child)
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

/**
 * The processes a CLI run started, from the pid files of its own state dir, polled while it runs
 * (`forkchaos` writes one per process it starts and removes it when the process is stopped).
 */
function watchPids(stateDir: string): { seen: Map<number, string>; stop(): void } {
  const seen = new Map<number, string>()
  const dir = path.join(stateDir, 'pids')
  const timer = setInterval(() => {
    for (const f of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
      if (!f.endsWith('.json')) continue
      try {
        const entry = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as { pid: number; label: string }
        seen.set(entry.pid, entry.label)
      } catch {
        // Removed between the listing and the read: stopped already.
      }
    }
  }, 20)
  return { seen, stop: () => clearInterval(timer) }
}

describe('forkchaos search --workers', () => {
  // no-bounty-guard, seed 5: episodes 1–4 hold and episode 5 breaks `bounty-capped`, so with two
  // forks episodes run beside the failing one and after it, and the shrink must not see them.
  const failing = (out: string, workers: number) => ['search', '--seed', '5', '--episodes', '40', '--vault-build', 'ReferenceVault.no-bounty-guard', '--out', out, '--workers', String(workers), '--json']

  it('2 workers find the same first failing episode, shrink it the same way and write the same file as 1; every Anvil stopped', async () => {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'search-workers-'))
    const [one, two] = [path.join(base, 'one'), path.join(base, 'two')]
    const state = path.join(base, 'state')
    const watch = watchPids(state)
    try {
      const [a, b] = await Promise.all([cli(failing(one, 1)), cli(failing(two, 2), { FORKCHAOS_STATE_DIR: state })])
      watch.stop()
      expect(a.status, a.stderr).toBe(1)
      expect(b.status, b.stderr).toBe(1)
      const [ra, rb] = [JSON.parse(a.stdout), JSON.parse(b.stdout)]
      expect(ra.failure).toMatchObject({ episode: 5, check: 'bounty-capped', original: 8 })
      for (const field of ['episode', 'check', 'original', 'shrunk', 'shrinkRuns'] as const) expect(rb.failure[field], field).toBe(ra.failure[field])
      expect([ra.verdict, ra.episodes]).toEqual(['failed', 5])
      expect([rb.verdict, rb.episodes]).toEqual(['failed', 5])
      const file = (dir: string) => fs.readFileSync(path.join(dir, 'search-5-bounty-capped.yaml'), 'utf8').replaceAll(dir, 'OUT')
      expect(file(two)).toBe(file(one))
      // The 2-worker run started the upstream and two forks, and none is left.
      const labels = [...watch.seen.values()].sort()
      expect(labels).toEqual(['fork', 'fork', 'upstream'])
      expect([...watch.seen.keys()].filter(isAlive)).toEqual([])
      expect(fs.readdirSync(path.join(state, 'pids')).filter((f) => f.endsWith('.json'))).toEqual([])
    } finally {
      watch.stop()
      fs.rmSync(base, { recursive: true, force: true })
    }
  }, 150_000)

  it('SIGTERM while 2 workers run: exit 143, every Anvil stopped', async () => {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'search-workers-'))
    const state = path.join(base, 'state')
    const watch = watchPids(state)
    try {
      let sent = false
      const run = await cli(['search', '--seed', '3', '--episodes', '5000', '--workers', '2', '--out', path.join(base, 'out')], { FORKCHAOS_STATE_DIR: state }, (child) => {
        // Once both forks are up (and episodes running), stop the run.
        const poll = setInterval(() => {
          if ([...watch.seen.values()].filter((l) => l === 'fork').length === 2 && !sent) {
            sent = true
            clearInterval(poll)
            setTimeout(() => child.kill('SIGTERM'), 1_000)
          }
        }, 50)
        child.on('close', () => clearInterval(poll))
      })
      watch.stop()
      expect(sent).toBe(true)
      expect(run.status, run.stderr).toBe(143)
      expect(run.stderr).toContain('SIGTERM: reverting faults and stopping processes')
      expect([...watch.seen.values()].sort()).toEqual(['fork', 'fork', 'upstream'])
      // Stopped by the teardown, or killed by the exit hook as the CLI exits (then gone moments later; up to 10 s on a busy machine).
      for (let i = 0; i < 200 && [...watch.seen.keys()].some(isAlive); i++) await new Promise((r) => setTimeout(r, 50))
      expect([...watch.seen].filter(([pid]) => isAlive(pid))).toEqual([])
    } finally {
      watch.stop()
      fs.rmSync(base, { recursive: true, force: true })
    }
  }, 150_000)

  it('--workers out of range, or with --target devnet: exit 2 naming the flag', async () => {
    const [zero, many, devnet] = await Promise.all([cli(['search', '--workers', '0']), cli(['search', '--workers', '9']), cli(['search', '--target', 'devnet', '--workers', '2'])])
    expect([zero.status, many.status, devnet.status]).toEqual([2, 2, 2])
    expect(zero.stderr).toBe('forkchaos: `--workers` must be a whole number from 1 to 8. Got `0`.\n')
    expect(many.stderr).toBe('forkchaos: `--workers` must be a whole number from 1 to 8. Got `9`.\n')
    expect(devnet.stderr).toContain('`--workers` is a fork option')
  }, 60_000)

  it('the read cache changes no judgement: 20 episodes of seed 3, each check of each episode the same (values to 5 digits) with it and without', async () => {
    // Both on forks of one upstream (two upstreams are deployed at different seconds). A block's
    // time still follows the wall clock's seconds, which moves the 7th digit of a value now and
    // then; a read answered from before a transaction moves the 4th (the test fails so).
    const digits = (text: string) => text.replace(/\d+\.\d+|\d{6,}/g, (n) => (n.includes('.') ? Number(n).toPrecision(5) : `${n.slice(0, 5)}…${n.length}`))
    const upstream = await startUpstream()
    try {
      const judged = async (cacheReads: boolean) => {
        const out: string[] = []
        const target = forkTarget({ source: { kind: 'embedded' }, warm: true, cacheReads, upstream })
        try {
          const report = await search({
            source: { kind: 'embedded' },
            seed: 3,
            out: path.join(os.tmpdir(), 'search-cache-unused'),
            episodes: 20,
            timeMs: 120_000,
            steps: 8,
            replayFlags: '',
            target,
            cacheReads,
            onEpisode: (n, verdict, checks) => out.push(`${n} ${verdict} ${checks.map((c) => `${c.phase}:${c.name}:${c.ok}:${digits(c.observed)}`).join(' | ')}`),
          })
          return { out, verdict: report.verdict, episodes: report.episodes }
        } finally {
          await target.stop()
        }
      }
      const [off, on] = [await judged(false), await judged(true)]
      expect(off.out).toHaveLength(20)
      expect(off.out.join('\n')).toMatch(/sharePrice \d\.\d{4}/)
      expect(on).toEqual(off)
    } finally {
      await upstream.instance.stop()
    }
  }, 120_000)
})
