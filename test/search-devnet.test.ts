// `forkchaos search --target devnet` on the real 4-validator devnet: against the double-vote build
// (validator 2 prevotes and precommits every valid proposal of a round) seed 14049 draws, in its
// first episode, a kill and restart of validator 0 then an equivocating validator 1 held 12 s;
// validator 2 votes for both of its proposals and honest validators record evidence against it:
// `honest-not-accused` breaks (in some runs the chain instead locks up after the heal before the
// probe reads the evidence: `progress-after-heal`). The shrink drops the kill (the equivocation
// alone still fails, two runs in a row),
// and the written file, run by `forkchaos run`, fails on that build and holds on the reference
// devnet. Bad input exits 2 before anything boots. The CLI runs from dist/ (`npm run build` first).
// (Seed 290 drew it from the pool of 7 faults; with the 13 of the shipped drills, seed 14049
// draws the same schedule.) A fault the pool gained, byzantine.invalid-tx, is judged over its own
// window (`during`): held on the reference (its proposals rejected); on accept-invalid-tx
// nothing is rejected and the chain locks: `progress-after-heal` breaks.
// Heavy: run it alone, under `flock /tmp/s21/heavy.lock`.
import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { devnetBuilds } from '../src/cli/options.js'
import { isAlive, liveProcesses } from '../src/process/registry.js'
import { loadScenario, parseScenario } from '../src/scenario/loader.js'
import { failsByVotes, searchDevnet } from '../src/search/devnet.js'
import { runDevnetScenario } from '../src/scenario/devnet-runner.js'
import { type DevnetItem, devnetPool, devnetScheduleYaml, devnetSearchChecks, drawDevnetSchedule, withinBudget } from '../src/search/devnet-schedule.js'
import { shrinkSchedule } from '../src/search/shrink.js'
import { createPrng } from '../src/util/prng.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const bin = path.join(root, 'bin', 'forkchaos.js')

/**
 * The CLI as a child process, with its own state directory: the pid files of the processes it
 * starts are read while it runs, so the test can check afterwards, by pid, that none is left.
 */
function cli(args: string[], timeoutMs = 180_000): Promise<{ status: number | null; stdout: string; stderr: string; pids: number[] }> {
  const state = fs.mkdtempSync(path.join(os.tmpdir(), 'search-devnet-state-'))
  const pids = new Set<number>()
  const look = () => {
    for (const f of fs.readdirSync(path.join(state, 'pids'), { withFileTypes: true }).filter((e) => e.name.endsWith('.json'))) pids.add(Number(f.name.replace('.json', '')))
  }
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FORKCHAOS_STATE_DIR: state } })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const poll = setInterval(() => {
      try {
        look()
      } catch {
        // No pids folder yet.
      }
    }, 200)
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs)
    child.on('error', reject)
    child.on('close', (status) => {
      clearInterval(poll)
      clearTimeout(timer)
      try {
        look()
      } catch {}
      fs.rmSync(state, { recursive: true, force: true })
      resolve({ status, stdout, stderr, pids: [...pids] })
    })
  })
}

const label = (items: readonly DevnetItem[]) => items.map((i) => (i.kind === 'apply' ? `+${devnetPool[i.fault]?.type}@${i.validator}` : i.kind === 'revert' ? `-${i.id}` : `wait${i.level}`))

