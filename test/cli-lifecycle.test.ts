// Process lifecycle of the real CLI (`node bin/forkchaos.js`, built into dist/): every Anvil it
// starts is gone when it exits — after a held run, a failed run, SIGINT and SIGTERM — and what a
// SIGKILL leaves behind is found again by `forkchaos cleanup` through the pid files. Bad input
// exits 2 with a message that names the culprit.
//
// Each test gets its own FORKCHAOS_STATE_DIR (fs.mkdtempSync), so it only ever sees (and, in the
// safety net, only ever kills) the processes its own CLI recorded there. Nothing is killed by name.
import { type ChildProcess, spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('..', import.meta.url))
const bin = path.join(root, 'bin', 'forkchaos.js')
const TEST_MS = 60_000

// ---- helpers -------------------------------------------------------------------------------------

type PidEntry = { pid: number; binary?: string; label?: string; owner?: number }

/** One test's world: a fresh state dir whose pid files are watched (fs.watch + a 50 ms poll). */
type Sandbox = {
  dir: string
  pidDir: string
  reportDir: string
  /** Every pid seen as a pid file in this sandbox, with the file's content when it could be read. */
  recorded: Map<number, PidEntry>
  children: Set<ChildProcess>
  stopWatching(): void
}

const sandboxes: Sandbox[] = []

function sandbox(): Sandbox {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forkchaos-cli-test-'))
  const pidDir = path.join(dir, 'pids')
  // Created up front so that the watcher sees even the shortest-lived pid file (track() uses
  // mkdir -p, so this changes nothing for the CLI).
  fs.mkdirSync(pidDir, { recursive: true })
  const recorded = new Map<number, PidEntry>()
  const note = (name: string | null) => {
    const m = name ? /^(\d+)\.json$/.exec(name) : null
    if (!m) return
    const pid = Number(m[1])
    const known = recorded.get(pid)
    if (known?.binary) return
    let entry: PidEntry = { pid }
    try {
      entry = { ...entry, ...(JSON.parse(fs.readFileSync(path.join(pidDir, name as string), 'utf8')) as PidEntry) }
    } catch {
      // Gone already, or half-written: the name is enough to know the pid.
    }
    recorded.set(pid, entry)
  }
  const scan = () => {
    try {
      for (const name of fs.readdirSync(pidDir)) note(name)
    } catch {}
  }
  const watcher = fs.watch(pidDir, (_event, name) => note(name ? String(name) : null))
  watcher.on('error', () => {})
  const timer = setInterval(scan, 50)
  const box: Sandbox = {
    dir,
    pidDir,
    reportDir: path.join(dir, 'reports'),
    recorded,
    children: new Set(),
    stopWatching() {
      scan()
      clearInterval(timer)
      watcher.close()
    },
  }
  sandboxes.push(box)
  return box
}

type Exit = { code: number | null; signal: NodeJS.Signals | null }

type Cli = {
  child: ChildProcess
  readonly stdout: string
  readonly stderr: string
  exited: Promise<Exit>
  /** Resolves with stdout once it matches `pattern`; rejects if the CLI exits first or on timeout. */
  waitForStdout(pattern: RegExp, timeoutMs?: number): Promise<string>
}

