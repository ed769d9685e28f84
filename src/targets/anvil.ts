import * as fs from 'node:fs'
import { createRequire } from 'node:module'
import * as path from 'node:path'
import { ForkchaosError, InfraError } from '../errors.js'
import { create as createProcess } from '../process/Instance.js'
import { redactUrl, scrub, secretsOf } from '../util/redact.js'
import { stateDir } from '../process/registry.js'
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

/** Anvil's output is written to its log file at most this long after it came, in ms, */
const LOG_FLUSH_MS = 100
/** or once this much is held, in bytes. */
const LOG_FLUSH_BYTES = 256 * 1024

/**
 * Starts Anvil on 127.0.0.1 with `--port 0`: the kernel picks a free port at bind time and
 * Anvil prints it, so there is no race between choosing a port and binding it, and parallel
 * instances never collide. The process is the process owner's (src/process/Instance.ts): its
 * own group, a pid file, the start timeout on "Listening on", the last 64 KiB of output.
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

  // Scrub whole lines only, so a secret split across two chunks is still caught.
  let pending = ''
  // Anvil prints a line or more per request: the chunks go to the file together, at most
  // LOG_FLUSH_MS after they came or once LOG_FLUSH_BYTES are held (one write per chunk was ~4 %
  // of a search's wall time), and all of them when it stops.
  let held: Buffer[] = []
  let heldBytes = 0
  let flushTimer: NodeJS.Timeout | undefined
  const flush = () => {
    clearTimeout(flushTimer)
    flushTimer = undefined
    if (held.length === 0) return
    const chunks = held
    held = []
    heldBytes = 0
    // Without secrets (no fork URL: the devnet's Anvils) the bytes go to the log as they are.
    if (secrets.length === 0) {
      log.write(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks))
      return
    }
    pending += Buffer.concat(chunks).toString('utf8')
    const cut = pending.lastIndexOf('\n') + 1
    log.write(scrub(pending.slice(0, cut), secrets))
    pending = pending.slice(cut)
  }
  const writeLog = (chunk: Buffer) => {
    held.push(chunk)
    heldBytes += chunk.length
    if (heldBytes >= LOG_FLUSH_BYTES) flush()
    else if (!flushTimer) flushTimer = setTimeout(flush, LOG_FLUSH_MS).unref()
  }
  const anvil = createProcess<number>({
    kind: 'anvil',
    label: params.label,
    command: binary,
    args,
    ...(params.env ? { env: params.env } : {}),
    ...(params.startTimeoutMs !== undefined ? { startTimeoutMs: params.startTimeoutMs } : {}),
    logFile,
    onOutput: writeLog,
    redact: (text) => scrub(params.forkUrl ? text.replaceAll(params.forkUrl, redactUrl(params.forkUrl)) : text, secrets),
    ready: (output) => {
      const match = /Listening on 127\.0\.0\.1:(\d+)/.exec(output)
      return match ? Number(match[1]) : undefined
    },
  })
  let stopping: Promise<void> | undefined
  const stop = (graceMs = 2_000) =>
    (stopping ??= (async () => {
      await anvil.stop({ graceMs })
      flush()
      log.end(scrub(pending, secrets))
    })())

  let port: number
  try {
    port = await anvil.start()
  } catch (error) {
    await stop(0)
    if (!(error instanceof ForkchaosError)) throw error
    // Anvil's own words for the owner's: what a user of a fork needs is its (redacted) URL.
    const message = /was not ready within/.test(error.shortMessage)
      ? 'Anvil did not report a listening port in time.'
      : /failed to start/.test(error.shortMessage)
        ? 'Anvil failed to start.'
        : 'Anvil exited before it was ready.'
    throw new InfraError(message, {
      context: {
        Label: params.label,
        ...(params.forkUrl ? { 'Fork URL': redactUrl(params.forkUrl) } : {}),
        ...Object.fromEntries(Object.entries(error.context).filter(([k]) => k !== 'Process' && k !== 'Command')),
      },
      cause: error,
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
  // The owner keeps the last output after start-up too: a panic message is what explains a
  // crash. A panic's backtrace is long, and its message may arrive split across chunks, so the
  // message is searched for only once the process has exited.
  const exitInfo = () => {
    const exit = anvil.exit()
    if (exit === null) return null
    const text = anvil.output()
    const plain = text.replace(/\x1b\[[0-9;]*m/g, '')
    const panic = [...plain.matchAll(/Message:\s*(.*)/g)].at(-1)?.[1]
    return { code: exit.code, lastOutput: scrub(panic ? `Message: ${panic}` : text.slice(-4_000), secrets) }
  }
  return { label: params.label, pid: anvil.pid, port, url, logFile, rpc, stop, exitInfo }
}