describe('devnet schedules (no devnet)', () => {
  it('draws keep at most `budget` validators faulty at once, and each is a scenario the loader reads', () => {
    for (let seed = 0; seed < 200; seed++) {
      const items = drawDevnetSchedule(createPrng(seed).fork('episode-0'), 12, 7, seed % 2 === 0 ? 1 : 2)
      expect(withinBudget(items, seed % 2 === 0 ? 1 : 2)).toBe(true)
      if (seed < 20) {
        const s = parseScenario(new TextEncoder().encode(devnetScheduleYaml('t', items, { validators: 7, budget: 2, note: 'test', stopOnSafety: true })), 'episode.yaml')
        expect(s.inject.steps.length).toBe(Math.max(1, items.length))
        // A corrupted store drops its damaged tail by design: no `keeps-committed` then.
        const corrupts = items.some((i) => i.kind === 'apply' && devnetPool[i.fault]?.type === 'node.disk-corrupt')
        expect(s.stop.map((c) => c.name)).toEqual(['no-fork-now', 'honest-not-accused-now', ...(corrupts ? [] : ['keeps-committed-now'])])
        expect(s.checks.map((c) => c.name)).toEqual(devnetSearchChecks(7, items))
      }
    }
    // Seed 14049's first episode, the one the search below runs.
    expect(label(drawDevnetSchedule(createPrng(14049).fork('episode-0'), 4, 4, 1))).toEqual(['+node.kill@0', '-f0', '+byzantine.equivocate@1', 'wait2'])
  })

  it("a byzantine or skewed validator's fault brings a check judged over that fault's window; `during` names an applied fault of inject.steps", () => {
    const at = (type: string) => devnetPool.findIndex((f) => f.type === type)
    const items: DevnetItem[] = [
      { kind: 'apply', id: 'f0', fault: at('byzantine.invalid-tx'), validator: 1, level: 0 },
      { kind: 'wait', level: 0 },
      { kind: 'revert', id: 'f0' },
      { kind: 'apply', id: 'f1', fault: at('node.clock-skew'), validator: 2, level: 0 },
    ]
    const yaml = devnetScheduleYaml('t', items, { validators: 4, budget: 1, note: 'test' })
    const s = parseScenario(new TextEncoder().encode(yaml), 'episode.yaml')
    expect(s.checks.slice(-3)).toEqual([
      { name: 'rejected-f0', kind: 'safety', during: 'f0', rejects: { proposer: 1, minRejections: 0 }, phases: ['inject'] },
      { name: 'skew-refused-f1', kind: 'safety', during: 'f1', driftRejected: { proposer: 2, minRefusals: 0 }, phases: ['inject'] },
      { name: 'keeps-committed', kind: 'safety', keepsCommitted: true },
    ])
    const errorOf = (text: string) => {
      try {
        parseScenario(new TextEncoder().encode(text), 'e.yaml')
        return 'loaded'
      } catch (error) {
        return (error as Error).message.split('\n')[0]
      }
    }
    expect(errorOf(yaml.replace('during: f0', 'during: f9'))).toMatch(/^e\.yaml:\d+: `checks\[7\]\.during` must be the id of a fault an `inject\.steps` step applies \(`f0`, `f1`\)\. Got `f9`\.$/)
    expect(errorOf(yaml.replace('during: f0,', 'during: f0, phases: [recover],'))).toMatch(/`checks\[7\]\.phases` must be `\[inject\]` \(or absent\) with `during`/)
  })

  it('the generic shrink never tries a candidate over the fault budget (a dropped revert would hold two at once)', async () => {
    const equivocate = devnetPool.findIndex((f) => f.type === 'byzantine.equivocate')
    const items: DevnetItem[] = [
      { kind: 'apply', id: 'f0', fault: 0, validator: 0, level: 0 },
      { kind: 'revert', id: 'f0' },
      { kind: 'apply', id: 'f1', fault: equivocate, validator: 1, level: 0 },
      { kind: 'wait', level: 2 },
    ]
    const tried: string[][] = []
    const fails = async (c: DevnetItem[]) => {
      tried.push(label(c))
      const has = (fault: number) => c.some((i) => i.kind === 'apply' && i.fault === fault)
      return has(0) && has(equivocate) && c.some((i) => i.kind === 'wait' && i.level >= 1)
    }
    const ops = {
      fault: (i: DevnetItem) => (i.kind === 'wait' ? undefined : i.id),
      alone: (i: DevnetItem) => i.kind !== 'apply',
      level: (i: DevnetItem) => (i.kind === 'revert' ? undefined : i.level),
      withLevel: (i: DevnetItem, level: number) => (i.kind === 'revert' ? i : { ...i, level }),
      valid: (c: readonly DevnetItem[]) => withinBudget(c, 1),
    }
    // Dropping `-f0` alone would keep validator 0 killed while validator 1 equivocates: never run.
    expect(label(await shrinkSchedule(items, fails, ops))).toEqual(['+node.kill@0', '-f0', '+byzantine.equivocate@1', 'wait1'])
    expect(tried).not.toContainEqual(['+node.kill@0', '+byzantine.equivocate@1', 'wait2'])
    expect(tried.length).toBe(5)
  })
})