function startCli(box: Sandbox, args: string[]): Cli {
  const child = spawn(process.execPath, [bin, ...args], {
    cwd: root,
    env: { ...process.env, FORKCHAOS_STATE_DIR: box.dir, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  box.children.add(child)
  let stdout = ''
  let stderr = ''
  const listeners = new Set<() => void>()
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8')
    for (const l of listeners) l()
  })
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8')
  })
  const exited = new Promise<Exit>((resolve) =>
    child.once('close', (code, signal) => {
      box.children.delete(child)
      resolve({ code, signal })
    }),
  )
  return {
    child,
    get stdout() {
      return stdout
    },
    get stderr() {
      return stderr
    },
    exited,
    waitForStdout(pattern, timeoutMs = 45_000) {
      return new Promise<string>((resolve, reject) => {
        const check = () => {
          if (pattern.test(stdout)) {
            finish()
            resolve(stdout)
          }
        }
        const timer = setTimeout(() => {
          finish()
          reject(new Error(`timed out waiting for ${pattern} on stdout.\nstdout: ${stdout}\nstderr: ${stderr}`))
        }, timeoutMs)
        const finish = () => {
          clearTimeout(timer)
          listeners.delete(check)
        }
        listeners.add(check)
        void exited.then((e) => {
          if (!listeners.has(check)) return
          finish()
          reject(new Error(`the CLI exited (${JSON.stringify(e)}) before ${pattern} appeared.\nstdout: ${stdout}\nstderr: ${stderr}`))
        })
        check()
      })
    },
  }
}

async function runCli(box: Sandbox, args: string[]): Promise<Exit & { stdout: string; stderr: string }> {
  const cli = startCli(box, args)
  const exit = await cli.exited
  return { ...exit, stdout: cli.stdout, stderr: cli.stderr }
}

/** True when no process has this pid (kill 0 → ESRCH). EPERM would mean alive. */
function isDead(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return false
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH'
  }
}

async function waitUntilDead(pids: number[], timeoutMs = 5_000): Promise<number[]> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const alive = pids.filter((p) => !isDead(p))
    if (alive.length === 0 || Date.now() > deadline) return alive
    await sleep(50)
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const pidFiles = (box: Sandbox) => fs.readdirSync(box.pidDir).filter((f) => f.endsWith('.json'))

function readPidEntries(box: Sandbox): PidEntry[] {
  return pidFiles(box).map((f) => JSON.parse(fs.readFileSync(path.join(box.pidDir, f), 'utf8')) as PidEntry)
}

function cmdline(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ')
  } catch {
    return ''
  }
}

afterEach(async () => {
  for (const box of sandboxes.splice(0)) {
    // 1. Any CLI of ours still running: SIGKILL by pid (its own exit hook cannot run then, so the
    //    Anvil groups it recorded are handled in step 2).
    for (const child of box.children) {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
        try {
          process.kill(child.pid, 'SIGKILL')
        } catch {}
      }
    }
    box.stopWatching()
    // 2. Safety net: every Anvil recorded in THIS test's pid dir that is still alive loses its
    //    process group. The cmdline check keeps a recycled pid from being hit.
    for (const f of fs.existsSync(box.pidDir) ? pidFiles(box) : []) {
      const pid = Number(f.replace(/\.json$/, ''))
      if (!box.recorded.has(pid)) box.recorded.set(pid, { pid })
    }
    for (const { pid, binary } of box.recorded.values()) {
      if (isDead(pid)) continue
      const cmd = cmdline(pid)
      if (!cmd.includes(binary ?? 'anvil')) continue
      try {
        process.kill(-pid, 'SIGKILL')
      } catch {}
    }
    await waitUntilDead([...box.recorded.keys()], 5_000)
    fs.rmSync(box.dir, { recursive: true, force: true })
  }
})

// ---- tests ---------------------------------------------------------------------------------------

