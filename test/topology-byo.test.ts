import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import * as Experiment from '../src/experiment/experiment.js'
import { devnetTarget } from '../src/experiment/targets/devnet.js'
import { InfraError, InputError } from '../src/errors.js'
import { liveProcesses } from '../src/process/registry.js'
import type { ScenarioReport } from '../src/report/types.js'
import { type Devnet, faketimeLib, startDevnet } from '../src/targets/devnet.js'
import { expectSeen } from './drill-seen.js'
import { loadText } from './scenario-text.js'

/**
 * Bring your own nodes: a user topology whose consensus command is a launcher script (a shell
 * that runs the node as its child, not forkchaos's main.js directly) and whose execution client
 * is Anvil by command template. forkchaos fills the placeholders, points the peer list at its
 * link proxies, and owns the processes: kill, restart, wedge, partition (on the rewritten peer
 * links) and clock skew by libfaketime take effect on it and are seen, with verdicts. One
 * devnet serves every drill; every process of every group is gone after down, a failed start and
 * Ctrl-C.
 */
const root = fileURLToPath(new URL('..', import.meta.url))
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fc-byo-'))
const launcher = path.join(tmp, 'launch.sh')
// Not `exec`: the shell stays the group leader, the node its child; signals must reach both.
fs.writeFileSync(launcher, '#!/bin/sh\necho "launcher $$: $*" >&2\n"$@"\n', { mode: 0o755 })
const execution = `
    execution:
      client: anvil
      command: ["{anvil}", --host, 127.0.0.1, --port, "{enginePort}", --no-mining, --timestamp, "{genesisTime}", --chain-id, "31337", --accounts, "200", --balance, "10000", --gas-limit, "30000000", --mnemonic, "test test test test test test test test test test test junk"]
    pod: { namespace: byo, labels: { app: byo } }
    rpc: ["http://127.0.0.1:{rpcPort}"]
`
const topologyText = (consensus: string) => `name: byo\nvalidators:\n  count: 4\n  template:\n    name: byo-{id}\n    consensus:\n${consensus}${execution}`
const topologyFile = path.join(tmp, 'byo.yaml')
fs.writeFileSync(topologyFile, topologyText(`      command: ["${launcher}", "{node}", "{forkchaos}/dist/src/devnet/node/main.js", "{dataDir}/config.json"]\n      env: { BYO_VALIDATOR: "{id}" }\n`))

/** Live (not zombie) pids whose process group is one of `pgids`. */
function inGroups(pgids: readonly number[]): number[] {
  const out: number[] = []
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8')
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      if (state !== 'Z' && pgids.includes(Number(pgrp))) out.push(Number(entry))
    } catch {}
  }
  return out
}
const stateOf = (pid: number) => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0]
  } catch {
    return undefined
  }
}
const waitFor = async (predicate: () => boolean, ms: number) => {
  const end = Date.now() + ms
  while (!predicate() && Date.now() < end) await new Promise((r) => setTimeout(r, 50))
  return predicate()
}
const cmdline = (pid: number) => fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, -1)

let devnet: Devnet | undefined
const groups = new Set<number>()
beforeAll(async () => {
  devnet = await startDevnet({ topology: topologyFile, slotMs: 1_000, seed: 5, execProxy: false })
  for (const n of devnet.nodes) groups.add(n.pid).add(n.anvil.pid)
}, 60_000)
afterAll(async () => {
  await devnet?.down()
  // Every group forkchaos started (the first processes' and the restarted ones'): nothing left.
  expect(await waitFor(() => inGroups([...groups]).length === 0, 5_000)).toBe(true)
})

const run = async (yaml: string, name: string, probe?: 'eth'): Promise<ScenarioReport> => {
  const scenario = loadText(`name: ${name}\nhypothesis: see the test\ntarget: { kind: devnet, slot: 1s }\n${yaml}`, `${name}.yaml`)
  const target = devnetTarget({ reuse: devnet as Devnet, ...(probe ? { probe } : {}) })
  const report = await Experiment.run(scenario, target, { seed: 5, replay: 'test' })
  for (const n of devnet?.nodes ?? []) groups.add(n.pid).add(n.anvil.pid)
  return report
}
const check = (r: ScenarioReport, name: string, phase: string) => r.checks.find((c) => c.name === name && c.phase === phase)
/** The reason and every failed check's observation: what an assertion on a verdict prints when it fails. */
const why = (r: ScenarioReport) => [r.reason, ...r.checks.filter((c) => !c.ok).map((c) => `${c.phase} ${c.name}: ${c.observed}`)].join('; ')
const quick = 'baseline: { duration: 2s }\ninject:\n  faults: [FAULT]\n  duration: 3s\nrecover: { duration: 10s }\n'

