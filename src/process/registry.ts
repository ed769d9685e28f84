import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { InputError } from '../errors.js'

/**
 * Every process the toolkit starts is registered here (by the process owner, src/process/
 * Instance.ts): in memory, to stop it on exit, error, SIGINT and SIGTERM; and as a pid file,
 * so that `forkchaos cleanup` can stop what a SIGKILL of the toolkit left behind. Processes run
 * in their own process group (spawned `detached`), and are stopped by that group — never by name.
 */
export type ProcessKind = 'anvil' | 'hardhat' | 'execution' | 'validator' | 'keeper' | 'flooder' | 'devnet'

/** Every kind `forkchaos cleanup` knows, in the order it reports them. */
export const PROCESS_KINDS: readonly ProcessKind[] = ['anvil', 'hardhat', 'execution', 'validator', 'keeper', 'flooder', 'devnet']

export type TrackedProcess = {
  pid: number
  /** Its process group: the pid, since every process we start leads its own group. */
  pgid: number
  kind: ProcessKind
  /** The executable's path. */
  binary: string
  /**
   * What /proc/<pid>/cmdline must contain before `cleanup` signals it (default `binary`): the
   * script for a Node process, whose binary is every Node's binary.
   */
  match?: string
  label: string
  startedAt: string
  logFile?: string
}

/** A pid file's content: the entry plus the forkchaos process that owns it. */
export type PidFile = TrackedProcess & { owner: number }

const live = new Map<number, TrackedProcess>()

let ensuredStateDir: string | undefined

/**
 * Where pid files, logs and devnet folders live, created on first use (a fresh machine, or a
 * tmp cleaner, may have removed it). `FORKCHAOS_STATE_DIR` overrides (tests use their own); a
 * folder that cannot be created there is bad input, named with the variable.
 */
export function stateDir(): string {
  const fromEnv = process.env.FORKCHAOS_STATE_DIR
  const dir = fromEnv ?? path.join(os.tmpdir(), `forkchaos-${process.getuid?.() ?? 'user'}`)
  if (ensuredStateDir === dir && fs.existsSync(dir)) return dir
  try {
    fs.mkdirSync(dir, { recursive: true })
  } catch (cause) {
    const reason = (cause as NodeJS.ErrnoException).code ?? String(cause)
    if (fromEnv !== undefined)
      throw new InputError('FORKCHAOS_STATE_DIR names a folder that cannot be created.', { context: { FORKCHAOS_STATE_DIR: fromEnv, Reason: reason }, hint: 'Point FORKCHAOS_STATE_DIR at a writable folder, or unset it to use the temp folder.' })
    throw cause
  }
  ensuredStateDir = dir
  return dir
}

/** The folder of pid files, `<state dir>/pids`. */
export function pidDir() {
  return path.join(stateDir(), 'pids')
}

const pidFileOf = (pid: number) => path.join(pidDir(), `${pid}.json`)

function writePidFile(entry: PidFile) {
  fs.mkdirSync(pidDir(), { recursive: true })
  // Written whole beside the folder and renamed into it, so `cleanup` (and anyone listing the
  // folder) never sees half a file.
  const tmp = path.join(stateDir(), `.pid-${entry.pid}-${process.pid}.tmp`)
  fs.writeFileSync(tmp, JSON.stringify(entry))
  fs.renameSync(tmp, pidFileOf(entry.pid))
}

/** Registers a process this forkchaos started: in memory (the exit hook) and as a pid file. */
export function track(pid: number, info: Omit<TrackedProcess, 'pid' | 'pgid' | 'startedAt'>): TrackedProcess {
  const entry: TrackedProcess = { pid, pgid: pid, startedAt: new Date().toISOString(), ...info }
  live.set(pid, entry)
  writePidFile({ ...entry, owner: process.pid })
  installExitHook()
  return entry
}

/** Forgets a process: it has exited, or it was stopped. */
export function untrack(pid: number) {
  live.delete(pid)
  fs.rmSync(pidFileOf(pid), { force: true })
}

/**
 * Lets a process outlive this forkchaos (a detached `devnet up`): out of the exit hook, and its
 * pid file names the process itself as owner, so `cleanup` leaves it while it runs and only
 * clears its file once it is gone.
 */
export function handOver(pid: number) {
  const entry = live.get(pid)
  if (!entry) return
  live.delete(pid)
  writePidFile({ ...entry, owner: pid })
}

