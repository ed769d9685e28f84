// SIGKILL of forkchaos in the middle of a keeper drill and of a flood drill leaves no process
// behind, by design: the keeper and the flooder are the process owner's (own group, pid file),
// so (1) `forkchaos cleanup` kills them by recorded pid and group, even when they cannot run a
// line of their own (SIGSTOPped first), and (2) they watch forkchaos and exit by themselves
// when it is gone. Everything else the run started (Anvils, validators) is stopped by cleanup.
//
// The drills are the shipped ones (scenarios/rpc/keeper-errors.yaml, scenarios/devnet/
// mempool-flood.yaml) with the keeper's / flooder's work lengthened to a minute, so nothing ends
// by itself during the test: only the kill, the watch or cleanup can. Every test has its own
// FORKCHAOS_STATE_DIR; processes are checked by pid (process.kill(pid, 0)), never by name, and
// afterEach kills by group whatever a failing test left in its own pid folder.
import { type ChildProcess, spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { isAlive } from '../src/process/registry.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const bin = path.join(root, 'bin', 'forkchaos.js')
const TEST_MS = 180_000

type PidEntry = { pid: number; pgid?: number; kind?: string; label?: string; binary?: string; match?: string; owner?: number }

type Box = { dir: string; pidDir: string; recorded: Map<number, PidEntry>; children: Set<ChildProcess>; stop(): void }
const boxes: Box[] = []

/** A fresh state dir whose pid files are all noted (a 25 ms poll), with their content. */
function sandbox(): Box {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forkchaos-sigkill-test-'))
  const pidDir = path.join(dir, 'pids')
  fs.mkdirSync(pidDir, { recursive: true })
  const recorded = new Map<number, PidEntry>()
  const scan = () => {
    for (const name of fs.readdirSync(pidDir)) {
      const m = /^(\d+)\.json$/.exec(name)
      if (!m || recorded.get(Number(m[1]))?.kind) continue
      try {
        recorded.set(Number(m[1]), JSON.parse(fs.readFileSync(path.join(pidDir, name), 'utf8')) as PidEntry)
      } catch {
        recorded.set(Number(m[1]), { pid: Number(m[1]) })
      }
    }
  }
  const timer = setInterval(scan, 25)
  const box: Box = { dir, pidDir, recorded, children: new Set(), stop: () => (scan(), clearInterval(timer)) }
  boxes.push(box)
  return box
}

/** `until: 'exit'` for a CLI whose stderr a detached child inherits (its pipe then stays open). */
function startCli(box: Box, args: string[], until: 'close' | 'exit' = 'close') {
  const child = spawn(process.execPath, [bin, ...args], { cwd: root, env: { ...process.env, FORKCHAOS_STATE_DIR: box.dir, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] })
  box.children.add(child)
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (c: Buffer) => (stdout += c.toString()))
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once(until, (code: number | null, signal: NodeJS.Signals | null) => {
      box.children.delete(child)
      resolve({ code, signal })
    }),
  )
  return { child, exited, out: () => stdout, err: () => stderr }
}

const isDead = (pid: number) => !isAlive(pid)

