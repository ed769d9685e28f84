import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { packageRoot } from '../src/contracts.js'
import { InputError } from '../src/errors.js'
import * as Experiment from '../src/experiment/experiment.js'
import { endpointsTarget, prepareForEndpoints } from '../src/experiment/targets/endpoints.js'
import { loadScenario } from '../src/scenario/loader.js'
import { type AnvilInstance, startAnvil } from '../src/targets/anvil.js'
import { type Devnet, startDevnet } from '../src/targets/devnet.js'
import { poisonLinks } from '../src/targets/devnet/links.js'
import { loadEndpoints } from '../src/topology/endpoints.js'

/**
 * `forkchaos run <scenario> --target endpoints.yaml`: the checks of a devnet scenario judged on
 * nodes forkchaos did not start, over eth_getBlockByNumber only. Here the nodes are a devnet the
 * test starts (startDevnet), reached only by their JSON-RPC URLs.
 */
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fc-endpoints-'))
const write = (name: string, text: string) => {
  const file = path.join(tmp, name)
  fs.writeFileSync(file, text)
  return file
}
/** The CLI, asynchronously: the devnet's link proxies live in this process and must keep forwarding while it runs. */
function cli(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['bin/forkchaos.js', ...args], { cwd: packageRoot })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()))
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
  const timer = setTimeout(() => child.kill('SIGKILL'), 120_000)
  return new Promise((resolve) =>
    child.once('close', (code) => {
      clearTimeout(timer)
      resolve({ status: code, stdout, stderr })
    }),
  )
}
const checksOnly = (name: string, extra = '', ratio = 0.3, injectS = 4) =>
  write(
    `${name}.yaml`,
    `name: ${name}
hypothesis: the nodes keep committing and agree at every height
target: { kind: devnet, slot: 1s }
checks:
  - { name: progress, kind: liveness, progress: { minCommitsPerSlot: ${ratio} } }
  - { name: no-fork, kind: safety, noFork: true }
  - { name: keeps-committed, kind: safety, keepsCommitted: true }
${extra}baseline: { duration: 3s }
inject: { faults: [], duration: ${injectS}s }
recover: { duration: 6s }
`,
  )

let devnet: Devnet
let stranger: AnvilInstance | undefined
let endpointsFile = ''
beforeAll(async () => {
  devnet = await startDevnet({ validators: 4, slotMs: 1_000, execProxy: false })
  endpointsFile = write('endpoints.yaml', `name: local\nendpoints:\n${devnet.nodes.map((n) => `  - { name: v${n.id}, url: "${n.rpcUrl}" }`).join('\n')}\n`)
}, 90_000)
afterAll(async () => {
  const pids = devnet ? devnet.nodes.flatMap((n) => [n.pid, n.anvil.pid]) : []
  await devnet?.down()
  await stranger?.stop()
  // Nothing this file started outlives it (the validators it killed, the ones it left running).
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0)
      return true
    } catch {
      return false
    }
  }
  for (let i = 0; i < 100 && pids.some(alive); i++) await new Promise((r) => setTimeout(r, 50))
  expect(pids.filter(alive)).toEqual([])
}, 30_000)