describe('a validator forkchaos did not write (launcher script + Anvil by template)', () => {
  it('runs the rendered commands, the node under its launcher, with the peer list on forkchaos\'s link proxies', () => {
    const d = devnet as Devnet
    for (const node of d.nodes) {
      // The kernel runs the script with its interpreter: /bin/sh <launcher> <argv…>.
      expect(cmdline(node.pid).slice(1)).toEqual(node.commands.consensus)
      expect(node.commands.consensus.slice(0, 2)).toEqual([launcher, process.execPath])
      expect(cmdline(node.anvil.pid)).toEqual(node.commands.execution)
      const [child] = inGroups([node.pid]).filter((p) => p !== node.pid)
      expect(cmdline(child as number).slice(1)).toEqual(node.commands.consensus.slice(2))
      expect(fs.readFileSync(`/proc/${child}/environ`, 'utf8').split('\0')).toContain(`BYO_VALIDATOR=${node.id}`)
      const config = JSON.parse(fs.readFileSync(path.join(node.dataDir, 'config.json'), 'utf8')) as { peers: { id: number; address: string }[] }
      expect(config.peers).toEqual(d.nodes.filter((o) => o.id !== node.id).map((o) => ({ id: o.id, address: d.link(node.id, o.id).listen })))
      expect(node.rpcUrls).toEqual([node.rpcUrl.replace(/\/$/, '')])
    }
  })

  it('node.kill and node.restart: the other three commit, it comes back and catches up (held)', async () => {
    const checks = 'checks:\n  - { name: progress, kind: liveness, progress: { minCommitsPerSlot: 0.5 } }\n  - { name: no-fork, kind: safety, noFork: true }\n  - { name: catch-up, kind: liveness, phases: [recover], catchUp: { node: 3, withinMs: 8000 } }\n'
    const pidBefore = devnet?.nodes[3]?.pid
    const kill = expectSeen(await run(checks + quick.replace('FAULT', '{ type: node.kill, target: 3 }'), 'byo-kill'))
    expect(kill.verdict, why(kill)).toBe('held')
    // Killed whole: the launcher and its node (one group); started again as a new group.
    expect(inGroups([pidBefore as number])).toEqual([])
    expect(devnet?.nodes[3]?.pid).not.toBe(pidBefore)
    const restart = expectSeen(await run(checks + quick.replace('FAULT', '{ type: node.restart, target: 3 }'), 'byo-restart'))
    expect(restart.verdict, why(restart)).toBe('held')
  }, 60_000)

  it('node.wedge: SIGSTOP reaches the launcher and its node; net.partition on the rewritten links stalls the chain, judged over eth_* only (its progress check fails: degraded)', async () => {
    // While wedged, every process of its group (the launcher and its node) is stopped (state T).
    const wedged = devnet?.nodes[1]?.pid as number
    const stopped = new Set<number>()
    const poll = setInterval(() => {
      for (const p of inGroups([wedged])) if (stateOf(p) === 'T') stopped.add(p)
    }, 100)
    // (This drill once ended degraded on busy machines: the probe awaited a follow-up read of the
    // validator SIGSTOPped mid-tick, and sampled nothing for the whole wedge. test/devnet-probe.test.ts.)
    const wedge = expectSeen(
      await run(
        'checks:\n  - { name: progress, kind: liveness, progress: { minCommitsPerSlot: 0.5 } }\n  - { name: no-fork, kind: safety, noFork: true }\n' + quick.replace('FAULT', '{ type: node.wedge, target: 1 }'),
        'byo-wedge',
      ),
    )
    clearInterval(poll)
    expect([wedge.verdict, wedge.faults[0]?.evidence?.took], why(wedge)).toEqual(['held', 'validator 1 stopped with SIGSTOP'])
    expect(stopped.size).toBe(2)
    expect(stopped.has(wedged)).toBe(true)
    // No must-stall here: over eth_* the height in flight at the split (committed by 2f+1 before it) cannot be told apart by its signers.
    // Inject 10 s: that height, and one more if the split lands a slot late on a busy machine, are
    // ≤ 0.2 commits a slot, under the 0.3 progress needs (at 5 s, two such commits, 0.4, held on a
    // clean-clone run at load 7).
    const split = await run(
      'checks:\n  - { name: progress, kind: liveness, phases: [inject, recover], progress: { minCommitsPerSlot: 0.3 } }\n  - { name: no-fork, kind: safety, noFork: true }\n' +
        quick.replace('FAULT', '{ type: net.partition, params: { sizes: [f+1, 2f] } }').replace('duration: 3s', 'duration: 10s'),
      'byo-partition',
      'eth',
    )
    expectSeen(split)
    // The links forkchaos wrote into the peer list carry the partition: no commit while split.
    expect([split.verdict, check(split, 'progress', 'inject')?.ok, check(split, 'progress', 'recover')?.ok, check(split, 'no-fork', 'recover')?.ok], why(split)).toEqual(['degraded', false, true, true])
    // Judged from each validator's topology `rpc` over eth_getBlockByNumber only: no signers to count.
    expect(check(split, 'progress', 'recover')?.expected).toMatch(/\(signers are not visible over eth_\* JSON-RPC: not judged\)$/)
    // A check that needs the embedded node's fc_* RPC is refused on an eth_* probe, before anything runs.
    const refused = await run('checks:\n  - { name: drift, kind: safety, driftRejected: { proposer: 2 } }\n' + quick.replace('FAULT', '{ type: node.wedge, target: 1 }'), 'byo-refused', 'eth').catch((e: unknown) => e)
    expect(refused).toBeInstanceOf(InputError)
    expect((refused as InputError).shortMessage).toBe(
      "byo-refused.yaml: `checks[0].driftRejected` reads the embedded node's own RPC (fc_*); this devnet's probe reads eth_* only (its topology says `probe: eth`): progress, noFork, mustStall, keepsCommitted, catchUp can be judged.",
    )
    // Nothing was applied: validator 1 runs (not wedged).
    expect(stateOf(devnet?.nodes[1]?.pid as number)).not.toBe('T')
  }, 60_000)

  it('node.clock-skew via libfaketime: the launcher and its node restart preloaded, their clock 30 s ahead (skipped without libfaketime)', async () => {
    const r = await run('checks:\n  - { name: progress, kind: liveness, progress: { minCommitsPerSlot: 0.5 } }\n  - { name: no-fork, kind: safety, noFork: true }\n' + quick.replace('FAULT', '{ type: node.clock-skew, target: 2, params: { offsetS: 30, via: faketime } }'), 'byo-skew')
    if (!fs.existsSync(faketimeLib())) {
      // Debian's faketime is not installed here: the scenario says so, with the install command.
      expect([r.verdict, r.reason]).toEqual(['skipped', expect.stringContaining('apt-get install -y faketime')])
      return
    }
    expectSeen(r)
    expect(r.verdict).toBe('held')
    expect(r.faults[0]?.evidence?.took).toMatch(/^validator 2 restarted under libfaketime: its process \(pid \d+\) runs with .*FAKETIME=\+30s.* the Date header of its RPC answers runs \+(29|30|31) s from our clock$/)
  }, 60_000)
})