const groupGone = (pgid: number) => {
  try {
    process.kill(-pgid, 0)
    return false
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH'
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function waitFor<T>(what: string, probe: () => T | undefined, timeoutMs: number, detail: () => string = () => ''): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = probe()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${detail()}`)
    await sleep(50)
  }
}

/** Pids (and groups) still alive among `entries`, after waiting up to `timeoutMs`. */
async function survivors(entries: PidEntry[], timeoutMs: number): Promise<string[]> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const alive = entries.filter((e) => !isDead(e.pid) || !groupGone(e.pgid ?? e.pid)).map((e) => `${e.kind} ${e.label} pid ${e.pid}`)
    if (alive.length === 0 || Date.now() > deadline) return alive
    await sleep(50)
  }
}

const pidFiles = (box: Box) => fs.readdirSync(box.pidDir).filter((f) => f.endsWith('.json'))

function cmdline(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ')
  } catch {
    return ''
  }
}

afterEach(async () => {
  for (const box of boxes.splice(0)) {
    for (const child of box.children) if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL')
    box.stop()
    // Safety net: only groups recorded in THIS test's pid folder whose leader is still what we started.
    for (const e of box.recorded.values()) {
      if (isDead(e.pid) || !cmdline(e.pid).includes(e.match ?? e.binary ?? '\0')) continue
      try {
        process.kill(-(e.pgid ?? e.pid), 'SIGCONT')
        process.kill(-(e.pgid ?? e.pid), 'SIGKILL')
      } catch {}
    }
    await survivors([...box.recorded.values()], 5_000)
    fs.rmSync(box.dir, { recursive: true, force: true })
  }
})

/** A shipped drill, copied into the sandbox with `edit` applied; the edit must change it. */
function drill(box: Box, shipped: string, edit: (yaml: string) => string): string {
  const original = fs.readFileSync(path.join(root, shipped), 'utf8')
  const changed = edit(original)
  expect(changed, 'the edit of the shipped drill changed nothing').not.toBe(original)
  const file = path.join(box.dir, path.basename(shipped))
  fs.writeFileSync(file, changed)
  return file
}

/** keeper-errors.yaml with a one-minute baseline keeper: SIGKILL comes while it runs. */
const keeperDrill = (box: Box) =>
  drill(box, 'scenarios/rpc/keeper-errors.yaml', (y) => y.replace('- keeper: { mode: budgeted, duration: 1s, interval: 100ms }', '- keeper: { mode: budgeted, duration: 60s, interval: 100ms }'))

/**
 * mempool-flood.yaml with a gentle flood of a minute. Its baseline stays the shipped 3 s: with a
 * 1 s baseline a busy machine could miss the baseline's commits, and the run ended (aborted,
 * exit 1) before the flooder started.
 */
const floodDrill = (box: Box) =>
  drill(box, 'scenarios/devnet/mempool-flood.yaml', (y) =>
    y
      .replace('params: { ratePerS: 1000, durationMs: 8000, senders: 50 }', 'params: { ratePerS: 20, durationMs: 60000, senders: 10 }')
      .replace('  duration: 8s', '  duration: 60s'),
  )

type Kind = 'keeper' | 'flooder'

/** Runs `file` and waits until the `kind` process has a pid file (and, with `settleMs`, has run that long). */
async function runUntil(box: Box, file: string, kind: Kind) {
  const cli = startCli(box, ['run', file, '--seed', '7', '--report-dir', path.join(box.dir, 'reports')])
  const entry = await waitFor(
    `a ${kind} pid file`,
    () => {
      if (cli.child.exitCode !== null) throw new Error(`forkchaos exited (${cli.child.exitCode}) before its ${kind} started.\nstdout: ${cli.out()}\nstderr: ${cli.err()}`)
      return [...box.recorded.values()].find((e) => e.kind === kind)
    },
    120_000,
    () => `stdout: ${cli.out()}\nstderr: ${cli.err()}`,
  )
  expect(entry).toMatchObject({ kind, label: kind, pgid: entry.pid, owner: cli.child.pid })
  expect(cmdline(entry.pid)).toContain(entry.match)
  return { cli, entry }
}

async function sigkill(cli: ReturnType<typeof startCli>) {
  cli.child.kill('SIGKILL')
  expect(await cli.exited).toEqual({ code: null, signal: 'SIGKILL' })
}

async function cleanup(box: Box) {
  const r = startCli(box, ['cleanup'])
  const exit = await r.exited
  expect(exit.code, r.err()).toBe(0)
  return r.out()
}

for (const [kind, name, file, others] of [
  ['keeper', 'a keeper drill (keeper-errors)', keeperDrill, ['anvil']],
  ['flooder', 'a flood drill (mempool-flood)', floodDrill, ['anvil', 'validator']],
] as const) {
  describe(`SIGKILL of forkchaos in ${name}`, () => {
    it(
      `cleanup kills the ${kind} by its pid file and group even when it cannot act (SIGSTOPped), and every other process`,
      async () => {
        const box = sandbox()
        const { cli, entry } = await runUntil(box, file(box), kind)
        // Frozen: its own watch cannot run, so only cleanup's kill of its group can end it.
        process.kill(-entry.pid, 'SIGSTOP')
        await sigkill(cli)
        await sleep(1_000)
        box.stop()
        const recorded = [...box.recorded.values()]
        expect(new Set(recorded.map((e) => e.kind))).toEqual(new Set([kind, ...others]))
        // Left behind, as a SIGKILL leaves them: the run could not stop a thing.
        expect(isDead(entry.pid)).toBe(false)
        expect(pidFiles(box)).toContain(`${entry.pid}.json`)

        const out = await cleanup(box)
        expect(out).toContain(`stopped ${kind} ${kind} pid ${entry.pid}`)
        expect(out).toMatch(/^\d+ stopped · state dir /m)
        expect(await survivors(recorded, 5_000)).toEqual([])
        expect(pidFiles(box)).toEqual([])
      },
      TEST_MS,
    )

    it(
      `the ${kind} exits by itself once forkchaos is gone (it watches its parent); cleanup stops the rest`,
      async () => {
        const box = sandbox()
        const { cli, entry } = await runUntil(box, file(box), kind)
        await sleep(1_000)
        expect(isDead(entry.pid)).toBe(false)
        await sigkill(cli)
        // No cleanup yet: the watch (250 ms poll) alone ends it, well before its minute of work.
        // A generous margin: pid 1 here reaps an orphan's zombie 1–2 s late, and both cores are busy.
        expect(await survivors([entry], 20_000)).toEqual([])

        box.stop()
        const rest = [...box.recorded.values()].filter((e) => e.kind !== kind)
        expect(rest.length).toBeGreaterThan(0)
        const out = await cleanup(box)
        for (const e of rest) expect(out).toContain(`pid ${e.pid}`)
        expect(await survivors([...box.recorded.values()], 5_000)).toEqual([])
        expect(pidFiles(box)).toEqual([])
      },
      TEST_MS,
    )
  })
}

describe('a detached `devnet up` is the process owner\'s too', () => {
  it(
    'cleanup leaves a running detached devnet alone (its supervisor owns itself); after a SIGKILL of the supervisor, cleanup stops every validator and Anvil',
    async () => {
      const box = sandbox()
      const up = startCli(box, ['devnet', 'up', '--slot', '1s', '--detach'], 'exit')
      expect((await up.exited).code, up.err()).toBe(0)
      // 'exit' comes before the last output is read: wait for it.
      await waitFor('the ready line', () => (up.out().includes('devnet ready.') ? true : undefined), 5_000)
      expect(up.out()).toContain('devnet ready.')
      box.stop()
      const entries = [...box.recorded.values()]
      const supervisor = entries.find((e) => e.kind === 'devnet') as PidEntry
      // Owned by the `devnet up --detach` that started it until ready, then handed over to itself.
      expect(supervisor).toMatchObject({ label: 'devnet-up', owner: up.child.pid, pgid: supervisor.pid })
      expect(JSON.parse(fs.readFileSync(path.join(box.pidDir, `${supervisor.pid}.json`), 'utf8')).owner).toBe(supervisor.pid)
      const rest = entries.filter((e) => e !== supervisor)
      expect(rest.filter((e) => e.kind === 'validator')).toHaveLength(4)
      expect(rest.filter((e) => e.kind === 'anvil')).toHaveLength(4)
      for (const e of rest) expect(e.owner).toBe(supervisor.pid)

      // Running: nothing of it is stale.
      const first = await cleanup(box)
      expect(first).toContain(`left devnet devnet-up pid ${supervisor.pid}: its forkchaos run (pid ${supervisor.pid}) is still alive`)
      expect(first).toMatch(/^0 stopped · /m)
      expect(entries.filter((e) => isDead(e.pid))).toEqual([])

      process.kill(supervisor.pid, 'SIGKILL')
      expect(await survivors([supervisor], 5_000)).toEqual([])
      await sleep(500)
      expect(rest.filter((e) => isDead(e.pid))).toEqual([])
      const second = await cleanup(box)
      for (const e of rest) expect(second).toContain(`stopped ${e.kind} ${e.label} pid ${e.pid}`)
      expect(second).toMatch(/^8 stopped · /m)
      expect(await survivors(entries, 5_000)).toEqual([])
      expect(pidFiles(box)).toEqual([])
    },
    TEST_MS,
  )
})
