import { type ChildProcess, type Serializable, spawn, type StdioOptions } from 'node:child_process'
import { ForkchaosError, InfraError, InputError } from '../errors.js'
import { createOutputRing, OUTPUT_BYTES_MAX, OUTPUT_BYTES_MIN } from './output.js'
import { handOver, type ProcessKind, signalGroup, track, untrack } from './registry.js'

/**
 * The one process owner: every process forkchaos starts (Anvil, validators, the keeper, the
 * flooder, a detached `devnet up`) is an instance of a definition made here, as prool's
 * `Instance.define` makes its instances. The owner holds what every spawn needs and none should
 * redo: a lifecycle (a status union with guarded transitions), a start timeout on a ready
 * predicate, a bounded ring of the last output, a pid file in the state dir (which
 * `forkchaos cleanup` reads), and a process group of its own (spawned detached), which stop
 * signals whole: SIGTERM, then SIGKILL after a grace period.
 *
 * ```
 * idle ──start──► starting ──ready──► running ──exit 0──► stopped
 *                    │                  │  └──exit ≠ 0──► failed
 *                    │ timeout / exit   └──stop──► stopping ──exit──► stopped
 *                    └──────────────────────────► failed
 * ```
 */
export type Status = 'idle' | 'starting' | 'running' | 'stopping' | 'stopped' | 'failed'

/** The transitions the owner allows; any other throws `ProcessStateError`, naming the state found. */
export const TRANSITIONS: { readonly [from in Status]: readonly Status[] } = {
  idle: ['starting', 'stopped'],
  starting: ['running', 'stopping', 'failed'],
  running: ['stopping', 'stopped', 'failed'],
  stopping: ['stopped'],
  stopped: [],
  failed: [],
}

/** Default and limits of the owner's timings and buffer. Units last. */
export const START_TIMEOUT_MS_DEFAULT = 20_000
export const START_TIMEOUT_MS_MAX = 600_000
export const GRACE_MS_DEFAULT = 2_000
export const GRACE_MS_MAX = 60_000
export const OUTPUT_BYTES_DEFAULT = 65_536
/** How much of the newest output a ready predicate sees, in characters. */
export const READY_WINDOW_CHARS = 4_000

/** What a definition says about one process. Every limit has a default. */
export type Parameters<Ready> = {
  kind: ProcessKind
  /** What pid files, errors and `cleanup` call it. */
  label: string
  command: string
  args: readonly string[]
  /** Added to this process's environment. */
  env?: Record<string, string>
  /** What /proc/<pid>/cmdline must contain for `cleanup` to signal it. Default `command`; a Node script names its file. */
  match?: string
  /**
   * Recognises readiness in the newest output (stdout and stderr, the last
   * `READY_WINDOW_CHARS` characters) and returns what it learnt (a port, an address): anything
   * but `undefined` means ready. Without one, the process is running once spawned.
   */
  ready?: (output: string) => Ready | undefined
  /** How long `start` waits for `ready`, in ms. Default 20 s, at most 10 min. */
  startTimeoutMs?: number
  /** Between SIGTERM and SIGKILL on `stop`, in ms. Default 2 s, at most 60 s. */
  graceMs?: number
  /** How much of the last output is kept, in bytes. Default 64 KiB, 1 KiB – 16 MiB. */
  outputBytes?: number
  /** stderr: a pipe into the ring (default), or a file descriptor (a log), or inherited. */
  stderr?: 'pipe' | 'inherit' | number
  /** Open an IPC channel (`send`). */
  ipc?: boolean
  /** Every chunk of output, as it comes (a log writer). */
  onOutput?: (chunk: Buffer, stream: 'stdout' | 'stderr') => void
  /** Applied to every text the owner shows (errors, `output()`): strips credentials. */
  redact?: (text: string) => string
  /** Where its log goes, for pid files and errors. */
  logFile?: string
}

export type Exit = { code: number | null; signal: NodeJS.Signals | null }

export type Instance<Ready = true> = {
  readonly kind: ProcessKind
  readonly label: string
  readonly status: Status
  /** The pid, which is also its process group's id. Throws before `start`. */
  readonly pid: number
  /** Spawns it and resolves with what `ready` learnt, once it is ready. Only from `idle`. */
  start(): Promise<Ready>
  /**
   * Stops the group: SIGCONT (a wedged process must see the signal), `signal` (default
   * SIGTERM), SIGKILL after `graceMs`; resolves once the process is gone. Idempotent.
   */
  stop(options?: { signal?: NodeJS.Signals; graceMs?: number }): Promise<void>
  /** Resolves when the process has exited and its output has been read to the end. */
  readonly exited: Promise<Exit>
  /** Null while running; its code and signal once it exited. */
  exit(): Exit | null
  /** The kept output (redacted), at most `outputBytes`. */
  output(): string
  /** Sends `signal` to its group (SIGSTOP / SIGCONT for a wedge). False when it is gone. */
  signal(signal: NodeJS.Signals): boolean
  /** Sends a message over the IPC channel (`ipc: true`). */
  send(message: Serializable): void
  /** Lets it outlive this forkchaos: stops reading its output; its pid file now names itself as owner. */
  release(): void
  /** Listens for each status change. */
  onStatus(listener: (status: Status) => void): void
}

