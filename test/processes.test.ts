// The process owner (src/process/Instance.ts) on real processes and real signals: its status
// union and guarded transitions, the start timeout (which leaves nothing behind, grandchildren
// included), the stop sequence (SIGTERM, SIGKILL after the grace), the bounded output ring, the
// pid file `forkchaos cleanup` reads, and the parent watch of children that must die with us.
// Processes are checked by pid (process.kill(pid, 0)), never by name. Every test gets its own
// FORKCHAOS_STATE_DIR; afterEach kills, by group, whatever a failed test left.
import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { isAlive } from '../src/process/registry.js'
import { create, type Instance, ProcessStateError, type Status } from '../src/process/Instance.js'
import { createOutputRing } from '../src/process/output.js'
import { cleanupStale, pidDir } from '../src/process/registry.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const node = process.execPath

let dir: string
const started: Instance<unknown>[] = []
const extraPids: number[] = []

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forkchaos-process-test-'))
  process.env.FORKCHAOS_STATE_DIR = dir
})

afterEach(async () => {
  for (const p of started.splice(0)) await p.stop({ graceMs: 0 }).catch(() => {})
  for (const pid of extraPids.splice(0)) {
    try {
      process.kill(-pid, 'SIGKILL')
    } catch {}
  }
  delete process.env.FORKCHAOS_STATE_DIR
  fs.rmSync(dir, { recursive: true, force: true })
})

/** True when no process has this pid (kill 0 → ESRCH; EPERM would mean alive). */
const isDead = (pid: number) => !isAlive(pid)

async function waitUntilDead(pids: number[], timeoutMs: number): Promise<number[]> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const alive = pids.filter((p) => !isDead(p))
    if (alive.length === 0 || Date.now() > deadline) return alive
    await new Promise((r) => setTimeout(r, 25))
  }
}

const pidFiles = () => (fs.existsSync(pidDir()) ? fs.readdirSync(pidDir()).filter((f) => f.endsWith('.json')) : [])

/** A Node child that prints `READY <n>` after `delayMs` and then idles; ignores SIGTERM when asked. */
function readyScript(opts: { delayMs?: number; ignoreTerm?: boolean } = {}) {
  return [
    opts.ignoreTerm ? "process.on('SIGTERM', () => console.log('TERM ignored'));" : '',
    `setTimeout(() => console.log('READY 42'), ${opts.delayMs ?? 0});`,
    'setInterval(() => {}, 1000);',
  ].join('\n')
}

function track<R>(p: Instance<R>): Instance<R> {
  started.push(p as Instance<unknown>)
  return p
}