describe('checks on endpoints', () => {
  it('a checks-only drill on a healthy devnet is held (CLI, exit 0), read over eth_getBlockByNumber', async () => {
    const reportDir = path.join(tmp, 'reports-held')
    const r = await cli(['run', checksOnly('healthy'), '--target', endpointsFile, '--json', '--report-dir', reportDir])
    expect(r.stderr).toBe('')
    expect(r.status).toBe(0)
    const report = JSON.parse(r.stdout) as { target: { kind: string; source: string }; replay: string; scenarios: ({ verdict: string; checks: { name: string; ok: boolean; observed: string; expected: string }[] } & Record<string, unknown>)[] }
    expect(report.target).toEqual({ kind: 'endpoints', source: endpointsFile, forkBlock: null })
    expect(report.replay).toContain(`--target ${endpointsFile}`)
    const s = report.scenarios[0]
    expect(s?.verdict).toBe('held')
    expect(s?.checks.every((c) => c.ok)).toBe(true)
    const noFork = s?.checks.find((c) => c.name === 'no-fork' && (c as { phase?: string }).phase === 'recover')
    // Hashes were read from all four at the same heights: "N heights, one block each".
    expect(Number(/^(\d+) heights, one block each/.exec(noFork?.observed ?? '')?.[1])).toBeGreaterThan(5)
    expect(s?.checks.find((c) => c.name === 'progress')?.expected).toMatch(/per 1000 ms slot\) \(signers are not visible over eth_\* JSON-RPC: not judged\)$/)
    const nodes = (s?.endpoints as { nodes: { name: string; latest: number; safe: number | null; finalized: number | null; lastError: string | null }[] }).nodes
    expect(nodes.map((n) => n.name)).toEqual(['v0', 'v1', 'v2', 'v3'])
    for (const n of nodes) {
      expect(n.latest).toBeGreaterThan(5)
      expect(n.safe).toBeGreaterThan(0)
      expect(n.finalized).toBeGreaterThan(0)
      expect(n.lastError).toBeNull()
    }
  }, 120_000)

  it('an endpoint on another chain (its own Anvil, --block-time 1) breaks no-fork: failed', async () => {
    stranger = await startAnvil({ label: 'endpoints-stranger', extraArgs: ['--block-time', '1'] })
    const mixed = write('mixed.yaml', `endpoints:\n${devnet.nodes.slice(0, 3).map((n) => `  - { url: "${n.rpcUrl}" }`).join('\n')}\n  - { url: "${stranger.url}" }\n`)
    const r = await cli(['run', checksOnly('stranger'), '--target', mixed, '--json', '--report-dir', path.join(tmp, 'reports-stranger')])
    expect(r.status).toBe(1)
    const s = (JSON.parse(r.stdout) as { scenarios: { verdict: string; reason: string; checks: { name: string; ok: boolean; observed: string }[] }[] }).scenarios[0]
    expect(s?.verdict).toBe('failed')
    expect(s?.reason).toMatch(/no-fork/)
    expect(s?.checks.find((c) => c.name === 'no-fork' && !c.ok)?.observed).toMatch(/^\d+ heights with conflicting blocks; height \d+: (0x[0-9a-f]{8}… on [012,]{5} vs 0x[0-9a-f]{8}… on 3|0x[0-9a-f]{8}… on 3 vs 0x[0-9a-f]{8}… on [012,]{5})$/)
    await stranger.stop()
    stranger = undefined
  }, 120_000)

  it('partition-2-2, split outside forkchaos (as the Chaos Mesh workflow would): held, with the fault recorded as external; nobody splitting it: must-stall failed', async () => {
    const endpoints = loadEndpoints(endpointsFile)
    const scenario = () => prepareForEndpoints(loadScenario(path.join(packageRoot, 'scenarios/devnet/partition-2-2.yaml')), endpoints)
    // The "cluster": {0, 1} | {2, 3} on the devnet's own links, from inject until the revert.
    const links = [0, 1].flatMap((a) => [2, 3].flatMap((b) => [{ from: a, to: b }, { from: b, to: a }]))
    let heal: (() => void) | undefined
    const report = await Experiment.run(scenario(), endpointsTarget(endpoints), {
      seed: 7,
      replay: 'test',
      onEvent: (e) => {
        if (e.type === 'phase' && e.phase === 'inject') heal = poisonLinks(devnet, links, { type: 'partition', attributes: {} }, 'cluster')
        if (e.type === 'phase' && e.phase === 'revert') heal?.()
      },
    })
    expect([report.verdict, report.reason]).toEqual(['held', 'all 6 checks held through baseline, inject and recover'])
    expect(report.faults).toEqual([])
    expect(report.externalFaults).toEqual([
      { type: 'net.partition', target: null, params: { sizes: ['f+1', '2f'] }, appliedBy: expect.stringMatching(/^external \(not applied by forkchaos/), window: { phase: 'inject', from: expect.any(Number), to: expect.any(Number) } },
    ])
    const unsplit = await Experiment.run(scenario(), endpointsTarget(endpoints), { seed: 7, replay: 'test' })
    expect(unsplit.verdict).toBe('failed')
    expect(unsplit.reason).toMatch(/must-stall/)
    expect(unsplit.checks.find((c) => c.name === 'must-stall')?.observed).toMatch(/^[1-9]\d* commits between/)
  }, 150_000)

  it('blocks stop (2 of 4 validators killed when inject starts, never back): failed; then a baseline with no progress: aborted', async () => {
    const endpoints = loadEndpoints(endpointsFile)
    const target = endpointsTarget(endpoints)
    // ≥ 3 commits needed in the 6 s inject window (0.5 per slot). At 0.3 in 4 s one commit passed,
    // and one or two can be counted on a busy machine: the block in flight at the kill, and the
    // last poll before the window read a little earlier.
    const scenario = prepareForEndpoints(loadScenario(checksOnly('stall', '', 0.5, 6)), endpoints)
    let killed: Promise<unknown> | undefined
    const report = await Experiment.run(scenario, target, {
      seed: 7,
      replay: 'test',
      onEvent: (e) => {
        if (e.type === 'phase' && e.phase === 'inject') killed = Promise.all([devnet.stopNode(2), devnet.stopNode(3)])
      },
    })
    await killed
    expect(report.verdict).toBe('failed')
    expect(report.reason).toMatch(/progress/)
    const inject = report.checks.find((c) => c.name === 'progress' && c.phase === 'inject')
    expect(inject?.ok).toBe(false)
    expect(report.checks.find((c) => c.name === 'progress' && c.phase === 'recover')?.ok).toBe(false)
    // The stopped endpoints say why they gave no height.
    const nodes = (report.endpoints as { nodes: { lastError: string | null }[] }).nodes
    expect(nodes[2]?.lastError).toMatch(/^The JSON-RPC endpoint did not answer\. /)
    expect(nodes[0]?.lastError).toBeNull()

    const again = await Experiment.run(prepareForEndpoints(loadScenario(checksOnly('stalled')), endpoints), target, { seed: 7, replay: 'test' })
    expect(again.verdict).toBe('aborted')
    expect(again.reason).toMatch(/^steady state did not hold at baseline, so no fault was injected: `progress` observed 0 commits/)
  }, 120_000)
})

