import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { expectSeen } from './drill-seen.js'
import { devnetBuilds } from '../src/cli/options.js'
import { createClock, maxClockOffsetMs } from '../src/devnet/node/clock.js'
import { runDevnetScenario } from '../src/scenario/devnet-runner.js'
import { loadScenario } from '../src/scenario/loader.js'
import type { Scenario } from '../src/scenario/types.js'
import { PrerequisiteMissingError } from '../src/errors.js'
import { clockSkewEnv, FAKETIME_LIB, faketimeLib, startDevnet } from '../src/targets/devnet.js'
import { liveProcesses } from '../src/targets/processes.js'

/**
 * `node.clock-skew` on the embedded validators: their own clock, stepped at runtime (no
 * libfaketime, nothing installed); the drill holds, and fails on a build whose clock ignores
 * the offset. `via: faketime` without libfaketime ends `skipped` with the install command, and
 * the CLI exits 0 for it; with libfaketime (CI installs it) the drill holds, and a preload that
 * does not move the clock fails it.
 */
const root = fileURLToPath(new URL('..', import.meta.url))
const file = 'scenarios/devnet/clock-skew.yaml'
const shorter = (s: Scenario, injectMs: number): Scenario => ({ ...s, baseline: { ...s.baseline, durationMs: 2_000 }, inject: { ...s.inject, durationMs: injectMs } })
// The shipped inject window: a refusal needs validator 2's turn as proposer (every 4th height),
// and with both cores busy 8 s held none of them.
const injectMs = loadScenario(file).inject.durationMs
// A run on the reference devnet (no test build) must also show its faults seen (drill-seen.ts).
const run = (s: Scenario, overrides?: Record<number, Record<string, unknown>>) =>
  runDevnetScenario(s, { seed: 1, replay: 'test', ...(overrides ? { overrides } : {}) }).then((r) => (overrides ? r : expectSeen(r)))

describe('the node clock', () => {
  it('offsets the wall clock, never the monotonic one, and bounds the offset', () => {
    const clock = createClock()
    const mono = clock.monotonicMs()
    clock.setOffsetMs(30_000)
    expect(clock.offsetMs()).toBe(30_000)
    expect(clock.nowMs() - Date.now()).toBeGreaterThanOrEqual(29_990)
    expect(clock.nowMs() - Date.now()).toBeLessThanOrEqual(30_010)
    expect(clock.monotonicMs() - mono).toBeLessThan(1_000)
    clock.setOffsetMs(0)
    expect(Math.abs(clock.nowMs() - Date.now())).toBeLessThanOrEqual(10)
    expect(() => clock.setOffsetMs(maxClockOffsetMs + 1)).toThrow(
      'the clock offset must be an integer number of ms between -86400000 and 86400000. Got 86400001',
    )
    expect(() => clock.setOffsetMs(1.5)).toThrow(/Got 1.5/)
  })

  it('the test build reports the offset but does not apply it', () => {
    const clock = createClock({ ignoreOffset: true })
    clock.setOffsetMs(30_000)
    expect(clock.offsetMs()).toBe(30_000)
    expect(Math.abs(clock.nowMs() - Date.now())).toBeLessThanOrEqual(10)
  })
})