describe('process owner: statuses and guarded transitions', () => {
  it('idle → starting → running → stopping → stopped; start resolves with what ready read; the pid file comes and goes', async () => {
    const p = track(
      create({
        kind: 'keeper',
        label: 'ready-42',
        command: node,
        args: ['-e', readyScript({ delayMs: 100 })],
        ready: (out) => {
          const m = /READY (\d+)/.exec(out)
          return m ? Number(m[1]) : undefined
        },
      }),
    )
    const seen: Status[] = []
    p.onStatus((s) => seen.push(s))
    expect(p.status).toBe('idle')
    expect(() => p.pid).toThrow(/Process `ready-42` is `idle`: it cannot have a pid before `start`\./)

    expect(await p.start()).toBe(42)
    expect(p.status).toBe('running')
    expect(seen).toEqual(['starting', 'running'])
    const pid = p.pid
    expect(isDead(pid)).toBe(false)
    const file = JSON.parse(fs.readFileSync(path.join(pidDir(), `${pid}.json`), 'utf8'))
    expect(file).toMatchObject({ pid, pgid: pid, kind: 'keeper', label: 'ready-42', binary: node, owner: process.pid })
    // Its own process group: it leads it.
    expect(fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ')[2]).toBe(String(pid))

    await p.stop()
    expect(seen).toEqual(['starting', 'running', 'stopping', 'stopped'])
    expect(p.status).toBe('stopped')
    expect(p.exit()).toEqual({ code: null, signal: 'SIGTERM' })
    expect(isDead(pid)).toBe(true)
    expect(pidFiles()).toEqual([])
    // Idempotent.
    await p.stop()
    expect(p.status).toBe('stopped')
  })

  it('illegal transitions throw a clear error naming the state found', async () => {
    const p = track(create({ kind: 'anvil', label: 'twice', command: node, args: ['-e', readyScript()], ready: (o) => (o.includes('READY') ? true : undefined) }))
    await p.start()
    const again = await p.start().catch((e: unknown) => e)
    expect(again).toBeInstanceOf(ProcessStateError)
    expect((again as Error).message).toMatchInlineSnapshot(`
      "Process \`twice\` is \`running\`: it cannot start (only an idle instance starts; make a new one).

      Allowed from \`running\`: stopping, stopped, failed"
    `)
    await p.stop()
    const afterStop = await p.start().catch((e: unknown) => e)
    expect((afterStop as Error).message).toMatchInlineSnapshot(`
      "Process \`twice\` is \`stopped\`: it cannot start (only an idle instance starts; make a new one).

      Allowed from \`stopped\`: nothing (final)"
    `)
    const idle = create({ kind: 'devnet', label: 'idle-one', command: node, args: ['-e', ''] })
    expect(() => idle.release()).toThrowErrorMatchingInlineSnapshot(`
      [ProcessStateError: Process \`idle-one\` is \`idle\`: it cannot be released (only a running process is).

      Allowed from \`idle\`: starting, stopped]
    `)
    expect(() => idle.send('go')).toThrow(/it cannot send without an IPC channel/)
  })

  it('a process that exits by itself: code 0 → stopped, any other → failed, and its pid file is gone', async () => {
    const ok = track(create({ kind: 'keeper', label: 'exit-0', command: node, args: ['-e', 'setTimeout(() => {}, 200)'] }))
    await ok.start()
    expect(ok.status).toBe('running')
    expect(await ok.exited).toEqual({ code: 0, signal: null })
    expect(ok.status).toBe('stopped')

    const bad = track(create({ kind: 'keeper', label: 'exit-5', command: node, args: ['-e', 'setTimeout(() => process.exit(5), 200)'] }))
    await bad.start()
    expect(await bad.exited).toEqual({ code: 5, signal: null })
    expect(bad.status).toBe('failed')
    expect(pidFiles()).toEqual([])
  })
})

describe('process owner: start timeout', () => {
  it('a process that never becomes ready fails after startTimeoutMs; its whole group (a grandchild too) is dead', async () => {
    const script = "const c = require('child_process').spawn('sleep', ['60'], { stdio: 'ignore' }); console.log('grandchild ' + c.pid); setInterval(() => {}, 1000)"
    const p = track(create({ kind: 'validator', label: 'never-ready', command: node, args: ['-e', script], startTimeoutMs: 1_500, ready: (o) => (o.includes('READY') ? true : undefined) }))
    const t0 = Date.now()
    const error = (await p.start().catch((e: unknown) => e)) as Error
    const tookMs = Date.now() - t0
    expect(error.message.split('\n')[0]).toBe('`never-ready` was not ready within 1500 ms (`startTimeoutMs`).')
    expect(error.message).toMatch(/Timeout \(ms\): 1500/)
    expect(error.message).toMatch(/Last output: grandchild \d+/)
    expect(tookMs).toBeGreaterThanOrEqual(1_400)
    expect(tookMs).toBeLessThan(10_000)
    expect(p.status).toBe('failed')
    const grandchild = Number(/grandchild (\d+)/.exec(p.output())?.[1])
    expect(grandchild).toBeGreaterThan(1)
    expect(await waitUntilDead([p.pid, grandchild], 3_000)).toEqual([])
    expect(pidFiles()).toEqual([])
  })

  it('a process that exits before it is ready fails at once with its exit code and last output', async () => {
    const p = track(create({ kind: 'anvil', label: 'crasher', command: node, args: ['-e', "console.error('boom: no such flag'); process.exit(3)"], ready: () => undefined }))
    const error = (await p.start().catch((e: unknown) => e)) as Error
    expect(error.message.split('\n')[0]).toBe('`crasher` exited before it was ready.')
    expect(error.message).toMatch(/Exit code: 3/)
    expect(error.message).toMatch(/Last output: boom: no such flag/)
    expect(p.status).toBe('failed')
  })

  it('a command that cannot be spawned fails with the reason', async () => {
    const p = create({ kind: 'anvil', label: 'missing', command: path.join(dir, 'no-such-binary'), args: [] })
    const error = (await p.start().catch((e: unknown) => e)) as Error
    expect(error.message.split('\n')[0]).toBe('`missing` failed to start.')
    expect(error.message).toMatch(/Reason: .*ENOENT/)
    expect(p.status).toBe('failed')
    expect(pidFiles()).toEqual([])
  })

  it('limits are checked at construction, with the value given', () => {
    expect(() => create({ kind: 'anvil', label: 'x', command: node, args: [], startTimeoutMs: 0 })).toThrowErrorMatchingInlineSnapshot(
      `[InputError: \`startTimeoutMs\` of process \`x\` must be between 1 and 600000. Got \`0\`.]`,
    )
    expect(() => create({ kind: 'anvil', label: 'x', command: node, args: [], graceMs: 61_000 })).toThrow('`graceMs` of process `x` must be between 0 and 60000. Got `61000`.')
    expect(() => create({ kind: 'anvil', label: 'x', command: node, args: [], outputBytes: 10 })).toThrow('`outputBytes` of process `x` must be between 1024 and 16777216. Got `10`.')
  })
})

describe('process owner: stop and output', () => {
  it('stop signals the group: SIGTERM, then SIGKILL after graceMs when SIGTERM is ignored', async () => {
    const p = track(create({ kind: 'validator', label: 'stubborn', command: node, args: ['-e', readyScript({ ignoreTerm: true })], graceMs: 800, ready: (o) => (o.includes('READY') ? true : undefined) }))
    await p.start()
    const t0 = Date.now()
    await p.stop()
    const tookMs = Date.now() - t0
    expect(p.exit()).toEqual({ code: null, signal: 'SIGKILL' })
    expect(p.output()).toContain('TERM ignored')
    expect(tookMs).toBeGreaterThanOrEqual(700)
    expect(tookMs).toBeLessThan(8_000)
    expect(p.status).toBe('stopped')
  }, 15_000)

  it('stop reaches a SIGSTOPped (wedged) process: SIGCONT goes first', async () => {
    const p = track(create({ kind: 'validator', label: 'wedged', command: node, args: ['-e', readyScript()], graceMs: 5_000, ready: (o) => (o.includes('READY') ? true : undefined) }))
    await p.start()
    expect(p.signal('SIGSTOP')).toBe(true)
    const t0 = Date.now()
    await p.stop({ signal: 'SIGTERM' })
    expect(p.exit()).toEqual({ code: null, signal: 'SIGTERM' })
    // SIGTERM worked, well before the 5 s grace.
    expect(Date.now() - t0).toBeLessThan(4_000)
  })

  it('the output ring keeps at most outputBytes (plus the newest chunk) of 1 MiB printed', async () => {
    const script = "for (let i = 0; i < 16384; i++) process.stdout.write(String(i).padStart(63, '.') + '\\n')"
    const p = track(create({ kind: 'keeper', label: 'chatty', command: node, args: ['-e', script], outputBytes: 8_192 }))
    await p.start()
    await p.exited
    const out = p.output()
    expect(out.endsWith(`${'16383'.padStart(63, '.')}\n`)).toBe(true)
    // Bounded: a chunk of a pipe is at most 64 KiB.
    expect(out.length).toBeLessThanOrEqual(8_192 + 65_536)
    expect(out.length).toBeLessThan(1_048_576)
    // Trimmed at a line start: the first kept line is whole.
    expect(out.split('\n')[0]).toMatch(/^\.+\d+$/)
    expect(out.split('\n')[0]).toHaveLength(63)
  })

  it('the ring drops the oldest chunks past its cap and its first partial line', () => {
    const ring = createOutputRing(1_024)
    for (let i = 0; i < 100; i++) ring.push(Buffer.from(`line ${i} ${'x'.repeat(90)}\n`))
    expect(ring.bytes).toBeLessThanOrEqual(1_024 + 100)
    expect(ring.trimmed).toBe(true)
    expect(ring.text().split('\n')[0]).toMatch(/^line \d+ x+$/)
    expect(ring.text()).toContain('line 99 ')
    expect(ring.text()).not.toContain('line 0 ')
  })
})

describe('forkchaos cleanup (cleanupStale) and the parent watch', () => {
  /** A detached `sleep` (its own group) with a pid file as a dead forkchaos would have left it. */
  function orphan(kind: 'keeper' | 'flooder', ownerPid: number, match = 'sleep 61') {
    const child = spawn('sleep', ['61'], { detached: true, stdio: 'ignore' })
    child.unref()
    const pid = child.pid as number
    extraPids.push(pid)
    fs.mkdirSync(pidDir(), { recursive: true })
    fs.writeFileSync(path.join(pidDir(), `${pid}.json`), JSON.stringify({ pid, pgid: pid, kind, binary: 'sleep', match, label: kind, startedAt: new Date().toISOString(), owner: ownerPid }))
    return pid
  }

  /** The pid of a process that has exited. */
  async function deadPid(): Promise<number> {
    const c = spawn(node, ['-e', ''], { stdio: 'ignore' })
    await new Promise((r) => c.once('exit', r))
    return c.pid as number
  }

  it('kills by group what a dead owner left (every kind), leaves a live owner\'s, and never a pid whose command line is not ours', async () => {
    const gone = await deadPid()
    const keeper = orphan('keeper', gone)
    const flooder = orphan('flooder', gone)
    const running = orphan('keeper', process.ppid) // its owner (the test runner's parent) is alive
    const recycled = orphan('flooder', gone, 'dist/src/faults/mempool/flooder.js') // cmdline says `sleep 61`: not ours
    const r = await cleanupStale()
    expect(r.stopped.map((e) => e.pid).sort()).toEqual([keeper, flooder].sort())
    expect(r.stopped.map((e) => e.kind).sort()).toEqual(['flooder', 'keeper'])
    expect(r.skipped.map((e) => e.pid)).toEqual([running])
    expect(r.lingering).toEqual([])
    // cleanup returns once they have exited; reaping the zombies is their parent's (here: this test).
    expect(await waitUntilDead([keeper, flooder], 5_000)).toEqual([])
    expect(isDead(running)).toBe(false)
    expect(isDead(recycled)).toBe(false)
    expect(pidFiles()).toEqual([`${running}.json`])
  })

  it('a child that calls watchParent exits by itself once the forkchaos that started it is SIGKILLed', async () => {
    const parent = path.join(root, 'dist', 'src', 'process', 'parent.js')
    expect(fs.existsSync(parent), 'run `npx tsc -p tsconfig.json` first').toBe(true)
    // The middle process stands in for forkchaos: it starts the watcher through the owner's env.
    const watcher = `import(${JSON.stringify(parent)}).then((m) => { m.watchParent({ intervalMs: 100 }); console.log('watching'); setInterval(() => {}, 1000) })`
    const middle = `const c = require('child_process').spawn(process.execPath, ['-e', ${JSON.stringify(watcher)}], { detached: true, stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, FORKCHAOS_OWNER_PID: String(process.pid) } }); c.stdout.on('data', (d) => { if (String(d).includes('watching')) console.log('child ' + c.pid) }); setInterval(() => {}, 1000)`
    const m = spawn(node, ['-e', middle], { detached: true, stdio: ['ignore', 'pipe', 'ignore'] })
    extraPids.push(m.pid as number)
    const childPid = await new Promise<number>((resolve, reject) => {
      let out = ''
      const timer = setTimeout(() => reject(new Error(`no child line: ${out}`)), 15_000)
      m.stdout?.on('data', (d: Buffer) => {
        out += d.toString()
        const match = /child (\d+)/.exec(out)
        if (match) {
          clearTimeout(timer)
          resolve(Number(match[1]))
        }
      })
    })
    extraPids.push(childPid)
    await new Promise((r) => setTimeout(r, 300))
    expect(isDead(childPid)).toBe(false)
    process.kill(m.pid as number, 'SIGKILL')
    expect(await waitUntilDead([childPid], 3_000)).toEqual([])
  })
})