describe('the shrink keeps a devnet candidate when two of its runs fail before two hold', () => {
  const judge = async (outcomes: ('fail' | 'hold' | 'error')[]) => {
    let runs = 0
    const kept = await failsByVotes(async () => outcomes[runs++] ?? 'hold')
    return { kept, runs }
  }
  it('keeps a candidate that held once between two failures, drops one that failed once between two holds', async () => {
    expect(await judge(['fail', 'fail'])).toEqual({ kept: true, runs: 2 })
    // Two in a row (the old rule) dropped this one: seed 290's equivocation in CI.
    expect(await judge(['fail', 'hold', 'fail'])).toEqual({ kept: true, runs: 3 })
    expect(await judge(['hold', 'fail', 'hold'])).toEqual({ kept: false, runs: 3 })
    expect(await judge(['hold', 'hold'])).toEqual({ kept: false, runs: 2 })
  })
  it('does not count up to two runs that ended error; a third error counts as a hold', async () => {
    expect(await judge(['error', 'fail', 'error', 'fail'])).toEqual({ kept: true, runs: 4 })
    expect(await judge(['error', 'error', 'error', 'fail', 'hold'])).toEqual({ kept: false, runs: 5 })
  })
})

describe('bad input exits 2 before anything boots', () => {
  it('a budget over f, a fork flag on the devnet, a devnet flag on the fork, a wrong build', async () => {
    const [budget, fork, devnet, build] = await Promise.all([
      cli(['search', '--target', 'devnet', '--budget', '2']),
      cli(['search', '--target', 'devnet', '--vault-build', 'ReferenceVault.spike-cap-threshold']),
      cli(['search', '--devnet-build', 'double-vote']),
      cli(['search', '--target', 'devnet', '--devnet-build', 'nope']),
    ])
    expect([budget.status, fork.status, devnet.status, build.status]).toEqual([2, 2, 2, 2])
    expect(budget.stderr.split('\n')[0]).toBe('forkchaos: `--budget` must be at most f = 1 for 4 validators (n = 3f + 1 tolerates f faulty). Got `2`.')
    expect(fork.stderr.split('\n')[0]).toBe('forkchaos: `--vault-build` is a fork option; this search\'s target is the devnet (`--target devnet`).')
    expect(devnet.stderr.split('\n')[0]).toBe('forkchaos: `--devnet-build` is a devnet option; this search\'s target is the fork (the default).')
    expect(build.stderr.split('\n')[0]).toMatch(/^forkchaos: `--devnet-build` must be one of .*double-vote.*\. Got `nope`\.$/)
    for (const r of [budget, fork, devnet, build]) expect(r.pids).toEqual([])
  }, 120_000)

  it('a devnet schedule in the wrong place, or with a fork fault, is a load error naming the field', () => {
    const file = (steps: string, phase = 'inject') => `name: t\nhypothesis: h\ntarget: { kind: devnet }\nchecks:\n  - { name: no-fork, kind: safety, noFork: true }\n${phase === 'inject' ? 'inject:\n  faults: []\n  steps:\n' : `${phase}:\n  steps:\n`}${steps}${phase === 'inject' ? '' : 'inject:\n  faults: []\n'}`
    const errorOf = (yaml: string) => {
      try {
        parseScenario(new TextEncoder().encode(yaml), 't.yaml')
        return 'loaded'
      } catch (error) {
        return (error as Error).message.split('\n')[0]
      }
    }
    expect(errorOf(file('    - wait: { duration: 1s }\n', 'baseline'))).toBe("t.yaml:8: `baseline.steps` are not run on a devnet: a devnet scenario's steps (`fault`, `wait`) are its inject phase's timed fault schedule, under `inject.steps` only.")
    expect(errorOf(file('    - fault: { id: a, apply: { type: gas.spike, params: { baseFeeGwei: 200 } } }\n'))).toBe("t.yaml:9: `inject.steps[0].fault.apply.type` gas.spike is a fork fault; this scenario's target is a devnet.")
    expect(errorOf(file('    - fault: { id: a, apply: { type: node.kill, target: 4 } }\n'))).toBe('t.yaml:9: `inject.steps[0].fault.apply.target` must be a validator id from 0 to 3 (`target.validators` is 4). Got `4`.')
    expect(errorOf(file('    - fault: { id: a, apply: { type: node.kill, target: 3 } }\n    - wait: { duration: 2h }\n'))).toBe('t.yaml:10: `inject.steps[1].wait.duration` must be at most 1h. Got `"2h"`.')
    expect(errorOf(file('    - fault: { id: a, apply: { type: node.kill, target: 3 } }\n    - wait: { duration: 1s }\n    - fault: { revert: a }\n'))).toBe('loaded')
  })
})