describe('forkchaos run: no process outlives the CLI', () => {
  it(
    'a held run exits 0, writes report.json/junit.xml/summary.md with seed and replay, and leaves no process',
    async () => {
      const box = sandbox()
      const r = await runCli(box, ['run', 'scenarios/defi/oracle-divergence.yaml', '--cell', 'bps=300,direction=down', '--seed', '4242', '--report-dir', box.reportDir])
      box.stopWatching()
      expect(r.code, r.stdout).toBe(0)
      expect(r.stdout).toMatch(/fork ready at http:\/\/127\.0\.0\.1:\d+ in \d+ ms/)
      expect(r.stdout).toMatch(/held\s+oracle-divergence-only-unwind/)

      for (const name of ['report.json', 'junit.xml', 'summary.md']) expect(fs.existsSync(path.join(box.reportDir, name)), name).toBe(true)
      const report = JSON.parse(fs.readFileSync(path.join(box.reportDir, 'report.json'), 'utf8'))
      expect(report.seed).toBe(4242)
      expect(report.replay).toContain('--seed')
      expect(report.replay).toContain('--seed 4242')
      // One sweep cell, selected by --cell, replayed alone by its own command.
      expect(report.scenarios.map((s: { name: string }) => s.name)).toEqual(['oracle-divergence-only-unwind[bps=300,direction=down]'])
      expect(report.scenarios[0].replay).toBe('npx forkchaos run scenarios/defi/oracle-divergence.yaml --cell bps=300,direction=down --seed 4242')
      expect(report.scenarios.map((s: { verdict: string }) => s.verdict)).toEqual(['held'])
      expect(fs.readFileSync(path.join(box.reportDir, 'junit.xml'), 'utf8')).toContain('<testsuites')
      expect(fs.readFileSync(path.join(box.reportDir, 'summary.md'), 'utf8')).toContain('oracle-divergence-only-unwind')

      // The upstream chain and the fork were both recorded, and both are gone now.
      const pids = [...box.recorded.keys()]
      expect(pids.length).toBeGreaterThanOrEqual(2)
      expect(new Set([...box.recorded.values()].map((e) => e.label))).toEqual(new Set(['upstream', 'fork']))
      expect(pidFiles(box)).toEqual([])
      // stop() awaits each Anvil's exit (reaped by the CLI) before the CLI exits: dead at once.
      expect(pids.filter((p) => !isDead(p))).toEqual([])
    },
    TEST_MS,
  )

  it(
    'a failing run (no-bounty-guard build) exits 1 and leaves no process',
    async () => {
      const box = sandbox()
      const r = await runCli(box, [
        'run',
        'scenarios/defi/gas-spike-bounty.yaml',
        '--cell',
        'baseFeeGwei=2000',
        '--vault-build',
        'ReferenceVault.no-bounty-guard',
        '--seed',
        '7',
        '--report-dir',
        box.reportDir,
      ])
      box.stopWatching()
      expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(1)
      expect(r.stdout).toMatch(/failed\s+gas-spike-bounty-capped/)
      expect(r.stdout).toContain('bounty-capped')
      const report = JSON.parse(fs.readFileSync(path.join(box.reportDir, 'report.json'), 'utf8'))
      expect(report.scenarios[0].verdict).toBe('failed')

      const pids = [...box.recorded.keys()]
      expect(pids.length).toBeGreaterThanOrEqual(2)
      expect(pidFiles(box)).toEqual([])
      expect(pids.filter((p) => !isDead(p))).toEqual([])
    },
    TEST_MS,
  )

  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    it(
      `${signal} mid-run exits ${code}, stops every Anvil within 5 s and removes every pid file`,
      async () => {
        const box = sandbox()
        const cli = startCli(box, ['run', 'scenarios/defi/stress.yaml', '--seed', '7', '--report-dir', box.reportDir])
        await cli.waitForStdout(/fork ready at http:\/\/127\.0\.0\.1:\d+/)
        await sleep(300)
        // Still mid-run: the stress scenario (~250 cycles) has not reported yet.
        expect(cli.child.exitCode).toBeNull()
        expect(cli.stdout).not.toMatch(/repeated-cycle-stress \(/)
        const before = [...box.recorded.keys()]
        expect(before.length).toBeGreaterThanOrEqual(2)
        expect(before.filter((p) => isDead(p))).toEqual([])

        cli.child.kill(signal)
        const exit = await cli.exited
        box.stopWatching()
        expect(exit, `stdout: ${cli.stdout}\nstderr: ${cli.stderr}`).toEqual({ code, signal: null })
        expect(cli.stderr).toContain(`${signal}: reverting faults and stopping processes`)

        const pids = [...box.recorded.keys()]
        expect(await waitUntilDead(pids, 5_000)).toEqual([])
        expect(pidFiles(box)).toEqual([])
      },
      TEST_MS,
    )
  }
})