describe('fc_setClockOffset on a running validator', () => {
  it('steps its wall clock at runtime (fc_status shows it), refuses bad values with -32602, and goes back to 0', async () => {
    const devnet = await startDevnet({ slotMs: 1_000, seed: 3 })
    try {
      const node = devnet.nodes[1]
      if (!node) throw new Error('no validator 1')
      const raw = async (params: unknown[]) => {
        const res = await fetch(node.rpcUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'fc_setClockOffset', params }) })
        return (await res.json()) as { result?: { offsetMs: number; nowMs: number }; error?: { code: number; message: string } }
      }
      expect((await raw(['30s'])).error).toEqual({
        code: -32602,
        message: 'fc_setClockOffset takes [offsetMs]: the clock offset must be an integer number of ms between -86400000 and 86400000. Got "30s"',
      })
      expect((await raw([86_400_001])).error?.code).toBe(-32602)
      const pid = node.pid
      const set = await raw([30_000])
      expect(set.result?.offsetMs).toBe(30_000)
      expect((set.result?.nowMs ?? 0) - Date.now()).toBeGreaterThan(29_000)
      expect((set.result?.nowMs ?? 0) - Date.now()).toBeLessThan(31_000)
      expect((await node.rpc.request<{ clockOffsetMs: number }>('fc_status')).clockOffsetMs).toBe(30_000)
      // The same process: no restart, and no libfaketime in its environment.
      expect(node.pid).toBe(pid)
      expect(fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter((e) => /^(LD_PRELOAD|FAKETIME)=/.test(e))).toEqual([])
      expect((await raw([0])).result?.offsetMs).toBe(0)
      expect((await node.rpc.request<{ clockOffsetMs: number }>('fc_status')).clockOffsetMs).toBe(0)
    } finally {
      await devnet.down()
    }
    expect(liveProcesses()).toEqual([])
  })
})

