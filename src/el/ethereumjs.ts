import * as fs from 'node:fs'
import { createRequire } from 'node:module'
import * as net from 'node:net'
import * as path from 'node:path'
import { ForkchaosError, InfraError } from '../errors.js'
import { create as createProcess } from '../process/Instance.js'
import { stateDir } from '../process/registry.js'
import { JsonRpcHttp } from '../devnet/node/execution.js'

/** The npm package and the version forkchaos is tested with (an optional dependency). */
export const ETHEREUMJS_PACKAGE = '@ethereumjs/client'
export const ETHEREUMJS_VERSION = '0.10.5'
export const ETHEREUMJS_INSTALL = `npm i --save-optional --save-exact ${ETHEREUMJS_PACKAGE}@${ETHEREUMJS_VERSION}`

/** Flags for one ethereumjs execution client. Units last in names; every limit has a default. */
export type EthereumjsParameters = {
  /** What the pid file, the log file and errors call it. */
  label: string
  /** Its chain database (`--dataDir`); kept across restarts, so it keeps its own chain. */
  dataDir: string
  /** A geth-style post-merge genesis (`--gethGenesis`), from `writePostMergeGenesis`. */
  genesisFile: string
  /** The Engine API JWT secret file (`--jwtSecret`), from `writeJwtSecret`. */
  jwtFile: string
  /** Directory for the log file. Default `<state dir>/logs`. */
  logDir?: string
  /** How long to wait for "Client started successfully" and an `eth_chainId` answer. Default 30 s (4 started together take 6–9 s here). */
  startTimeoutMs?: number
  /** Between SIGTERM and SIGKILL on `stop`. Default 15 s: it takes about 10 s to exit after SIGTERM. */
  graceMs?: number
  /** Extra environment (e.g. libfaketime for a skewed clock). */
  env?: Record<string, string>
}

export type EthereumjsInstance = {
  readonly label: string
  /** Its pid, which is also its process group. */
  readonly pid: number
  /** The plain JSON-RPC port (eth_*, no JWT): `http://127.0.0.1:<port>`. */
  readonly rpcUrl: string
  /** The authenticated Engine API port (engine_*, JWT on every request). */
  readonly engineUrl: string
  readonly logFile: string
  /** SIGTERM its group, SIGKILL after `graceMs` (default: the instance's grace). Idempotent. */
  stop(graceMs?: number): Promise<void>
  /** Null while running; once exited, its code and last output. */
  exitInfo(): { code: number | null; lastOutput: string } | null
}

export const ETHEREUMJS_START_TIMEOUT_MS_DEFAULT = 30_000
export const ETHEREUMJS_GRACE_MS_DEFAULT = 15_000

/**
 * The `ethereumjs` command of `@ethereumjs/client`, resolved from this package's
 * node_modules (it is an optional dependency). `FORKCHAOS_ETHEREUMJS` overrides it (a path to
 * its `cli.js`). Throws an `InfraError` (exit 3) with the install command when it is missing.
 */
export function ethereumjsBin(): string {
  const fromEnv = process.env.FORKCHAOS_ETHEREUMJS
  const require = createRequire(import.meta.url)
  let bin: string
  if (fromEnv) bin = fromEnv
  else {
    try {
      const pkgFile = require.resolve(`${ETHEREUMJS_PACKAGE}/package.json`)
      const pkg = JSON.parse(fs.readFileSync(pkgFile, 'utf8')) as { bin?: Record<string, string> }
      bin = path.join(path.dirname(pkgFile), pkg.bin?.ethereumjs ?? 'dist/esm/bin/cli.js')
    } catch {
      throw notInstalled('not installed')
    }
  }
  if (!fs.existsSync(bin)) throw notInstalled(fromEnv ? `FORKCHAOS_ETHEREUMJS names no file (${fromEnv})` : `its command is missing (${bin})`)
  return bin
}

function notInstalled(reason: string) {
  return new InfraError(`The ethereumjs execution client (${ETHEREUMJS_PACKAGE}) is ${reason.startsWith('not') ? reason : `not usable: ${reason}`}.`, {
    context: { Package: `${ETHEREUMJS_PACKAGE}@${ETHEREUMJS_VERSION}` },
    hint: `\`--el ethereumjs\` needs it. It is an optional dependency: run \`npm ci\` (with optional dependencies), or \`${ETHEREUMJS_INSTALL}\`.`,
  })
}

/** A free TCP port on 127.0.0.1 (bound, read, released: ethereumjs takes no port 0). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port
      server.close(() => resolve(port))
    })
  })
}

let counter = 0

/**
 * The command line of one ethereumjs: every port on 127.0.0.1, no peers, no discovery,
 * `--sync none` (else it binds a P2P port on 0.0.0.0) and `--isSingleNode` (else
 * `eth_sendRawTransaction` refuses: "not aware of the current chain height"). The consensus
 * node drives its chain through the Engine API only.
 */
