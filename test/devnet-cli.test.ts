import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'

/** `forkchaos devnet up / status / down` and Ctrl-C in a devnet run leave no process behind. */
const root = fileURLToPath(new URL('..', import.meta.url))
let stateDir = ''
const started: number[] = []

function cli(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, ['bin/forkchaos.js', ...args], { cwd: root, env: { ...process.env, FORKCHAOS_STATE_DIR: stateDir, ...env } })
  let out = ''
  let err = ''
  child.stdout.on('data', (c: Buffer) => (out += c.toString()))
  child.stderr.on('data', (c: Buffer) => (err += c.toString()))
  const exit = new Promise<number | null>((r) => child.once('exit', (code, signal) => r(code ?? (signal ? 128 : null))))
  return { child, exit, out: () => out, err: () => err }
}
const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
const recordedPids = () => {
  try {
    return fs.readdirSync(path.join(stateDir, 'pids')).map((f) => Number(f.replace('.json', '')))
  } catch {
    return []
  }
}
const waitFor = async (predicate: () => boolean, ms: number) => {
  const end = Date.now() + ms
  while (!predicate() && Date.now() < end) await new Promise((r) => setTimeout(r, 50))
  return predicate()
}

afterEach(() => {
  for (const pid of [...started, ...recordedPids()])
    try {
      process.kill(-pid, 'SIGKILL')
    } catch {}
  started.length = 0
})

