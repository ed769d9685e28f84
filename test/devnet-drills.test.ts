import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { describe, expect, it } from 'vitest'
import { expectSeen } from './drill-seen.js'
import { keepsCommitted, mustStall, progress, rejects } from '../src/checks/devnet/checks.js'
import type { Probe } from '../src/scenario/devnet-probe.js'
import { devnetBuilds } from '../src/cli/options.js'
import { runDevnetScenario } from '../src/scenario/devnet-runner.js'
import { loadScenario, parseScenario } from '../src/scenario/loader.js'
import { scaleWindows } from '../src/scenario/suite.js'
import type { Scenario } from '../src/scenario/types.js'
import { stateDir } from '../src/process/registry.js'
import { liveProcesses } from '../src/targets/processes.js'

/**
 * The drills for node.restart, node.disk-corrupt and byzantine.invalid-tx hold on the reference
 * devnet and fail on the test build that breaks what each checks; burst-kill means "f + 1" on
 * any size (7 validators here, once); sizes and ids outside the devnet are bad input.
 */
// A run on the reference devnet (no test build) must also show its faults seen (drill-seen.ts).
const run = (s: Scenario, overrides?: Record<number, Record<string, unknown>>) =>
  runDevnetScenario(s, { seed: 1, replay: 'test', ...(overrides ? { overrides } : {}) }).then((r) => (overrides ? r : expectSeen(r)))
const failedChecks = (r: Awaited<ReturnType<typeof run>>) => r.checks.filter((c) => !c.ok).map((c) => `${c.name}@${c.phase}: ${c.observed}`)
const check = (r: Awaited<ReturnType<typeof run>>, name: string, phase: string) => r.checks.find((c) => c.name === name && c.phase === phase)
const devnetDirs = () => fs.readdirSync(stateDir()).filter((d) => d.startsWith('devnet-')).map((d) => path.join(stateDir(), d))
/** The lines of every node log under a devnet dir that match, prefixed by file, at most 40 per node. */
const nodeLogLines = (dir: string, match: RegExp) =>
  fs
    .readdirSync(path.join(dir, 'logs'))
    .filter((f) => f.startsWith('node-'))
    .flatMap((f) => fs.readFileSync(path.join(dir, 'logs', f), 'utf8').split('\n').filter((l) => match.test(l)).slice(-40).map((l) => `${f}: ${l.slice(11, 400)}`))
const load = (text: string) => parseScenario(new TextEncoder().encode(text), 'drill.yaml')
const loadError = (text: string) => {
  try {
    load(text)
  } catch (error) {
    return (error as Error & { shortMessage?: string }).shortMessage ?? (error as Error).message
  }
  return 'loaded'
}

describe('node.restart drill', () => {
  it('holds: the restarted validator resumes from its store (never lower) and catches up', async () => {
    const r = await run(loadScenario('scenarios/devnet/restart.yaml'))
    expect(failedChecks(r)).toEqual([])
    expect(r.verdict).toBe('held')
    expect(check(r, 'keeps-committed', 'inject')?.observed).toMatch(/^no validator reported a lower height than before/)
    expect(r.faults[0]?.evidence?.took).toMatch(/^validator 3 restarted \(pid \d+ → \d+\)$/)
  })

  it('…and fails on a build that loses its store on restart: the validator comes back lower', async () => {
    const r = await run(loadScenario('scenarios/devnet/restart.yaml'), devnetBuilds['volatile-store'])
    expect(r.verdict).toBe('failed')
    expect(r.reason).toMatch(/keeps-committed/)
    expect(check(r, 'keeps-committed', 'inject')?.observed).toMatch(/^validator 3 went back from height \d+ to \d+/)
    expect(liveProcesses()).toEqual([])
  })
})

