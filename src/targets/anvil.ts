import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import { createRequire } from 'node:module'
import * as path from 'node:path'
import { InfraError } from '../errors.js'
import { redactUrl, scrub, secretsOf } from '../util/redact.js'
import { signalGroup, stateDir, track, untrack } from './processes.js'
import { createRpc, type Rpc } from './rpc.js'

/** Flags for one Anvil process. Units last in names; every limit has a default. */
export type AnvilParameters = {
  /** What the log file and errors call this instance. */
  label: string
  /** Fork this RPC URL (`--fork-url`). Credentials in it never reach a log. */
  forkUrl?: string
  /** Pin the fork to this block (`--fork-block-number`). */
  forkBlockNumber?: bigint
  /** Load a state dump written by `anvil --dump-state` (`--load-state`). */
  loadStatePath?: string
  /** Genesis timestamp in seconds (`--timestamp`). */
  timestampS?: bigint
  /** Retries of failed upstream requests (`--retries`, Anvil's default 5). */
  forkRetries?: number
  /** Upstream request timeout (`--timeout`, ms). */
  forkTimeoutMs?: number
  /** Assumed upstream compute units per second (`--compute-units-per-second`). */
  computeUnitsPerSecond?: number
  /** How long to wait for "Listening on" and a first RPC answer. Default 20 s. */
  startTimeoutMs?: number
  /** Directory for the log file. Default `<state dir>/logs`. */
  logDir?: string
  /** More flags, passed verbatim. */
  extraArgs?: readonly string[]
  /** Extra environment (e.g. libfaketime's LD_PRELOAD and FAKETIME for a skewed clock). */
  env?: Record<string, string>
}

export type AnvilInstance = {
  readonly label: string
  readonly pid: number
  readonly port: number
  readonly url: string
  readonly logFile: string
  /** An RPC client allowed to send cheat methods: this process is ours. */
  readonly rpc: Rpc
  /** SIGTERM the process group, SIGKILL after `graceMs` (default 2 s). Idempotent. */
  stop(graceMs?: number): Promise<void>
  /** Null while running; once exited, its code and last output (a panic's message when it panicked). */
  exitInfo(): { code: number | null; lastOutput: string } | null
}

/**
 * Absolute path of the Anvil binary from npm: `@foundry-rs/anvil` ships it as one package per
 * platform (`@foundry-rs/anvil-linux-amd64`, …), which forkchaos depends on directly so that
 * `npm ci` works where only this platform's package is published. `FORKCHAOS_ANVIL` overrides.
 */
export function anvilBinary(): string {
  if (process.env.FORKCHAOS_ANVIL) return process.env.FORKCHAOS_ANVIL
  const require = createRequire(import.meta.url)
  const arch = process.arch === 'x64' ? 'amd64' : process.arch
  const pkg = `@foundry-rs/anvil-${process.platform}-${arch}`
  try {
    return path.join(path.dirname(require.resolve(`${pkg}/package.json`)), 'bin', 'anvil')
  } catch (cause) {
    throw new InfraError('The Anvil binary is not installed.', {
      context: { Package: pkg },
      hint: 'Run `npm ci`; on another platform run `npm i @foundry-rs/anvil` or set FORKCHAOS_ANVIL to an anvil binary.',
      cause,
    })
  }
}

let counter = 0

/**
 * Starts Anvil on 127.0.0.1 with `--port 0`: the kernel picks a free port at bind time and
 * Anvil prints it, so there is no race between choosing a port and binding it, and parallel
 * instances never collide.
 */
