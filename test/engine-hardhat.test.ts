// The Hardhat engine (`target.engine: hardhat`, `run --engine hardhat`): shipped DeFi drills run
// on a real Hardhat node (EDR, npm `hardhat`, a child process of forkchaos) forking the embedded
// chain, and give the verdicts they give on Anvil: held on the reference vault, failed on a
// guard-removed build. What a Hardhat node cannot do (reorgs) is refused at load, exit 2, before
// anything boots. Every Hardhat node started is gone afterwards, also after SIGTERM (looked up in
// /proc by the pids forkchaos recorded, with their process groups).
//
// This file gets its own FORKCHAOS_STATE_DIR, so the pid files it reads are its own.
import { spawn, spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { liveProcesses } from '../src/process/registry.js'
import type { RunReport } from '../src/report/types.js'
import { parseScenario } from '../src/scenario/loader.js'
import { runSuite } from '../src/scenario/suite.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const bin = path.join(root, 'bin', 'forkchaos.js')
const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'forkchaos-engine-test-'))
process.env.FORKCHAOS_STATE_DIR = stateDir
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'forkchaos-engine-drills-'))

// Two drills that write storage and code and revert to snapshots: the oracle drill's cell just
// past the guard (a feed's answer rewritten in storage, found by slot discovery), and the
// dependency revert of the perp's closeTrade (its code replaced by the selector shim).
const oracleCell = fs
  .readFileSync(path.join(root, 'scenarios/defi/oracle-divergence.yaml'), 'utf8')
  .replace(/^sweep: .*$/m, '')
  .replaceAll('"${bps}"', '300')
  .replaceAll('"${direction}"', 'down')
const drills = path.join(work, 'drills')
fs.mkdirSync(drills)
fs.writeFileSync(path.join(drills, 'oracle-divergence.yaml'), oracleCell)
fs.copyFileSync(path.join(root, 'scenarios/defi/blocked-close-trade.yaml'), path.join(drills, 'blocked-close-trade.yaml'))
const closeOnly = path.join(work, 'close')
fs.mkdirSync(closeOnly)
fs.copyFileSync(path.join(root, 'scenarios/defi/blocked-close-trade.yaml'), path.join(closeOnly, 'blocked-close-trade.yaml'))

/** Every Hardhat node pid this process started, seen while the suites ran. */
const hardhatPids = new Set<number>()
const noteHardhat = () => {
  for (const p of liveProcesses()) if (p.kind === 'hardhat') hardhatPids.add(p.pid)
}

/** Pids of live processes in `pgid`'s process group (field 5 of /proc/<pid>/stat), and `pgid` itself if alive. */
function groupMembers(pgid: number): number[] {
  const out: number[] = []
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      // fields[0] is the state: a zombie (Z) has exited.
      if (fields[0] !== 'Z' && (Number(name) === pgid || Number(fields[2]) === pgid)) out.push(Number(name))
    } catch {
      // Gone while we read.
    }
  }
  return out
}

const suite = (paths: string[], engine?: 'hardhat', vaultBuild?: string) =>
  runSuite({
    paths,
    seed: 7,
    source: { kind: 'embedded', ...(vaultBuild ? { vaultBuild } : {}) },
    replay: `npx forkchaos run ${paths.join(' ')} --seed 7`,
    ...(engine ? { engine } : {}),
    onEvent: noteHardhat,
  })

const verdicts = (r: RunReport) => r.scenarios.map((s) => [s.name, s.engine, s.verdict])

afterAll(() => {
  fs.rmSync(work, { recursive: true, force: true })
  fs.rmSync(stateDir, { recursive: true, force: true })
})

