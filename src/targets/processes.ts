import { type ChildProcess } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { InputError } from '../errors.js'

/**
 * Every process the toolkit starts is registered here: in memory, to stop it on exit, error,
 * SIGINT and SIGTERM; and as a pid file, so that `forkchaos cleanup` can stop what a SIGKILL
 * of the toolkit left behind. Processes run in their own process group (spawned `detached`),
 * and are stopped by that group — never by name.
 */
export type TrackedProcess = {
  pid: number
  /** The executable's path; `cleanup` checks /proc/<pid>/cmdline against it before a kill. */
  binary: string
  label: string
  startedAt: string
  logFile?: string
}

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

function pidDir() {
  return path.join(stateDir(), 'pids')
}

export function track(child: ChildProcess, info: Omit<TrackedProcess, 'pid' | 'startedAt'>): TrackedProcess {
  if (child.pid === undefined) throw new Error('track: the child has no pid (it failed to spawn)')
  const entry: TrackedProcess = { pid: child.pid, startedAt: new Date().toISOString(), ...info }
  live.set(entry.pid, entry)
  fs.mkdirSync(pidDir(), { recursive: true })
  fs.writeFileSync(path.join(pidDir(), `${entry.pid}.json`), JSON.stringify({ ...entry, owner: process.pid }))
  installExitHook()
  return entry
}

export function untrack(pid: number) {
  live.delete(pid)
  fs.rmSync(path.join(pidDir(), `${pid}.json`), { force: true })
}

export function liveProcesses(): TrackedProcess[] {
  return [...live.values()]
}

/** Sends `signal` to the process group led by `pid`. False when it is already gone. */
export function signalGroup(pid: number, signal: NodeJS.Signals): boolean {
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
  } catch {
    return false
  }
}

/**
 * Stops what earlier runs left behind (a SIGKILLed toolkit cannot clean up after itself).
 * Only processes from our pid files whose command line still names the binary we started
 * are signalled, so a recycled pid is never hit. Returns what it stopped.
 */
export function cleanupStale(): { stopped: TrackedProcess[]; skipped: TrackedProcess[] } {
  const stopped: TrackedProcess[] = []
  const skipped: TrackedProcess[] = []
  let files: string[] = []
  try {
    files = fs.readdirSync(pidDir()).filter((f) => f.endsWith('.json'))
  } catch {
    return { stopped, skipped }
  }
  for (const file of files) {
    const full = path.join(pidDir(), file)
    let entry: TrackedProcess & { owner?: number }
    try {
      entry = JSON.parse(fs.readFileSync(full, 'utf8'))
    } catch {
      fs.rmSync(full, { force: true })
      continue
    }
    // A pid file whose owner is alive belongs to a run in progress: not ours to stop.
    if (entry.owner !== undefined && entry.owner !== process.pid && isAlive(entry.owner)) {
      skipped.push(entry)
      continue
    }
    if (isAlive(entry.pid) && cmdlineOf(entry.pid).includes(entry.binary)) {
      signalGroup(entry.pid, 'SIGKILL')
      stopped.push(entry)
    }
    fs.rmSync(full, { force: true })
  }
  return { stopped, skipped }
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
      signalGroup(entry.pid, 'SIGKILL')
      try {
        fs.rmSync(path.join(pidDir(), `${entry.pid}.json`), { force: true })
      } catch {}
    }
  })
}