describe('devnet CLI', () => {
  it('up --detach, status --json, down: four validators answer, and down leaves nothing running', async () => {
    stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'forkchaos-devnet-cli-'))
    const up = cli(['devnet', 'up', '--slot', '1s', '--detach'])
    expect(await up.exit).toBe(0)
    expect(up.out()).toMatch(/devnet up: 4 validators \(f = 1\), slot 1000 ms, first commit \d+ ms/)
    const state = JSON.parse(fs.readFileSync(path.join(stateDir, 'devnet.json'), 'utf8'))
    started.push(state.pid)
    const pids = [...recordedPids()]
    expect(pids.length).toBeGreaterThanOrEqual(8) // 4 nodes + 4 Anvils
    // Status until every validator has committed and sees its three peers (was a fixed 2 s wait).
    type Row = { id: number; height: number; peers: number[]; mempool: number; headHash: string }
    const status = async () => {
      const s = cli(['devnet', 'status', '--json'])
      expect(await s.exit, s.err()).toBe(0)
      return JSON.parse(s.out()) as Row[]
    }
    let rows = await status()
    const deadline = Date.now() + 30_000
    while (!(rows.length === 4 && rows.every((r) => r.height >= 1 && r.peers.length === 3)) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250))
      rows = await status()
    }
    expect(rows.map((r) => r.id)).toEqual([0, 1, 2, 3])
    for (const r of rows) {
      expect(r.height).toBeGreaterThanOrEqual(1)
      expect(r.peers.length).toBe(3)
      expect(r.headHash).toMatch(/^0x[0-9a-f]{64}$/)
    }
    const down = cli(['devnet', 'down'])
    expect(await down.exit).toBe(0)
    expect(await waitFor(() => [state.pid, ...pids].every((p) => !alive(p)), 10_000)).toBe(true)
    expect(fs.existsSync(path.join(stateDir, 'devnet.json'))).toBe(false)
  })

  it('up --validators 7: a 7-validator devnet (f = 2) commits on all seven, each block signed by ≥ 5, and down stops it', async () => {
    stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'forkchaos-devnet-cli-'))
    const up = cli(['devnet', 'up', '--validators', '7', '--slot', '1s', '--detach'])
    expect(await up.exit, up.err()).toBe(0)
    expect(up.out()).toMatch(/devnet up: 7 validators \(f = 2\), slot 1000 ms/)
    const state = JSON.parse(fs.readFileSync(path.join(stateDir, 'devnet.json'), 'utf8')) as { pid: number; nodes: { id: number; rpc: string; pid: number }[] }
    started.push(state.pid)
    expect(state.nodes.map((n) => n.id)).toEqual([0, 1, 2, 3, 4, 5, 6])
    const pids = [state.pid, ...recordedPids(), ...state.nodes.map((n) => n.pid)]
    const status = async () => {
      const s = cli(['devnet', 'status', '--json'])
      expect(await s.exit, s.err()).toBe(0)
      return JSON.parse(s.out()) as { id: number; height: number; peers: number[]; down?: boolean }[]
    }
    // Three commits on every validator, seen by each one itself (7 nodes + 7 Anvils on 2 cores: a wide margin).
    const first = await status()
    const base = Math.min(...first.map((r) => r.height ?? 0))
    let rows = first
    const deadline = Date.now() + 30_000
    while (!rows.every((r) => !r.down && r.height >= base + 3) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 1_000))
      rows = await status()
    }
    expect(rows.map((r) => r.id)).toEqual([0, 1, 2, 3, 4, 5, 6])
    for (const r of rows) {
      expect(r.down).toBeUndefined()
      expect(r.height).toBeGreaterThanOrEqual(base + 3)
      expect(r.height).toBeGreaterThanOrEqual(3)
      expect(r.peers.length).toBe(6)
    }
    // Every validator holds the same block at a committed height, certified by a quorum of 2f + 1 = 5.
    const h = Math.min(...rows.map((r) => r.height))
    const blocks = await Promise.all(
      state.nodes.map(async (n) => {
        const res = await fetch(n.rpc, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'fc_block', params: [h] }) })
        return ((await res.json()) as { result: { hash: string; certificate: { votes: { validator: number }[] } } }).result
      }),
    )
    expect(new Set(blocks.map((b) => b.hash)).size).toBe(1)
    for (const b of blocks) expect(new Set(b.certificate.votes.map((v) => v.validator)).size).toBeGreaterThanOrEqual(5)
    const down = cli(['devnet', 'down'])
    expect(await down.exit).toBe(0)
    expect(await waitFor(() => pids.every((p) => !alive(p)), 15_000)).toBe(true)
    expect(fs.existsSync(path.join(stateDir, 'devnet.json'))).toBe(false)
  })

  it('up --validators 5 (not 3f+1) is bad input: exit 2 naming the flag and the sizes that run, before anything starts', async () => {
    stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'forkchaos-devnet-cli-'))
    // The three refusals at once (independent CLI runs); nothing may have started after any of them.
    const ups = [['5', '5'], ['13', '13'], ['seven', 'seven']].map(([value, shown]) => ({ shown, up: cli(['devnet', 'up', '--validators', value as string, '--detach']) }))
    for (const { shown, up } of ups) {
      expect(await up.exit).toBe(2)
      expect(up.err()).toBe(`forkchaos: \`--validators\` must be 3f+1 validators for f = 1–3: 4, 7, 10. Got \`${shown}\`.\n\nHint: 4 tolerates f = 1 faulty validator, 7 tolerates 2, 10 tolerates 3.\n`)
    }
    expect(recordedPids()).toEqual([])
  })

  it('Ctrl-C in the middle of a devnet scenario stops every validator and exits 130', async () => {
    stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'forkchaos-devnet-cli-'))
    const run = cli(['run', 'scenarios/devnet/kill-restart.yaml', '--report-dir', path.join(stateDir, 'r')])
    started.push(run.child.pid as number)
    const seen = new Set<number>()
    expect(await waitFor(() => {
      for (const p of recordedPids()) seen.add(p)
      return seen.size >= 8
    }, 20_000)).toBe(true)
    await new Promise((r) => setTimeout(r, 1_500))
    for (const p of recordedPids()) seen.add(p)
    run.child.kill('SIGINT')
    expect(await run.exit).toBe(130)
    expect(await waitFor(() => [...seen].every((p) => !alive(p)), 10_000)).toBe(true)
    expect(recordedPids()).toEqual([])
  })

  it('a state folder that does not exist yet is created; one that cannot be is bad input naming the variable', async () => {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'forkchaos-devnet-cli-'))
    stateDir = path.join(base, 'not', 'yet')
    const cleanup = cli(['cleanup'])
    expect(await cleanup.exit, cleanup.err()).toBe(0)
    expect(fs.statSync(stateDir).isDirectory()).toBe(true)

    fs.writeFileSync(path.join(base, 'a-file'), '')
    stateDir = path.join(base, 'a-file', 'sub')
    const up = cli(['devnet', 'up', '--slot', '1s'])
    expect(await up.exit).toBe(2)
    expect(up.err()).toMatch(/FORKCHAOS_STATE_DIR names a folder that cannot be created\.[\s\S]*FORKCHAOS_STATE_DIR: .*a-file\/sub[\s\S]*Reason: ENOTDIR/)
    expect(up.err()).not.toMatch(/\n\s+at /)
    stateDir = base
  })

  it('devnet status without a devnet is bad input (exit 2) with a hint', async () => {
    stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'forkchaos-devnet-cli-'))
    const status = cli(['devnet', 'status'])
    expect(await status.exit).toBe(2)
    expect(status.err()).toMatch(/No devnet is up/)
  })
})