describe('the Hardhat engine', () => {
  it('runs the oracle and dependency-revert drills to the verdicts Anvil gives: held on the reference vault, failed on no-close-guard', async () => {
    const t0 = performance.now()
    const onAnvil = await suite([drills])
    const anvilMs = performance.now() - t0
    const t1 = performance.now()
    const onHardhat = await suite([drills], 'hardhat')
    const hardhatMs = performance.now() - t1
    // The README's number comes from this line.
    const each = (r: RunReport) => r.scenarios.map((s) => `${s.name} ${s.durationMs} ms`).join(', ')
    process.stdout.write(`drills, embedded chain boot included: anvil ${(anvilMs / 1000).toFixed(1)} s (${each(onAnvil)}); hardhat ${(hardhatMs / 1000).toFixed(1)} s (${each(onHardhat)})\n`)
    expect(verdicts(onAnvil)).toEqual([
      ['blocked-close-trade', 'anvil', 'held'],
      ['oracle-divergence-only-unwind', 'anvil', 'held'],
    ])
    expect(verdicts(onHardhat)).toEqual([
      ['blocked-close-trade', 'hardhat', 'held'],
      ['oracle-divergence-only-unwind', 'hardhat', 'held'],
    ])
    // The faults took effect and were seen on the Hardhat node, as on Anvil.
    const oracle = onHardhat.scenarios.find((s) => s.name === 'oracle-divergence-only-unwind')
    expect(oracle?.faults[0]?.evidence?.took).toMatch(/^latestRoundData\(\)\.answer 300000000000 → 291000000000/)
    expect(oracle?.checks.find((c) => c.name === 'only-unwind-engaged')?.observed).toBe('riskMode 1')
    expect(hardhatPids.size).toBe(2)

    const broken = await suite([closeOnly], 'hardhat', 'ReferenceVault.no-close-guard')
    expect(verdicts(broken)).toEqual([['blocked-close-trade', 'hardhat', 'failed']])
    // The swallowed closeTrade revert is found in the call frames built from Hardhat's struct logs.
    const partial = broken.scenarios[0]?.checks.find((c) => c.name === 'no-partial-state' && c.phase === 'inject')
    expect(partial?.ok).toBe(false)
    expect(partial?.observed).toMatch(/^inject cycle#1: call to 0x[0-9a-f]{40} \(calldata not traced\) failed \(execution reverted\) inside a successful cycle, and state changed: totalAssets\(\)/)
    expect(hardhatPids.size).toBe(3)
    for (const pid of hardhatPids) expect(groupMembers(pid), `hardhat node ${pid} or its group is still running`).toEqual([])
  })

  it('refuses a reorg on the Hardhat engine at load, exit 2, naming the file, field and reason, with nothing started', () => {
    const file = path.join(work, 'reorg-hardhat.yaml')
    fs.writeFileSync(file, fs.readFileSync(path.join(root, 'scenarios/defi/reorg.yaml'), 'utf8').replace(/^target: \{ isolation: fresh \}$/m, 'target: { isolation: fresh, engine: hardhat }'))
    const env = { ...process.env, FORKCHAOS_STATE_DIR: fs.mkdtempSync(path.join(stateDir, 'cli-')) }
    const run = spawnSync(process.execPath, [bin, 'run', file, '--report-dir', path.join(work, 'reports')], { encoding: 'utf8', env })
    expect(run.status).toBe(2)
    expect(run.stderr).toContain(`${file}:21: \`inject.faults[0].type\` (chain.reorg): engine hardhat cannot reorg: a Hardhat node has no method that replaces mined blocks`)
    expect(run.stderr).toContain('Field: inject.faults[0].type')
    expect(run.stderr).not.toMatch(/\n\s+at /)
    // `--engine` on a file that does not say, through `validate` too.
    const validate = spawnSync(process.execPath, [bin, 'validate', 'scenarios/defi/reorg.yaml', '--engine', 'hardhat'], { encoding: 'utf8', env, cwd: root })
    expect(validate.status).toBe(2)
    expect(validate.stderr).toContain('scenarios/defi/reorg.yaml: `inject.faults[0].type` (chain.reorg): engine hardhat cannot reorg:')
    expect(validate.stderr).toContain('(`--engine hardhat`)')
    // Anvil's own upstream flags have no Hardhat equivalent.
    const flags = spawnSync(process.execPath, [bin, 'validate', 'scenarios/rpc/upstream-degraded.yaml', '--engine', 'hardhat'], { encoding: 'utf8', env, cwd: root })
    expect(flags.status).toBe(2)
    expect(flags.stderr).toContain('scenarios/rpc/upstream-degraded.yaml: `target.anvil` (retries, timeoutMs, computeUnitsPerSecond): engine hardhat cannot take Anvil\'s own upstream flags')
    // Nothing booted: no process was ever recorded in that state dir.
    expect(fs.existsSync(path.join(env.FORKCHAOS_STATE_DIR, 'pids')) ? fs.readdirSync(path.join(env.FORKCHAOS_STATE_DIR, 'pids')) : []).toEqual([])
  })

  it('stops the Hardhat node when forkchaos gets SIGTERM mid-run', async () => {
    const dir = fs.mkdtempSync(path.join(stateDir, 'sigterm-'))
    const pids = path.join(dir, 'pids')
    const child = spawn(process.execPath, [bin, 'run', path.join(drills, 'oracle-divergence.yaml'), '--engine', 'hardhat', '--report-dir', path.join(work, 'sigterm-reports')], {
      env: { ...process.env, FORKCHAOS_STATE_DIR: dir },
      stdio: 'ignore',
    })
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
    let hardhat: number | undefined
    try {
      // Waits for the Hardhat node's pid file (generous: the machine is shared).
      for (let i = 0; i < 1_200 && hardhat === undefined && child.exitCode === null; i++) {
        await new Promise((r) => setTimeout(r, 50))
        for (const name of fs.existsSync(pids) ? fs.readdirSync(pids) : []) {
          try {
            const entry = JSON.parse(fs.readFileSync(path.join(pids, name), 'utf8')) as { pid: number; kind: string }
            if (entry.kind === 'hardhat') hardhat = entry.pid
          } catch {
            // Half-renamed or gone.
          }
        }
      }
      expect(hardhat, 'no Hardhat node was recorded').toBeDefined()
      child.kill('SIGTERM')
      expect(await exited).toBe(143)
      // A SIGTERM while the node still starts leaves it to the exit hook's SIGKILL of its group:
      // gone a moment after forkchaos (on a busy machine, checked at once, it was still dying).
      for (let i = 0; i < 100 && groupMembers(hardhat as number).length > 0; i++) await new Promise((r) => setTimeout(r, 50))
      expect(groupMembers(hardhat as number)).toEqual([])
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL')
    }
  })

  it('refuses `staleS` on a V2 pair and `cumulativeS` on a feed at load where the target\'s ABI is known', () => {
    const scenario = (target: string, params: string) => Buffer.from(`name: n\nhypothesis: h\ninject:\n  faults:\n    - { type: oracle.divergence, target: ${target}, params: ${params} }\n`)
    expect(() => parseScenario(scenario('pair', '{ bps: 300, staleS: 600 }'), 'stale.yaml')).toThrow(
      'stale.yaml:5: `inject.faults[0].params.staleS` is refused: the target `pair` is a V2-style pair, which has no `updatedAt` to age (its time is `blockTimestampLast`, which a swap sets).',
    )
    expect(() => parseScenario(scenario('feed', '{ bps: 300, cumulativeS: 600 }'), 'cum.yaml')).toThrow(
      "cum.yaml:5: `inject.faults[0].params.cumulativeS` is refused: the target `feed` is a Chainlink-style feed (it answers `latestRoundData()`): `cumulativeS` moves a V2 pair's cumulative prices.",
    )
    // Each param on the source it is for is accepted.
    expect(parseScenario(scenario('feed', '{ bps: 300, staleS: 600 }'), 'ok.yaml').inject.faults).toHaveLength(1)
    expect(parseScenario(scenario('pair', '{ bps: 300, cumulativeS: 600 }'), 'ok.yaml').inject.faults).toHaveLength(1)
    // A bare address says nothing at load: `apply` refuses it once the chain tells what it is.
    expect(parseScenario(scenario('"0x5FbDB2315678afecb367f032d93F642f64180aa3"', '{ bps: 300, staleS: 600 }'), 'ok.yaml').inject.faults).toHaveLength(1)
  })
})