describe('what endpoints cannot run is refused at load (exit 2)', () => {
  it('node.kill: exit 2 naming the fault and why, before anything runs', async () => {
    const r = await cli(['run', 'scenarios/devnet/kill-restart.yaml', '--target', endpointsFile])
    expect(r.status).toBe(2)
    // Only the banner: no scenario ran.
    expect(r.stdout).toMatch(/^forkchaos: seed \d+ · scenarios\/devnet\/kill-restart\.yaml\n$/)
    expect(r.stderr.split('\n')[0]).toBe(
      `forkchaos: scenarios/devnet/kill-restart.yaml: cannot run on the endpoints of ${endpointsFile} (no process control): \`inject.faults[0]\` node.kill: it needs process control of the validator (signals, restarts with the same data, its clock or disk), which an endpoints target does not have.`,
    )
  })
  it('byzantine and mempool faults, a check that reads fc_* RPC, a fork scenario', () => {
    const refused = (file: string) => {
      try {
        prepareForEndpoints(loadScenario(file), loadEndpoints(endpointsFile))
      } catch (e) {
        expect(e).toBeInstanceOf(InputError)
        return (e as InputError).shortMessage
      }
      throw new Error('not refused')
    }
    expect(refused(path.join(packageRoot, 'scenarios/devnet/state-root-flip.yaml'))).toMatch(/`inject\.faults\[0\]` byzantine\.state-root-flip: it needs forkchaos's proxy on a proposer's execution link.*; `checks\[\d\]\.rejects`: it reads the embedded node's own RPC \(fc_\*\)/)
    expect(refused(path.join(packageRoot, 'scenarios/devnet/mempool-flood.yaml'))).toMatch(/`inject\.faults\[0\]` mempool\.flood: it needs the embedded devnet's funded accounts/)
    expect(refused(path.join(packageRoot, 'scenarios/defi/reorg.yaml'))).toMatch(/runs devnet scenarios \(`target\.kind: devnet`\); this one's target is a fork\.$/)
  })
  it('net.partition is the cluster\'s to apply: accepted, recorded as external, nothing applied by forkchaos', () => {
    const s = prepareForEndpoints(loadScenario(path.join(packageRoot, 'scenarios/devnet/partition-2-2.yaml')), loadEndpoints(endpointsFile))
    expect(s.inject.faults).toEqual([])
    expect(s.checks.map((c) => c.name)).toEqual(['progress', 'must-stall', 'no-fork'])
  })
  it('bad endpoints files: file, line, field and the bound', async () => {
    const bad = async (name: string, text: string) => {
      const r = await cli(['run', 'scenarios/devnet/partition-2-2.yaml', '--target', write(name, text)])
      expect(r.status).toBe(2)
      return r.stderr.split('\n')[0]
    }
    expect(await bad('e1.yaml', 'endpoints:\n  - { url: "ftp://x" }\n')).toBe(`forkchaos: ${tmp}/e1.yaml:2: \`endpoints[0].url\` must match ^https?://[^\\s]+$. Got \`"ftp://x"\`.`)
    expect(await bad('e2.yaml', `endpoints:\n${Array.from({ length: 11 }, (_, i) => `  - { url: "http://127.0.0.1:${9000 + i}" }`).join('\n')}\n`)).toBe(`forkchaos: ${tmp}/e2.yaml:2: \`endpoints\` must have at most 10 items. Got 11.`)
    expect(await bad('e3.yaml', 'endpoints:\n  - { url: "http://127.0.0.1:1" }\n  - { url: "http://127.0.0.1:1" }\n')).toBe(`forkchaos: ${tmp}/e3.yaml:3: \`endpoints[1].url\` repeats \`endpoints[0].url\` (http://127.0.0.1:1): each validator has its own endpoint.`)
    expect(await bad('e4.yaml', 'pollInterval: 5ms\nendpoints:\n  - { url: "http://127.0.0.1:1" }\n')).toBe(`forkchaos: ${tmp}/e4.yaml:1: \`pollInterval\` must be between 100ms and 10s. Got \`5ms\`.`)
    expect(await bad('e5.yaml', 'endpoint: []\n')).toBe(`forkchaos: ${tmp}/e5.yaml:1: \`endpoint\` is not a known field.`)
    // partition-2-2 names validators 0-3 (sizes f+1, 2f of 4); its checks need no id, so 2 endpoints load: the count is the endpoints'.
    const few = write('two.yaml', 'endpoints:\n  - { url: "http://127.0.0.1:1" }\n  - { url: "http://127.0.0.1:2" }\n')
    expect((await cli(['run', 'scenarios/devnet/kill-restart.yaml', '--target', few])).stderr).toMatch(/`inject\.faults\[0\]\.target` is validator 3; .*two\.yaml lists 2 endpoints \(validators 0–1\); `checks\[2\]\.catchUp\.node` is validator 3/)
  })
})