/**
 * Defines a kind of process: `build` turns a definition's own params into the owner's
 * `Parameters`; the returned function makes idle instances, validated at construction.
 *
 * ```ts
 * const sleeper = define((s: { seconds: number }) => ({ kind: 'keeper', label: 'sleeper', command: 'sleep', args: [String(s.seconds)] }))
 * const p = sleeper({ seconds: 5 })
 * await p.start()
 * await p.stop()
 * ```
 */
export function define<P, Ready = true>(build: (params: P) => Parameters<Ready>): (params: P) => Instance<Ready> {
  return (params) => create(build(params))
}

/** One idle instance from the owner's parameters. Throws `InputError` for an out-of-range limit. */
export function create<Ready = true>(p: Parameters<Ready>): Instance<Ready> {
  const startTimeoutMs = limit(p, 'startTimeoutMs', START_TIMEOUT_MS_DEFAULT, 1, START_TIMEOUT_MS_MAX)
  const graceMs = limit(p, 'graceMs', GRACE_MS_DEFAULT, 0, GRACE_MS_MAX)
  const outputBytes = limit(p, 'outputBytes', OUTPUT_BYTES_DEFAULT, OUTPUT_BYTES_MIN, OUTPUT_BYTES_MAX)
  const redact = p.redact ?? ((t: string) => t)
  const ring = createOutputRing(outputBytes)

  let status: Status = 'idle'
  let child: ChildProcess | undefined
  let exitInfo: Exit | null = null
  let released = false
  let stopping: Promise<void> | undefined
  const listeners: ((s: Status) => void)[] = []
  let resolveExited: (e: Exit) => void = () => {}
  const exited = new Promise<Exit>((resolve) => {
    resolveExited = resolve
  })

  // Read through a call: TypeScript would narrow `status` across the awaits that change it.
  const current = (): Status => status
  const setStatus = (to: Status) => {
    if (!TRANSITIONS[status].includes(to)) throw new ProcessStateError(p.label, status, `go to \`${to}\``)
    status = to
    for (const l of listeners) l(to)
  }
  const pidOf = () => {
    if (child?.pid === undefined) throw new ProcessStateError(p.label, status, 'have a pid before `start`')
    return child.pid
  }
  const context = (extra: Record<string, string | number>) => ({
    Process: `${p.label} (${p.kind})`,
    Command: redact([p.command, ...p.args].join(' ')).slice(0, 300),
    ...extra,
    ...(p.logFile ? { Log: p.logFile } : {}),
    'Last output': redact(ring.text()).trim().split('\n').slice(-5).join(' | ').slice(-1_000),
  })

  const instance: Instance<Ready> = {
    kind: p.kind,
    label: p.label,
    get status() {
      return status
    },
    get pid() {
      return pidOf()
    },
    exited,
    exit: () => exitInfo,
    output: () => redact(ring.text()),
    onStatus: (l) => void listeners.push(l),
    signal: (signal) => child?.pid !== undefined && exitInfo === null && signalGroup(child.pid, signal),
    send(message) {
      if (!child?.send) throw new ProcessStateError(p.label, status, 'send without an IPC channel (`ipc: true`)')
      child.send(message as Serializable)
    },
    release() {
      if (status !== 'running') throw new ProcessStateError(p.label, status, 'be released (only a running process is)')
      released = true
      handOver(pidOf())
      child?.stdout?.destroy()
      if (p.stderr === undefined || p.stderr === 'pipe') child?.stderr?.destroy()
      child?.unref()
    },

    async start() {
      if (status !== 'idle') throw new ProcessStateError(p.label, status, 'start (only an idle instance starts; make a new one)')
      setStatus('starting')
      const stdio: StdioOptions = ['ignore', 'pipe', p.stderr ?? 'pipe', ...(p.ipc ? ['ipc' as const] : [])]
      // Its own process group: stop signals the group, and a Ctrl-C at the terminal reaches
      // forkchaos alone, which then stops its children in order. FORKCHAOS_OWNER_PID lets a
      // child that must die with forkchaos watch for it (src/process/parent.ts).
      const spawned = spawn(p.command, [...p.args], {
        detached: true,
        stdio,
        env: { ...process.env, ...p.env, FORKCHAOS_OWNER_PID: String(process.pid) },
      })
      child = spawned
      const spawnError = new Promise<Error>((resolve) => spawned.once('error', resolve))
      if (spawned.pid === undefined) {
        const cause = await spawnError
        status = 'failed'
        for (const l of listeners) l('failed')
        exitInfo = { code: null, signal: null }
        resolveExited(exitInfo)
        throw new InfraError(`\`${p.label}\` failed to start.`, { context: { ...context({}), Reason: cause.message }, cause })
      }
      const pid = spawned.pid
      track(pid, { kind: p.kind, binary: p.command, label: p.label, ...(p.match ? { match: p.match } : {}), ...(p.logFile ? { logFile: p.logFile } : {}) })

      let window = ''
      let onReady: ((value: Ready) => void) | undefined
      const listen = (stream: 'stdout' | 'stderr') => (chunk: Buffer) => {
        ring.push(chunk)
        p.onOutput?.(chunk, stream)
        if (!onReady || !p.ready) return
        window = (window + chunk.toString('utf8')).slice(-READY_WINDOW_CHARS)
        let value: Ready | undefined
        try {
          value = p.ready(window)
        } catch {
          // A predicate that cannot read the output yet (half a line) says "not yet".
        }
        if (value !== undefined) onReady(value)
      }
      spawned.stdout?.on('data', listen('stdout'))
      spawned.stderr?.on('data', listen('stderr'))
      // 'close', not 'exit': by then the output (a panic message) has been read to the end.
      spawned.once('close', (code, signal) => {
        exitInfo = { code, signal }
        if (!released) untrack(pid)
        // Whatever it leaves in its group dies with it (Anvil is a group leader too).
        signalGroup(pid, 'SIGKILL')
        if (status === 'stopping' || (status === 'running' && code === 0)) setStatus('stopped')
        else if (status === 'running' || status === 'starting') setStatus('failed')
        resolveExited(exitInfo)
      })

      const ready = await new Promise<Ready>((resolve, reject) => {
        const timer = setTimeout(() => {
          onReady = undefined
          reject(new InfraError(`\`${p.label}\` was not ready within ${startTimeoutMs} ms (\`startTimeoutMs\`).`, { context: context({ 'Timeout (ms)': startTimeoutMs }) }))
        }, startTimeoutMs)
        onReady = (value) => {
          onReady = undefined
          clearTimeout(timer)
          resolve(value)
        }
        void exited.then((e) => {
          if (!onReady) return
          onReady = undefined
          clearTimeout(timer)
          const message = status === 'stopped' ? 'was stopped before it was ready' : 'exited before it was ready'
          reject(new InfraError(`\`${p.label}\` ${message}.`, { context: context({ 'Exit code': e.code ?? `signal ${e.signal}` }) }))
        })
        if (!p.ready) void new Promise((r) => spawned.once('spawn', r)).then(() => onReady?.(true as Ready))
      }).catch(async (error: unknown) => {
        // A timed-out start leaves nothing behind: the group is killed and reaped first.
        if (exitInfo === null) {
          signalGroup(pid, 'SIGCONT')
          signalGroup(pid, 'SIGKILL')
          await exited
        }
        if (current() === 'starting') setStatus('failed')
        throw error
      })
      if (current() !== 'starting') throw new InfraError(`\`${p.label}\` was stopped while it started.`, { context: context({}) })
      setStatus('running')
      return ready
    },

    stop(options = {}) {
      if (status === 'idle') {
        setStatus('stopped')
        return Promise.resolve()
      }
      // Asked again, with no grace, while a graceful stop waits: kill now (a second Ctrl-C).
      if (stopping && options.graceMs === 0 && exitInfo === null && child?.pid !== undefined) signalGroup(child.pid, 'SIGKILL')
      stopping ??= (async () => {
        if (exitInfo !== null || child?.pid === undefined) return
        const pid = child.pid
        if (status === 'starting' || status === 'running') setStatus('stopping')
        const grace = options.graceMs ?? graceMs
        signalGroup(pid, 'SIGCONT')
        signalGroup(pid, options.signal ?? 'SIGTERM')
        const timer = grace === 0 ? undefined : setTimeout(() => signalGroup(pid, 'SIGKILL'), grace)
        if (grace === 0) signalGroup(pid, 'SIGKILL')
        await exited
        clearTimeout(timer)
      })()
      return stopping
    },
  }
  return instance
}

function limit(p: Record<string, unknown>, key: string, fallback: number, min: number, max: number): number {
  const value = p[key]
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max)
    throw new InputError(`\`${key}\` of process \`${String(p.label)}\` must be between ${min} and ${max}. Got \`${String(value)}\`.`)
  return value
}

/** A lifecycle call in a state that does not allow it: names the process, the state it found and what was asked. */
export class ProcessStateError extends ForkchaosError {
  override name = 'ProcessStateError'
  constructor(label: string, found: Status, action: string) {
    const allowed = TRANSITIONS[found]
    super(`Process \`${label}\` is \`${found}\`: it cannot ${action}.`, {
      context: { [`Allowed from \`${found}\``]: allowed.length ? allowed.join(', ') : 'nothing (final)' },
    })
  }
}