describe('clock-skew drill', () => {
  it('+30 s on validator 2 through its own clock: held, its proposals refused for drift, no LD_PRELOAD', async () => {
    const r = await run(shorter(loadScenario(file), injectMs))
    expect(r.verdict, r.reason).toBe('held')
    const refused = r.checks.find((c) => c.name === 'skewed-proposals-refused')
    expect(refused?.ok).toBe(true)
    expect(refused?.observed).toMatch(/^[1-9]\d* refusals of validator 2's proposals for timestamp drift \(by [0-3, ]+\), e\.g\. "timestamp \d+ is \d+ ms from the local clock \(max 5000\)"; 0 of its blocks committed$/)
    const fault = r.faults[0]
    expect(fault?.params).toEqual({ offsetS: 30 })
    // The node itself reports the offset, and its process was never preloaded with libfaketime.
    expect(fault?.evidence?.took).toMatch(/^validator 2 reports a wall-clock offset of 30000 ms \(fc_status\); its process \(pid \d+\) runs with LD_PRELOAD unset$/)
    expect(fault?.evidence?.seen).toMatch(/validators [0-3, ]+ refused \d+ proposals of validator 2 for timestamp drift/)
    expect(r.checks.find((c) => c.name === 'catch-up')?.ok).toBe(true)
    expect(liveProcesses()).toEqual([])
  })

  it('…and a build whose clock ignores the offset fails the drill: nothing refused, its blocks commit', async () => {
    const r = await run(shorter(loadScenario(file), injectMs), devnetBuilds['clock-ignores-offset'])
    expect(r.verdict).toBe('failed')
    expect(r.reason).toMatch(/^safety check `skewed-proposals-refused` broke in inject: 0 refusals of validator 2's proposals for timestamp drift \(by nobody\); [1-9]\d* of its blocks committed/)
    // The node claims the offset (fc_status), but nobody saw it: detect reports no drift.
    expect(r.faults[0]?.evidence?.took).toMatch(/offset of 30000 ms/)
    expect(r.faults[0]?.evidence?.seen ?? '').not.toMatch(/timestamp drift/)
  })
})

describe('clock-skew via libfaketime, when it is missing', () => {
  it('the environment names the library; a missing one is a PrerequisiteMissingError with the install command', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forkchaos-faketime-'))
    const lib = path.join(dir, 'libfaketime.so.1')
    fs.writeFileSync(lib, '')
    expect(clockSkewEnv(-30, lib)).toEqual({ LD_PRELOAD: lib, FAKETIME: '-30s', FAKETIME_DONT_FAKE_MONOTONIC: '1', FAKETIME_NO_CACHE: '1' })
    expect(clockSkewEnv(30, lib).FAKETIME).toBe('+30s')
    const missing = path.join(dir, 'none.so')
    expect(() => clockSkewEnv(30, missing)).toThrow(PrerequisiteMissingError)
    try {
      clockSkewEnv(30, missing)
    } catch (error) {
      expect((error as PrerequisiteMissingError).install).toBe('apt-get install -y faketime')
      expect((error as Error).message).toBe(`libfaketime is not installed (${missing}).\n\nLibrary: ${missing}\n\nHint: Install it: apt-get install -y faketime`)
    }
    // FORKCHAOS_FAKETIME_LIB overrides Debian's path.
    const saved = process.env.FORKCHAOS_FAKETIME_LIB
    delete process.env.FORKCHAOS_FAKETIME_LIB
    expect(faketimeLib()).toBe(FAKETIME_LIB)
    process.env.FORKCHAOS_FAKETIME_LIB = missing
    expect(faketimeLib()).toBe(missing)
    if (saved === undefined) delete process.env.FORKCHAOS_FAKETIME_LIB
    else process.env.FORKCHAOS_FAKETIME_LIB = saved
  })

  it('ends skipped with the reason and the install command; every report shows it; the CLI exits 0', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forkchaos-skip-'))
    const scenario = fs
      .readFileSync(path.join(root, file), 'utf8')
      .replace('params: { offsetS: 30 }', 'params: { offsetS: 30, via: faketime }')
      .replace('baseline: { duration: 3s }', 'baseline: { duration: 1s }')
    expect(scenario).toMatch(/via: faketime/)
    const yaml = path.join(dir, 'clock-skew-faketime.yaml')
    fs.writeFileSync(yaml, scenario)
    const missing = path.join(dir, 'no-such-libfaketime.so.1')
    const child = spawn(process.execPath, ['bin/forkchaos.js', 'run', yaml, '--seed', '1', '--report-dir', path.join(dir, 'reports')], {
      cwd: root,
      env: { ...process.env, FORKCHAOS_FAKETIME_LIB: missing, FORKCHAOS_STATE_DIR: dir },
    })
    let out = ''
    child.stdout.on('data', (c: Buffer) => (out += c.toString()))
    child.stderr.on('data', (c: Buffer) => (out += c.toString()))
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)))
    expect(code, out).toBe(0)
    const reason = `libfaketime is not installed (${missing}). Install it: apt-get install -y faketime`
    expect(out).toContain(`  skipped  clock-skew-30s (`)
    expect(out).toContain(`           ${reason}`)
    expect(out).toMatch(/^1 skipped in [\d.]+ s · reports: /m)
    const report = JSON.parse(fs.readFileSync(path.join(dir, 'reports', 'report.json'), 'utf8'))
    expect(report.scenarios[0].verdict).toBe('skipped')
    expect(report.scenarios[0].reason).toBe(reason)
    // Skipped before anything booted: no devnet folder, no pid file left, no baseline run.
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('devnet-'))).toEqual([])
    expect(report.scenarios[0].checks).toEqual([])
    const junit = fs.readFileSync(path.join(dir, 'reports', 'junit.xml'), 'utf8')
    expect(junit).toContain(`<skipped message="${reason}"/>`)
    expect(junit).toMatch(/<testsuites name="forkchaos" tests="1" failures="0" errors="0" skipped="1"/)
    const summary = fs.readFileSync(path.join(dir, 'reports', 'summary.md'), 'utf8')
    expect(summary).toContain('## forkchaos: 1 skipped')
    expect(summary).toContain(`### ⏭️ clock-skew-30s: skipped\n\n${reason}`)
  })
})