describe('node.disk-corrupt drill', () => {
  it('holds: the corrupted validator keeps the good prefix, syncs the rest and catches up', async () => {
    const r = await run(loadScenario('scenarios/devnet/disk-corrupt.yaml'))
    expect(failedChecks(r)).toEqual([])
    expect(r.verdict).toBe('held')
    expect(r.faults[0]?.evidence?.took).toMatch(/^\d+ bytes flipped in validator 2's store, node restarted$/)
    expect(check(r, 'catch-up', 'recover')?.observed).toMatch(/^validator 2 reached height \d+ \d+ ms after heal$/)
  })

  it('…and fails on a build that does not resync after finding its store corrupt', async () => {
    const r = await run(loadScenario('scenarios/devnet/disk-corrupt.yaml'), devnetBuilds['no-resync-after-corruption'])
    expect(r.verdict).toBe('failed')
    expect(r.reason).toMatch(/catch-up|did not recover/)
    expect(check(r, 'catch-up', 'recover')?.observed).toMatch(/^validator 2 did not reach height \d+$/)
    // The other three kept the chain going all along.
    expect(check(r, 'progress', 'inject')?.ok).toBe(true)
    expect(liveProcesses()).toEqual([])
  })
})

describe('byzantine.invalid-tx drill', () => {
  it('holds: proposals with an unexecutable transaction are rejected by execution within one slot', async () => {
    const r = await run(loadScenario('scenarios/devnet/invalid-tx.yaml'))
    expect(failedChecks(r)).toEqual([])
    expect(r.verdict).toBe('held')
    expect(check(r, 'invalid-block-rejected', 'inject')?.observed).toMatch(/^[1-9]\d* rejections of validator 1's proposals \(execution\/transactions\)/)
    expect(r.devnet.rejectionLatencyMs).toBeLessThanOrEqual(1_000)
  })

  it('…and fails on a build whose validators accept a block that carries an invalid transaction', async () => {
    const r = await run(loadScenario('scenarios/devnet/invalid-tx.yaml'), devnetBuilds['accept-invalid-tx'])
    expect(r.verdict).toBe('failed')
    expect(r.reason).toMatch(/invalid-block-rejected/)
    expect(check(r, 'invalid-block-rejected', 'inject')?.observed).toMatch(/^0 rejections of validator 1's proposals/)
    expect(liveProcesses()).toEqual([])
  })
})

describe('drills by f', () => {
  it('partition-2-2 (sizes: [f+1, 2f]) on 7 validators splits 3 | 4: no side has a quorum of 5, nothing commits, then resumes', async () => {
    const s = loadScenario('scenarios/devnet/partition-2-2.yaml')
    // The file as shipped, on 7 (7 nodes and 7 Anvils on 2 busy cores: the recovery window is
    // wider; it ends as soon as the checks hold).
    const r = await run({ ...s, target: { ...s.target, validators: 7 }, recover: { ...s.recover, durationMs: 30_000 } })
    expect(failedChecks(r)).toEqual([])
    expect(r.verdict).toBe('held')
    expect(r.faults[0]?.evidence?.took).toBe('partitioned 0,1,2 | 3,4,5,6 (sizes f+1 (= 3 of 7), 2f (= 4 of 7))')
    expect(check(r, 'must-stall', 'inject')?.observed).toMatch(/^(0 commits between|1 commits between .*: excused\)$)/)
    expect(check(r, 'progress', 'recover')?.ok).toBe(true)
  })

  it('burst-kill (count: f+1) on 4 validators kills 2 (2, 3): no quorum, nothing commits, then resumes', async () => {
    const r = await run(loadScenario('scenarios/devnet/burst-kill.yaml'))
    expect(failedChecks(r)).toEqual([])
    expect(r.verdict).toBe('held')
    expect(r.faults[0]?.evidence?.took).toBe('f+1 (= 2 of 4): validators 2, 3 killed together')
  })

  // Before the sign state (src/devnet/node/sign-state.ts) this stayed stalled in 2 of 3 runs: the
  // restarted validators signed a second, different prevote (and the proposer a second proposal)
  // where they had signed before the kill, and the honest validators recorded evidence. The
  // shipped file on 7, plus one check that reads the evidence: against validator 0 (which never
  // misbehaves), so its `observed` lists everyone the evidence names; it fails by design, the
  // test reads what it observed. (The build that forgets its sign state, forget-sign-state, no
  // longer double-signs here reliably — restarted validators now wait to hear every peer and
  // join their later round — so the rule that breaks is pinned in test/sign-state.test.ts.)
  const burstKill7 = () => {
    const s = loadScenario('scenarios/devnet/burst-kill.yaml')
    const evidenceSeen = load(`
name: e
hypothesis: h
target: { kind: devnet, validators: 7 }
checks:
  - { name: evidence-seen, kind: safety, phases: [recover], evidence: { validator: 0 } }
baseline: { duration: 1s }
inject: { faults: [ { type: node.burst-kill, params: { count: f+1 } } ], duration: 1s }
`).checks
    return { ...s, target: { ...s.target, validators: 7 }, checks: [...s.checks, ...evidenceSeen], recover: { ...s.recover, durationMs: 30_000 } }
  }
  it('burst-kill (count: f+1) on 7 kills 3 and restarts them: they sign nothing that conflicts with what they signed before, the chain resumes', async () => {
    const before = new Set(devnetDirs())
    const r = await run(burstKill7())
    // On failure, the message carries what the nodes logged about the stall (CI keeps no files).
    const dir = devnetDirs().find((d) => !before.has(d))
    const logs = dir ? nodeLogLines(dir, /stalled at|sign-state|evidence|replay|started|sync/) : []
    const all = JSON.stringify({ verdict: r.verdict, reason: r.reason, checks: r.checks.map((c) => `${c.name}@${c.phase} ${c.ok}: ${c.observed}`), logs })
    expect(failedChecks(r).filter((c) => !c.startsWith('evidence-seen@')), all).toEqual([])
    expect(check(r, 'evidence-seen', 'recover')?.observed).toBe('evidence names validator(s) none (0 records)')
    expect(r.faults[0]?.evidence?.took).toBe('f+1 (= 3 of 7): validators 4, 5, 6 killed together')
    expect(check(r, 'must-stall', 'inject')?.observed).toMatch(/^(0 commits between|1 commits between .*: excused\)$)/)
    expect(check(r, 'progress', 'recover')?.ok).toBe(true)
    expect(check(r, 'no-fork', 'recover')?.ok).toBe(true)
    expect(liveProcesses()).toEqual([])
  })

  it('burst-kill of only f on 4 validators leaves a quorum: the chain goes on, so must-stall fails', async () => {
    const loaded = load(`
name: burst-kill-f
hypothesis: f killed
target: { kind: devnet, slot: 1s }
checks:
  - { name: must-stall, kind: safety, phases: [inject], mustStall: true }
baseline: { duration: 2s }
inject: { faults: [ { type: node.burst-kill, params: { count: f } } ], duration: 4s }
recover: { duration: 3s }
`)
    const r = await run(loaded)
    expect(r.verdict).toBe('failed')
    expect(r.faults[0]?.evidence?.took).toBe('f (= 1 of 4): validators 3 killed together')
    expect(check(r, 'must-stall', 'inject')?.observed).toMatch(/^[1-9]\d* commits between/)
  })

  it('sizes and ids outside the devnet are bad input at load, naming the field and the expected values', () => {
    const base = (target: string, faults: string, extra = '') => `name: x\nhypothesis: y\ntarget: ${target}\n${extra}inject: { faults: [ ${faults} ] }\n`
    expect(loadError(base('{ kind: devnet, validators: 5 }', '{ type: node.kill, target: 1 }'))).toBe('drill.yaml:3: `target.validators` must be one of 4, 7, 10. Got `5`.')
    expect(loadError(base('{ kind: devnet }', '{ type: node.kill, target: 5 }'))).toBe('drill.yaml:4: `inject.faults[0].target` must be a validator id from 0 to 3 (`target.validators` is 4). Got `5`.')
    expect(loadError(base('{ kind: devnet, validators: 7 }', '{ type: node.kill, target: 5 }'))).toBe('loaded')
    expect(loadError(base('{ kind: devnet, honest: [0, 4] }', '{ type: node.kill, target: 1 }'))).toBe('drill.yaml:3: `target.honest[1]` must be a validator id from 0 to 3 (`target.validators` is 4). Got `4`.')
    expect(loadError(base('{ kind: devnet }', '{ type: node.burst-kill, params: { count: 2f+1 } }'))).toBe('loaded')
    expect(loadError(base('{ kind: devnet }', '{ type: node.burst-kill, params: { count: 3f+2 } }'))).toMatch(/`inject\.faults\[0\]\.params\.count` must come to between 1 and 4 validators on this devnet \(n = 4, f = 1\); it comes to 5\. Got `"3f\+2"`\./)
    expect(loadError(base('{ kind: devnet }', '{ type: node.burst-kill, params: { count: g+1 } }'))).toMatch(/`inject\.faults\[0\]\.params\.count`/)
    expect(loadError(base('{ kind: devnet }', '{ type: node.burst-kill, params: { count: f, validators: [1] } }'))).toBe("drill.yaml:4: `inject.faults[0].params` must have exactly one of `validators`, `count`. Got `{\"count\":\"f\",\"validators\":[1]}`.")
    expect(loadError(base('{ kind: devnet }', '{ type: net.partition, params: { sizes: [f+1], groups: [[0], [1]] } }'))).toBe('drill.yaml:4: `inject.faults[0].params` must not have `groups`, `sizes` together. Got `{"sizes":["f+1"],"groups":[[0],[1]]}`.')
  })
})

describe('a drill on a longer slot keeps its meaning in slots (--el ethereumjs: 1 s → 2 s)', () => {
  it('windows and check time bounds grow by the slot factor; rates per slot and faults do not change', () => {
    const s = loadScenario('scenarios/devnet/restart.yaml')
    const t = scaleWindows({ ...s, target: { ...s.target, el: 'ethereumjs' } }, 2_000)
    expect(t.target).toMatchObject({ slotMs: 2_000, el: 'ethereumjs', timeScale: { factor: 2, fileSlotMs: 1_000 } })
    expect([t.baseline.durationMs, t.inject.durationMs, t.recover.durationMs]).toEqual([8_000, 10_000, 20_000])
    expect(t.checks.find((c) => c.name === 'catch-up')?.catchUp).toEqual({ node: 3, withinMs: 10_000 })
    expect(t.checks.find((c) => c.name === 'progress')?.progress).toEqual({ minCommitsPerSlot: 0.5 })
    expect(t.inject.faults).toEqual(s.inject.faults)
    // The file's own slot (or a shorter one): nothing scales.
    expect(scaleWindows(s, 1_000)).toMatchObject({ target: { slotMs: 1_000 }, recover: { durationMs: 10_000 } })
    expect(scaleWindows(s, 1_000).target.timeScale).toBeUndefined()
  })
  it('run --slot is bad input outside 200ms–60s or not a duration (exit 2, naming the flag), before anything starts', () => {
    const cli = (slot: string) => spawnSync(process.execPath, ['bin/forkchaos.js', 'run', 'scenarios/devnet/restart.yaml', '--slot', slot], { encoding: 'utf8', timeout: 30_000 })
    const [notDuration, tooShort] = [cli('2'), cli('100ms')]
    expect([notDuration.status, notDuration.stderr.trim()]).toEqual([2, 'forkchaos: `--slot` must be a duration like "300ms", "2s", "5m", "12h" or "1d". Got `"2"`.'])
    expect([tooShort.status, tooShort.stderr.trim()]).toEqual([2, 'forkchaos: `--slot` must be at least 200ms. Got `"100ms"`.'])
  })
})

describe('devnet checks follow n', () => {
  // A recorded series (what the probe would have sampled), judged by the check functions alone.
  const probeOf = (signers: number, heights: (number | null)[][]): Probe =>
    ({
      samples: heights.map((h, i) => ({ t: i * 500, heights: h })),
      blocks: [1, 2, 3, 4].map((height) => ({ node: 0, height, hash: `0x${height}`, stateRoot: '0x', proposer: 0, signers: Array.from({ length: signers }, (_, i) => i), t: height * 500 })),
      rejections: [],
      evidence: [],
      rssMb: [],
      epochStartMs: 0,
      firstCommitAt: () => 0,
      now: () => 2_000,
      stop: async () => {},
    }) as unknown as Probe
  const ctx = (probe: Probe, validators: number) => ({ probe, window: { from: 0, to: 2_000 }, slotMs: 500, validators, honest: [0], revertedAt: 0 })
  const climbing = [[0], [1], [2], [3], [4]]

  it('progress needs 2f+1 signers per commit: 4 of 7 is too few, 4 of 4 is enough', () => {
    expect(progress(ctx(probeOf(4, climbing), 7), {})).toEqual({
      ok: false,
      observed: '4 commits in 2000 ms (heights 0 → 4); 4 with < 5 signers (e.g. height 1)',
      expected: '≥ 2 commits (0.5 per 500 ms slot), each with ≥ 5 signers',
    })
    expect(progress(ctx(probeOf(4, climbing), 4), {}).ok).toBe(true)
    expect(progress(ctx(probeOf(5, climbing), 7), {}).ok).toBe(true)
  })

  it('rejects judges a rejection in the window\'s last slot only if its height committed; an older one that never committed fails', () => {
    // Height 4 commits at 2,000 ms; height 5 never does. The window ends at 2,000 ms, slots of 500 ms.
    const withRejections = (atMs: number): Probe => ({
      ...probeOf(3, climbing),
      rejections: [{ node: 0, proposer: 1, height: 5, round: 0, layer: 'execution', at: atMs, latencyMs: 50 }],
      firstCommitAt: (h: number) => (h <= 4 ? h * 500 : undefined),
    }) as unknown as Probe
    // At 1,700 ms: its deadline (2,300 ms) is past the window's end, so it is not judged on commit.
    expect(rejects(ctx(withRejections(1_700), 4), { proposer: 1 }).ok).toBe(true)
    // At 1,000 ms: its deadline passed inside the window and height 5 never committed.
    const late = rejects(ctx(withRejections(1_000), 4), { proposer: 1 })
    expect(late.ok).toBe(false)
    expect(late.observed).toContain('height committed never after the rejection at worst')
  })

  it('keepsCommitted fails on a height that goes back, and not on a validator that is down for a while', () => {
    expect(keepsCommitted(ctx(probeOf(3, [[3], [4], [null], [4], [5]]), 4))).toEqual({
      ok: true,
      observed: 'no validator reported a lower height than before (1 validators sampled)',
      expected: 'every validator resumes at least at the height it had committed',
    })
    expect(keepsCommitted(ctx(probeOf(3, [[3], [4], [null], [0], [5]]), 4))).toEqual({
      ok: false,
      observed: 'validator 0 went back from height 4 to 0 at 1500 ms (1 samples lower than before)',
      expected: 'every validator resumes at least at the height it had committed',
    })
  })

  it('mustStall excuses only the height in flight at the fault, and only with a full certificate (2f+1 signers)', () => {
    // Window 0–2,000 ms, slot 500: the grace ends at 500 ms (height 1); heights after it count.
    const one = [[1], [1], [2], [2], [2]]
    expect(mustStall(ctx(probeOf(5, one), 7))).toEqual({
      ok: true,
      observed: '1 commits between 500 and 2000 ms (height 2, in flight at the fault, signed by 5: excused)',
      expected: 'no commit while more than f validators are out',
    })
    // The same commit with 4 of 7 signers: a commit without a quorum, not excused.
    expect(mustStall(ctx(probeOf(4, one), 7))).toMatchObject({ ok: false, observed: '1 commits between 500 and 2000 ms' })
    // Two commits: only one height can have been in flight.
    expect(mustStall(ctx(probeOf(5, [[1], [1], [2], [3], [3]]), 7)).ok).toBe(false)
    // Where signers are not visible (endpoints): nothing is excused.
    expect(mustStall(ctx(probeOf(0, one), 7)).ok).toBe(false)
  })
})