describe('forkchaos cleanup', () => {
  it(
    'after SIGKILL of `forkchaos fork` the Anvils survive as orphans; cleanup stops both ("2 stopped")',
    async () => {
      const box = sandbox()
      const cli = startCli(box, ['fork'])
      await cli.waitForStdout(/fork ready/)
      const entries = readPidEntries(box)
      expect(entries.map((e) => e.label).sort()).toEqual(['fork', 'upstream'])
      for (const e of entries) {
        expect(e.owner).toBe(cli.child.pid)
        expect(e.binary).toMatch(/anvil/)
        expect(cmdline(e.pid)).toContain(e.binary)
      }
      const pids = entries.map((e) => e.pid)

      cli.child.kill('SIGKILL')
      const exit = await cli.exited
      expect(exit.signal).toBe('SIGKILL')
      // No exit hook ran: the Anvils (own process groups) are orphans now, still alive, still on file.
      await sleep(500)
      expect(pids.filter((p) => isDead(p))).toEqual([])
      expect(pidFiles(box).sort()).toEqual(pids.map((p) => `${p}.json`).sort())

      const r = await runCli(box, ['cleanup'])
      expect(r.code, r.stderr).toBe(0)
      expect(r.stdout).toMatch(/\b2 stopped\b/)
      for (const p of pids) expect(r.stdout).toContain(`pid ${p}`)
      expect(r.stdout).toContain(box.dir)

      expect(await waitUntilDead(pids, 5_000)).toEqual([])
      expect(pidFiles(box)).toEqual([])
    },
    TEST_MS,
  )
})

describe('bad input exits 2 and names the culprit', () => {
  it(
    'run of a missing file names the path',
    async () => {
      const box = sandbox()
      const r = await runCli(box, ['run', 'does-not-exist.yaml', '--report-dir', box.reportDir])
      expect(r.code).toBe(2)
      expect(r.stderr).toContain('does-not-exist.yaml')
      expect(fs.existsSync(box.reportDir)).toBe(false)
      expect(pidFiles(box)).toEqual([])
    },
    TEST_MS,
  )

  it(
    'run --seed abc names --seed',
    async () => {
      const box = sandbox()
      const r = await runCli(box, ['run', '--seed', 'abc', 'scenarios/defi', '--report-dir', box.reportDir])
      expect(r.code).toBe(2)
      expect(r.stderr).toContain('--seed')
      expect(r.stderr).toContain('abc')
      expect(pidFiles(box)).toEqual([])
    },
    TEST_MS,
  )

  it(
    'run --fail-on sometimes exits 2',
    async () => {
      const box = sandbox()
      const r = await runCli(box, ['run', '--fail-on', 'sometimes', '--report-dir', box.reportDir])
      expect(r.code).toBe(2)
      expect(r.stderr).toContain('--fail-on')
      expect(pidFiles(box)).toEqual([])
    },
    TEST_MS,
  )

  it(
    'validate names the file and the field of a fault param with the wrong type',
    async () => {
      const box = sandbox()
      const file = path.join(box.dir, 'bad-bps.yaml')
      fs.writeFileSync(
        file,
        [
          'name: bad-bps',
          'hypothesis: a percentage string is not a number of basis points',
          'inject: { faults: [{ type: oracle.divergence, target: feed, params: { bps: "5%" } }] }',
          '',
        ].join('\n'),
      )
      const r = await runCli(box, ['validate', file])
      expect(r.code).toBe(2)
      expect(r.stdout).toBe('')
      expect(r.stderr).toContain(file)
      expect(r.stderr).toContain('inject.faults[0].params.bps')
      expect(r.stderr.replaceAll(file, '<FILE>')).toMatchInlineSnapshot(`
        "forkchaos: <FILE>:3: \`inject.faults[0].params.bps\` must be number. Got \`"5%"\`.

        File: <FILE>
        Field: inject.faults[0].params.bps
        "
      `)
    },
    TEST_MS,
  )
})