export function liveProcesses(): TrackedProcess[] {
  return [...live.values()]
}

/** Sends `signal` to the process group led by `pid`. False when it is already gone. */
export function signalGroup(pid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pid, signal)
    return true
  } catch {
    return false
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    // EPERM: it exists, it is just not ours to signal.
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** How long `cleanupStale` waits for the groups it killed to be gone. */
export const CLEANUP_WAIT_MS = 5_000

export type CleanupResult = {
  /** Killed: their forkchaos was gone, they were not. */
  stopped: PidFile[]
  /** Left alone: the forkchaos run that owns them is still alive. */
  skipped: PidFile[]
  /** Killed, but a member of its group still runs after `CLEANUP_WAIT_MS` (uninterruptible sleep). */
  lingering: PidFile[]
}

/**
 * Stops what earlier runs left behind (a SIGKILLed toolkit cannot clean up after itself): every
 * kind of process (Anvil, validators, keepers, flooders, a detached devnet's supervisor) whose
 * owner is gone. A group is signalled only when its leader's command line still names what we
 * started (`match`, else `binary`), so a recycled pid is never hit — or, when the leader is
 * gone, when its group still exists: a pid is not reused while a group of that id lives, so
 * those members are the leader's own children. Waits until they are gone.
 */
export async function cleanupStale(): Promise<CleanupResult> {
  const result: CleanupResult = { stopped: [], skipped: [], lingering: [] }
  let files: string[] = []
  try {
    files = fs.readdirSync(pidDir()).filter((f) => f.endsWith('.json'))
  } catch {
    return result
  }
  const killed: PidFile[] = []
  for (const file of files) {
    const full = path.join(pidDir(), file)
    let entry: PidFile
    try {
      entry = JSON.parse(fs.readFileSync(full, 'utf8')) as PidFile
      if (!Number.isInteger(entry.pid) || entry.pid <= 1) throw new Error('no pid')
    } catch {
      fs.rmSync(full, { force: true })
      continue
    }
    entry.kind ??= 'anvil' // pid files written before kinds existed were all Anvils
    entry.pgid ??= entry.pid
    // A pid file whose owner is alive belongs to a run in progress: not ours to stop.
    if (entry.owner !== undefined && entry.owner !== process.pid && isAlive(entry.owner)) {
      result.skipped.push(entry)
      continue
    }
    const leaderAlive = fs.existsSync(`/proc/${entry.pid}`)
    const ours = leaderAlive ? cmdlineOf(entry.pid).includes(entry.match ?? entry.binary) : signalGroup(entry.pgid, 0)
    if (ours && signalGroup(entry.pgid, 'SIGKILL')) killed.push(entry)
    fs.rmSync(full, { force: true })
  }
  const deadline = Date.now() + CLEANUP_WAIT_MS
  let waiting = killed
  while (waiting.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 25))
    const live = liveGroups()
    waiting = waiting.filter((e) => live.has(e.pgid))
  }
  result.lingering = waiting
  result.stopped = killed.filter((e) => !waiting.includes(e))
  return result
}

/**
 * The process groups that still have a member that has not exited. A killed orphan is a zombie
 * until its new parent (init, or this machine's pid 1) reaps it, which may take seconds; it
 * runs nothing, so it counts as gone. Read from /proc/<pid>/stat: state and pgid.
 */
function liveGroups(): Set<number> {
  const groups = new Set<number>()
  let pids: string[] = []
  try {
    pids = fs.readdirSync('/proc').filter((name) => /^\d+$/.test(name))
  } catch {
    return groups
  }
  for (const pid of pids) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
      // "pid (comm) state ppid pgrp …": comm may hold spaces and parentheses, so split after the last ')'.
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      if (state !== 'Z' && state !== 'X') groups.add(Number(pgrp))
    } catch {
      // Gone between the listing and the read.
    }
  }
  return groups
}

function cmdlineOf(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ')
  } catch {
    return ''
  }
}

let exitHookInstalled = false
/** Last line of defence: on any exit, SIGKILL the groups still registered. Synchronous. */
function installExitHook() {
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.on('exit', () => {
    for (const entry of live.values()) {
      signalGroup(entry.pgid, 'SIGCONT')
      signalGroup(entry.pgid, 'SIGKILL')
      try {
        fs.rmSync(pidFileOf(entry.pid), { force: true })
      } catch {}
    }
  })
}