describe('a fault the pool gained, on the real devnet', () => {
  // byzantine.invalid-tx on validator 1 for 12 s (three or so of its turns as proposer), as a search episode writes it.
  const episode = () => {
    const items: DevnetItem[] = [
      { kind: 'apply', id: 'f0', fault: devnetPool.findIndex((f) => f.type === 'byzantine.invalid-tx'), validator: 1, level: 0 },
      { kind: 'wait', level: 2 },
    ]
    return parseScenario(new TextEncoder().encode(devnetScheduleYaml('invalid-tx-episode', items, { validators: 4, budget: 1, note: 'test' })), 'episode.yaml')
  }
  const rejected = (r: Awaited<ReturnType<typeof runDevnetScenario>>) => r.checks.find((c) => c.name === 'rejected-f0')

  it("byzantine.invalid-tx takes effect (its proposals are rejected while it runs) and the reference holds", async () => {
    const r = await runDevnetScenario(episode(), { seed: 1, replay: 'test' })
    expect(r.verdict, `${r.reason} ${JSON.stringify(r.checks.filter((c) => !c.ok))}`).toBe('held')
    expect(rejected(r)?.observed).toMatch(/^while `f0` was applied \(\d+–\d+ ms\): [1-9]\d* rejections of validator 1's proposals \(execution\/transactions\)/)
    expect(liveProcesses()).toEqual([])
  }, 180_000)

  it('…and on accept-invalid-tx nothing is rejected: its certified block does not re-execute, the chain locks and stays locked after the heal', async () => {
    const r = await runDevnetScenario(episode(), { seed: 1, replay: 'test', overrides: devnetBuilds['accept-invalid-tx'] as Record<number, Record<string, unknown>> })
    const broken = r.checks.filter((c) => !c.ok).map((c) => `${c.name}@${c.phase}: ${c.observed}`)
    expect(r.verdict, JSON.stringify(broken)).toBe('failed')
    // The honest validators vote the block through (no rejection) but cannot commit it: no block of its commits either.
    expect(rejected(r)?.observed).toMatch(/: 0 rejections of validator 1's proposals \(none\).*; 0 blocks by validator 1 committed by honest validators$/)
    expect(broken).toContainEqual(expect.stringMatching(/^progress-after-heal@recover: 0 commits in \d+ ms \(heights (\d+) → \1\)$/))
    expect(liveProcesses()).toEqual([])
  }, 180_000)
})

describe('a check judged over its fault window (`during`) fails on the build that breaks it', () => {
  it("byzantine.state-root-flip on no-state-root-check: validator 1's flipped blocks commit while it runs, rejected-f0 breaks", async () => {
    const items: DevnetItem[] = [
      { kind: 'apply', id: 'f0', fault: devnetPool.findIndex((f) => f.type === 'byzantine.state-root-flip'), validator: 1, level: 0 },
      { kind: 'wait', level: 2 },
    ]
    const s = parseScenario(new TextEncoder().encode(devnetScheduleYaml('flip-episode', items, { validators: 4, budget: 1, note: 'test' })), 'episode.yaml')
    const r = await runDevnetScenario(s, { seed: 1, replay: 'test', overrides: devnetBuilds['no-state-root-check'] as Record<number, Record<string, unknown>> })
    const check = r.checks.find((c) => c.name === 'rejected-f0')
    expect(r.verdict, r.reason).toBe('failed')
    expect(check?.ok).toBe(false)
    expect(check?.observed).toMatch(/^while `f0` was applied \(\d+–\d+ ms\): 0 rejections of validator 1's proposals .*; [1-9]\d* blocks by validator 1 committed by honest validators \(heights [\d, ]+\)$/)
    expect(liveProcesses()).toEqual([])
  }, 180_000)
})

describe('forkchaos search --target devnet', () => {
  it('seed 14049 on double-vote: finds the double vote (honest-not-accused, or a lock-up after the heal), shrinks it to the equivocation, the written file fails there and holds on the reference (forkchaos run); no process left', async () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'search-devnet-'))
    // Every process the search starts, by pid, sampled while it runs.
    const seen = new Set<number>()
    const sample = setInterval(() => {
      for (const p of liveProcesses()) seen.add(p.pid)
    }, 200)
    try {
      const report = await searchDevnet({ seed: 14049, out, episodes: 1, timeMs: 600_000, steps: 4, validators: 4, budget: 1, overrides: devnetBuilds['double-vote'] as Record<number, Record<string, unknown>>, replayFlags: ' --devnet-build double-vote', shrinkRuns: 2 })
      clearInterval(sample)
      expect(report.verdict, report.error ?? '').toBe('failed')
      const f = report.failure
      if (!f) throw new Error('no failure')
      // Mostly the evidence against validator 2; in some runs the chain locks up after the heal before the probe reads any.
      expect(['honest-not-accused', 'progress-after-heal']).toContain(f.check)
      if (f.check === 'honest-not-accused') expect(f.reason).toMatch(/evidence records? against honest validator\(s\) 2/)
      expect(f.original).toBe(4)
      expect(f.shrunk).toBeLessThan(f.original)
      const written = loadScenario(f.file)
      const applied = written.inject.steps.flatMap((s) => ('fault' in s && 'apply' in s.fault ? [`${s.fault.apply.type}@${s.fault.apply.target}`] : []))
      expect(applied).toContain('byzantine.equivocate@1')
      expect(applied).not.toContain('node.kill@0')
      expect(f.replay).toBe(`npx forkchaos run ${f.file} --seed 14049 --devnet-build double-vote`)
      // Nothing the search started is left: every devnet process it ran, by pid.
      expect(seen.size).toBeGreaterThanOrEqual(8)
      expect([...seen].filter(isAlive)).toEqual([])
      expect(liveProcesses()).toEqual([])

      const broken = await cli(['run', f.file, '--seed', '14049', '--devnet-build', 'double-vote', '--report-dir', path.join(out, 'broken')])
      expect(broken.status, broken.stdout + broken.stderr).toBe(1)
      expect(broken.stdout).toMatch(/failed\s+search-devnet-14049-/)
      const reference = await cli(['run', f.file, '--seed', '14049', '--report-dir', path.join(out, 'reference')])
      expect(reference.status, reference.stdout + reference.stderr).toBe(0)
      for (const r of [broken, reference]) {
        expect(r.pids.length).toBeGreaterThanOrEqual(8)
        expect(r.pids.filter(isAlive)).toEqual([])
      }
    } finally {
      clearInterval(sample)
      fs.rmSync(out, { recursive: true, force: true })
    }
  }, 900_000)
})