export async function startAnvil(params: AnvilParameters): Promise<AnvilInstance> {
  const binary = anvilBinary()
  const args = ['--host', '127.0.0.1', '--port', '0']
  // A fork must never write a user's chain into Anvil's shared RPC cache.
  if (params.forkUrl) args.push('--fork-url', params.forkUrl, '--no-storage-caching')
  if (params.forkBlockNumber !== undefined) args.push('--fork-block-number', String(params.forkBlockNumber))
  if (params.loadStatePath) args.push('--load-state', params.loadStatePath)
  if (params.timestampS !== undefined) args.push('--timestamp', String(params.timestampS))
  if (params.forkRetries !== undefined) args.push('--retries', String(params.forkRetries))
  if (params.forkTimeoutMs !== undefined) args.push('--timeout', String(params.forkTimeoutMs))
  if (params.computeUnitsPerSecond !== undefined)
    args.push('--compute-units-per-second', String(params.computeUnitsPerSecond))
  args.push(...(params.extraArgs ?? []))

  const secrets = params.forkUrl ? secretsOf(params.forkUrl) : []
  const logDir = params.logDir ?? path.join(stateDir(), 'logs')
  fs.mkdirSync(logDir, { recursive: true })
  const logFile = path.join(logDir, `${params.label}-${process.pid}-${++counter}.log`)
  const log = fs.createWriteStream(logFile)

  const child = spawn(binary, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], ...(params.env ? { env: { ...process.env, ...params.env } } : {}) })
  const spawnError = new Promise<never>((_, reject) => child.once('error', reject))
  if (child.pid === undefined) {
    await spawnError.catch((cause) => {
      throw new InfraError('Anvil failed to start.', { context: { Binary: binary, Reason: String(cause) }, cause })
    })
  }
  const entry = track(child, { binary, label: params.label, logFile })
  let exitCode: number | null | undefined
  // 'close', not 'exit': the output (a panic message) has been read to the end by then.
  const exited = new Promise<number | null>((resolve) =>
    child.once('close', (code) => {
      exitCode = code
      resolve(code)
    }),
  )
  spawnError.catch(() => {})
  let stopping: Promise<void> | undefined
  const stop = (graceMs = 2_000) =>
    (stopping ??= (async () => {
      signalGroup(entry.pid, 'SIGTERM')
      const timer = setTimeout(() => signalGroup(entry.pid, 'SIGKILL'), graceMs)
      await exited
      clearTimeout(timer)
      // Anvil is the group leader; make sure nothing it spawned outlives it.
      signalGroup(entry.pid, 'SIGKILL')
      untrack(entry.pid)
      log.end(scrub(pending, secrets))
    })())

  // The last output, kept as raw chunks up to a byte cap and decoded only when asked for (a
  // start-up error, an exit): Anvil logs every RPC call, so per-chunk work must stay O(chunk).
  const RECENT_BYTES = 65_536
  const recent: Buffer[] = []
  let recentBytes = 0
  let trimmed = false
  const remember = (chunk: Buffer) => {
    recent.push(chunk)
    recentBytes += chunk.length
    while (recent.length > 1 && recentBytes - (recent[0] as Buffer).length >= RECENT_BYTES) {
      recentBytes -= (recent.shift() as Buffer).length
      trimmed = true
    }
  }
  // Once trimmed, the text starts mid-line: that first partial line (perhaps part of a secret) is dropped.
  const recentText = () => {
    const text = Buffer.concat(recent).toString('utf8')
    return scrub(trimmed ? text.slice(text.indexOf('\n') + 1) : text, secrets)
  }
  const tailText = () => recentText().slice(-4_000)
  // Scrub whole lines only, so a secret split across two chunks is still caught.
  let pending = ''
  // Start-up: decoded and searched for the port only until it is found (within the last 4,000 chars).
  let startup = ''
  let listening = false
  // Without secrets (no fork URL: the devnet's Anvils) the bytes go to the log as they are.
  const writeLog = (chunk: Buffer) => {
    if (secrets.length === 0) {
      log.write(chunk)
      return
    }
    pending += chunk.toString('utf8')
    const cut = pending.lastIndexOf('\n') + 1
    log.write(scrub(pending.slice(0, cut), secrets))
    pending = pending.slice(cut)
  }
  const port = await new Promise<number>((resolve, reject) => {
    const timeoutMs = params.startTimeoutMs ?? 20_000
    const timer = setTimeout(
      () => reject(startError('Anvil did not report a listening port in time.', { 'Timeout (ms)': timeoutMs })),
      timeoutMs,
    )
    const onData = (chunk: Buffer) => {
      remember(chunk)
      writeLog(chunk)
      if (listening) return
      startup = (startup + chunk.toString('utf8')).slice(-4_000)
      const match = /Listening on 127\.0\.0\.1:(\d+)/.exec(startup)
      if (match) {
        listening = true
        startup = ''
        clearTimeout(timer)
        resolve(Number(match[1]))
      }
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onData)
    exited.then((code) => {
      clearTimeout(timer)
      reject(startError('Anvil exited before it was ready.', { 'Exit code': code ?? 'signal' }))
    })
  }).catch(async (error) => {
    await stop(0)
    throw error
  })

  function startError(message: string, extra: Record<string, string | number>) {
    return new InfraError(message, {
      context: {
        Label: params.label,
        ...(params.forkUrl ? { 'Fork URL': redactUrl(params.forkUrl) } : {}),
        ...extra,
        Log: logFile,
        'Last output': tailText().trim().split('\n').slice(-5).join(' | '),
      },
    })
  }

  const url = `http://127.0.0.1:${port}`
  const rpc = createRpc(url, { owned: true })
  try {
    await rpc.request('eth_chainId')
  } catch (cause) {
    await stop(0)
    throw new InfraError('Anvil is listening but does not answer JSON-RPC.', { context: { URL: url, Log: logFile }, cause })
  }
  // The same listener keeps the last output after start-up too: a panic message is what
  // explains a crash. A panic's backtrace is long, and its message may arrive split across
  // chunks, so the message is searched for only once the process has exited.
  const exitInfo = () => {
    if (exitCode === undefined) return null
    const text = recentText()
    const plain = text.replace(/\x1b\[[0-9;]*m/g, '')
    const panic = [...plain.matchAll(/Message:\s*(.*)/g)].at(-1)?.[1]
    return { code: exitCode, lastOutput: scrub(panic ? `Message: ${panic}` : text.slice(-4_000), secrets) }
  }
  return { label: params.label, pid: entry.pid, port, url, logFile, rpc, stop, exitInfo }
}