export function ethereumjsArgs(p: { dataDir: string; genesisFile: string; jwtFile: string; rpcPort: number; enginePort: number }): string[] {
  return [
    '--gethGenesis', p.genesisFile,
    '--dataDir', p.dataDir,
    '--rpc', '--rpcAddr', '127.0.0.1', '--rpcPort', String(p.rpcPort),
    '--rpcEngine', '--rpcEngineAddr', '127.0.0.1', '--rpcEnginePort', String(p.enginePort),
    '--rpcEngineAuth', 'true', '--jwtSecret', p.jwtFile,
    '--maxPeers', '0', '--discV4', 'false', '--discDns', 'false',
    '--isSingleNode', 'true', '--sync', 'none',
  ]
}

/** Start attempts: a port picked by `freePort` may be taken by someone else before it binds. */
const START_ATTEMPTS = 3

/**
 * Starts one ethereumjs under the process owner (src/process/Instance.ts: its own process
 * group, a pid file, the start timeout, the last 64 KiB of output; stop = SIGTERM, then SIGKILL
 * after `graceMs`). Resolves once its plain RPC port answers `eth_chainId`.
 */
export async function startEthereumjs(params: EthereumjsParameters): Promise<EthereumjsInstance> {
  const bin = ethereumjsBin()
  const logDir = params.logDir ?? path.join(stateDir(), 'logs')
  fs.mkdirSync(logDir, { recursive: true })
  fs.mkdirSync(params.dataDir, { recursive: true })
  const logFile = path.join(logDir, `${params.label}-${process.pid}-${++counter}.log`)
  let lastError: unknown
  for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
    try {
      return await startOnce(params, bin, logFile)
    } catch (error) {
      lastError = error
      // Only a port taken between `freePort` and its bind is worth another try.
      if (!(error instanceof ForkchaosError && /EADDRINUSE/.test(error.message))) throw error
    }
  }
  throw lastError
}

async function startOnce(params: EthereumjsParameters, bin: string, logFile: string): Promise<EthereumjsInstance> {
  const rpcPort = await freePort()
  let enginePort = await freePort()
  while (enginePort === rpcPort) enginePort = await freePort()
  const log = fs.openSync(logFile, 'a')
  const graceMs = params.graceMs ?? ETHEREUMJS_GRACE_MS_DEFAULT
  const el = createProcess<true>({
    kind: 'execution',
    label: params.label,
    command: process.execPath,
    args: [bin, ...ethereumjsArgs({ ...params, rpcPort, enginePort })],
    match: params.dataDir,
    ...(params.env ? { env: params.env } : {}),
    startTimeoutMs: params.startTimeoutMs ?? ETHEREUMJS_START_TIMEOUT_MS_DEFAULT,
    graceMs,
    logFile,
    onOutput: (chunk) => fs.writeSync(log, chunk),
    ready: (output) => (/Client started successfully/.test(output) ? true : undefined),
  })
  let stopping: Promise<void> | undefined
  const stop = (ms = graceMs) =>
    (stopping ??= (async () => {
      await el.stop({ graceMs: ms })
      fs.closeSync(log)
    })())
  try {
    await el.start()
  } catch (error) {
    await stop(0)
    if (!(error instanceof ForkchaosError)) throw error
    const output = el.output()
    const inUse = /EADDRINUSE/.test(output)
    throw new InfraError(`ethereumjs did not start${inUse ? ' (EADDRINUSE: a port was taken)' : ''}.`, {
      context: { Label: params.label, Reason: error.shortMessage, 'Last output': output.slice(-600).trim(), Log: logFile },
      cause: error,
    })
  }
  const rpcUrl = `http://127.0.0.1:${rpcPort}`
  const engineUrl = `http://127.0.0.1:${enginePort}`
  const rpc = new JsonRpcHttp(rpcUrl, 5_000)
  try {
    // It logs its servers as started before they accept connections (ECONNREFUSED for a moment
    // on a loaded machine): poll for up to 5 s.
    const deadline = performance.now() + 5_000
    for (;;) {
      try {
        await rpc.call('eth_chainId')
        break
      } catch (error) {
        if (performance.now() > deadline || el.exit() !== null) throw error
        await new Promise((r) => setTimeout(r, 100))
      }
    }
  } catch (cause) {
    await stop(0)
    throw new InfraError('ethereumjs started but its RPC port does not answer.', { context: { URL: rpcUrl, Log: logFile, 'Last output': el.output().slice(-1_500).trim() }, cause })
  } finally {
    rpc.close()
  }
  const exitInfo = () => {
    const exit = el.exit()
    return exit === null ? null : { code: exit.code, lastOutput: el.output().slice(-4_000) }
  }
  return { label: params.label, pid: el.pid, rpcUrl, engineUrl, logFile, stop, exitInfo }
}