describe('clock-skew via libfaketime, installed', () => {
  const lib = faketimeLib()
  const viaFaketime = (s: Scenario): Scenario => ({ ...s, inject: { ...s.inject, faults: s.inject.faults.map((f) => ({ ...f, params: { ...f.params, via: 'faketime' } })) } })
  const escaped = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')

  // CI installs libfaketime (`.ci/run`: apt-get install -y faketime); a machine with Node and npm
  // alone skips this one (the missing-library path is tested above).
  it.skipIf(!fs.existsSync(lib))('+30 s on validator 2 restarted under LD_PRELOAD: held, its Date.now runs 30 s ahead, its proposals refused for drift', async () => {
    const r = await run(viaFaketime(shorter(loadScenario(file), injectMs)))
    expect(r.verdict, r.reason).toBe('held')
    const fault = r.faults[0]
    expect(fault?.params).toEqual({ offsetS: 30, via: 'faketime' })
    // What the restarted processes show: the preload in /proc/<pid>/environ, and the node's own
    // clock (its HTTP Date header, stamped from Date.now) 30 s ahead of ours (±1 s: the header has 1 s resolution).
    const env = `LD_PRELOAD=${escaped(lib)} FAKETIME=\\+30s`
    expect(fault?.evidence?.took).toMatch(
      new RegExp(`^validator 2 restarted under libfaketime: its process \\(pid \\d+\\) runs with ${env} \\(/proc/\\d+/environ\\), its Anvil \\(pid \\d+\\) with ${env}; the Date header of its RPC answers runs \\+(29|30|31) s from our clock$`),
    )
    // The others refused its proposals ~30 s ahead of their clocks; it refused theirs, ~30 s behind its own.
    expect(fault?.evidence?.seen).toMatch(/^validators [0-3, ]+ refused [1-9]\d* proposals of validator 2 for timestamp drift \(validator \d at \d+\/\d+: timestamp \d+ is (2[5-9]|3[0-5])\d{3} ms from the local clock \(max 5000\)\)/)
    expect(fault?.evidence?.seen).toMatch(/; validator 2 refused [1-9]\d* proposals of others for timestamp drift \(timestamp \d+ is -(2[5-9]|3[0-5])\d{3} ms from the local clock \(max 5000\)\)/)
    const refused = r.checks.find((c) => c.name === 'skewed-proposals-refused')
    expect(refused?.observed).toMatch(/^[1-9]\d* refusals of validator 2's proposals for timestamp drift \(by [0-3, ]+\), e\.g\. "timestamp \d+ is \d+ ms from the local clock \(max 5000\)"; 0 of its blocks committed$/)
    expect(r.checks.filter((c) => c.name === 'no-fork').map((c) => c.ok)).toEqual([true, true, true])
    // Restarted on the true clock, it follows the chain again (the scenario's bound: 5 s).
    expect(r.checks.find((c) => c.name === 'catch-up')?.ok).toBe(true)
    expect(liveProcesses()).toEqual([])
  })

  // The check can fail: a preload that does not move the clock (libm, on every glibc system)
  // restarts the validator the same way, and the drill fails with the evidence showing why.
  const inert = '/lib/x86_64-linux-gnu/libm.so.6'
  it.skipIf(!fs.existsSync(inert))('…and a preload that does not move the clock fails the drill: its Date header runs on our time, its blocks commit', async () => {
    const saved = process.env.FORKCHAOS_FAKETIME_LIB
    process.env.FORKCHAOS_FAKETIME_LIB = inert
    try {
      const r = await run(viaFaketime(shorter(loadScenario(file), injectMs)))
      expect(r.verdict, r.reason).toBe('failed')
      // Its blocks commit: on the true clock they are within the drift bound.
      expect(r.reason).toMatch(/^safety check `skewed-proposals-refused` broke in inject: \d+ refusals of validator 2's proposals for timestamp drift .*; [1-9]\d* of its blocks committed/)
      const fault = r.faults[0]
      expect(fault?.evidence?.took).toMatch(new RegExp(`runs with LD_PRELOAD=${escaped(inert)} FAKETIME=\\+30s .*; the Date header of its RPC answers runs [+-][01] s from our clock$`))
      // No refusal anywhere near the 30 s asked for (a chain running a few seconds ahead of
      // the wall clock may still draw a refusal just over the 5 s bound).
      expect(fault?.evidence?.seen ?? '').not.toMatch(/ is -?(2[5-9]|3[0-5])\d{3} ms from the local clock/)
    } finally {
      if (saved === undefined) delete process.env.FORKCHAOS_FAKETIME_LIB
      else process.env.FORKCHAOS_FAKETIME_LIB = saved
    }
    expect(liveProcesses()).toEqual([])
  })
})