describe('processes of a topology devnet are stopped by group', () => {
  it('a consensus command that exits before READY: startDevnet fails naming it, and every process it started is gone', async () => {
    const broken = path.join(tmp, 'broken.yaml')
    fs.writeFileSync(broken, topologyText('      command: ["/bin/sh", "-c", "echo no node here >&2; exit 3", "{dataDir}/config.json"]\n'))
    const seen = new Set<number>()
    const watch = setInterval(() => liveProcesses().forEach((p) => seen.add(p.pid)), 20)
    const error = await startDevnet({ topology: broken, slotMs: 1_000, execProxy: false }).catch((e: unknown) => e)
    clearInterval(watch)
    expect(error).toBeInstanceOf(InfraError)
    expect((error as InfraError).shortMessage).toMatch(/^`devnet-node-\d` exited before it was ready\.$/)
    // Its four Anvils started first; each went with its consensus command.
    const mine = [...seen].filter((p) => !groups.has(p))
    expect(mine.length).toBeGreaterThanOrEqual(4)
    expect(await waitFor(() => inGroups(mine).length === 0, 5_000)).toBe(true)
  }, 30_000)

  it('devnet up --topology: Ctrl-C while it starts exits 130 and leaves no process of any group', async () => {
    const stateDir = fs.mkdtempSync(path.join(tmp, 'state-'))
    const child = spawn(process.execPath, ['bin/forkchaos.js', 'devnet', 'up', '--topology', topologyFile], { cwd: root, env: { ...process.env, FORKCHAOS_STATE_DIR: stateDir } })
    let err = ''
    child.stderr.on('data', (c: Buffer) => (err += c.toString()))
    const exit = new Promise<number | null>((r) => child.once('exit', (code, signal) => r(code ?? (signal ? 128 : null))))
    const recorded = () => {
      try {
        return fs.readdirSync(path.join(stateDir, 'pids')).map((f) => (JSON.parse(fs.readFileSync(path.join(stateDir, 'pids', f), 'utf8')) as { pid: number; kind: string }))
      } catch {
        return []
      }
    }
    // Interrupted once a launcher runs (its Anvil started first).
    expect(await waitFor(() => recorded().some((r) => r.kind === 'validator'), 30_000)).toBe(true)
    const pids = recorded().map((r) => r.pid)
    child.kill('SIGINT')
    expect(await exit).toBe(130)
    expect(err).toContain('forkchaos: SIGINT: reverting faults and stopping processes')
    expect(await waitFor(() => inGroups(pids).length === 0, 5_000)).toBe(true)
  }, 45_000)
})
