import * as fs from 'node:fs'
import { createRequire } from 'node:module'
import * as path from 'node:path'
import { ForkchaosError, InfraError } from '../errors.js'
import { create as createProcess } from '../process/Instance.js'
import { stateDir } from '../process/registry.js'
import { redactUrl, scrub, secretsOf } from '../util/redact.js'
import type { AnvilInstance } from './anvil.js'
import { createRpc, type Rpc, RpcError } from './rpc.js'

/** Flags for one Hardhat node. Units last in names; every limit has a default. */
export type HardhatParameters = {
  /** What the log file and errors call this instance. */
  label: string
  /** Fork this RPC URL (`--fork`): the embedded upstream chain, or a user's. */
  forkUrl: string
  /** Pin the fork to this block (`--fork-block-number`). */
  forkBlockNumber?: bigint
  /** The chain id the node answers and signs with: the upstream's, as an Anvil fork keeps it. */
  chainId: number
  /** How long to wait for "Started HTTP … server at" and a first RPC answer. Default 60 s (Node starts Hardhat, then EDR forks). */
  startTimeoutMs?: number
  /** Directory for the log file. Default `<state dir>/logs`. */
  logDir?: string
}

/**
 * The `hardhat` package's CLI entry, resolved from forkchaos's own dependencies (hardhat is a
 * devDependency: a user without it is told how to add it).
 */
export function hardhatEntry(): { bootstrap: string; nodeModules: string } {
  const require = createRequire(import.meta.url)
  try {
    const pkg = require.resolve('hardhat/package.json')
    return { bootstrap: path.join(path.dirname(pkg), 'internal', 'cli', 'bootstrap.js'), nodeModules: path.dirname(path.dirname(pkg)) }
  } catch (cause) {
    throw new InfraError('`target.engine: hardhat` needs the npm package `hardhat`, which is not installed.', {
      hint: 'Run `npm i -D hardhat@2` next to forkchaos, or use the default engine (anvil).',
      cause,
    })
  }
}

let counter = 0

/** The hardfork the Hardhat node runs (and assumes for the forked chain's history): Anvil's default's, Prague. */
const HARDFORK = 'prague'

/**
 * Starts a Hardhat node (EDR) on 127.0.0.1 with `--port 0` (Hardhat prints the port the kernel
 * chose) forking `forkUrl`, as a child of the process owner (its own group, a pid file, the
 * last output kept). Hardhat needs a project to run in: a config of a few lines is written into
 * a temporary directory, with a `node_modules` link to the one holding `hardhat` (Hardhat
 * refuses to run from an installation it cannot resolve from its config). The config sets what
 * makes the node behave as forkchaos's Anvil fork does: the upstream's chain id, failed
 * transactions mined with status 0 instead of thrown, and blocks allowed the same timestamp. One block is mined once it is up (see below).
 * The returned instance has Anvil's shape; its `rpc` speaks forkchaos's cheat methods in
 * Hardhat's dialect (`hardhatDialect`).
 */
export async function startHardhat(params: HardhatParameters): Promise<AnvilInstance> {
  const entry = hardhatEntry()
  const logDir = params.logDir ?? path.join(stateDir(), 'logs')
  fs.mkdirSync(logDir, { recursive: true })
  const project = fs.mkdtempSync(path.join(stateDir(), 'hardhat-'))
  fs.symlinkSync(entry.nodeModules, path.join(project, 'node_modules'), 'dir')
  const config = path.join(project, 'hardhat.config.cjs')
  const network = {
    chainId: params.chainId,
    hardfork: HARDFORK,
    throwOnTransactionFailures: false,
    throwOnCallFailures: true,
    allowBlocksWithSameTimestamp: true,
    loggingEnabled: false,
  }
  fs.writeFileSync(
    config,
    `// Written by forkchaos for one fork; removed when the node stops.\nmodule.exports = { paths: { sources: './none' }, networks: { hardhat: ${JSON.stringify(network)} } }\n`,
  )
  const args = [entry.bootstrap, '--config', config, 'node', '--hostname', '127.0.0.1', '--port', '0', '--fork', params.forkUrl]
  if (params.forkBlockNumber !== undefined) args.push('--fork-block-number', String(params.forkBlockNumber))
  const secrets = secretsOf(params.forkUrl)
  const logFile = path.join(logDir, `${params.label}-${process.pid}-${++counter}.log`)
  const log = fs.createWriteStream(logFile)
  const redact = (text: string) => scrub(text.replaceAll(params.forkUrl, redactUrl(params.forkUrl)), secrets)
  const node = createProcess<number>({
    kind: 'hardhat',
    label: params.label,
    command: process.execPath,
    args,
    match: entry.bootstrap,
    env: { HARDHAT_DISABLE_TELEMETRY_PROMPT: 'true', CI: 'true', NO_COLOR: '1' },
    startTimeoutMs: params.startTimeoutMs ?? 60_000,
    logFile,
    onOutput: (chunk) => log.write(redact(chunk.toString('utf8'))),
    redact,
    ready: (output) => {
      const match = /JSON-RPC server at http:\/\/127\.0\.0\.1:(\d+)/.exec(output)
      return match ? Number(match[1]) : undefined
    },
  })
  let stopping: Promise<void> | undefined
  const stop = (graceMs = 2_000) =>
    (stopping ??= (async () => {
      await node.stop({ graceMs })
      log.end()
      fs.rmSync(project, { recursive: true, force: true })
    })())

  let port: number
  try {
    port = await node.start()
  } catch (error) {
    await stop(0)
    if (!(error instanceof ForkchaosError)) throw error
    throw new InfraError(/was not ready within/.test(error.shortMessage) ? 'The Hardhat node did not report a listening port in time.' : 'The Hardhat node exited before it was ready.', {
      context: { Label: params.label, 'Fork URL': redactUrl(params.forkUrl), ...Object.fromEntries(Object.entries(error.context).filter(([k]) => k !== 'Process' && k !== 'Command')) },
      cause: error,
    })
  }
  const url = `http://127.0.0.1:${port}`
  const rpc = hardhatDialect(createRpc(url, { owned: true }))
  try {
    await rpc.request('eth_chainId')
  } catch (cause) {
    await stop(0)
    throw new InfraError('The Hardhat node is listening but does not answer JSON-RPC.', { context: { URL: url, Log: logFile }, cause })
  }
  // Hardhat runs a call in the fork block itself as a "historical" one, which it refuses for a
  // chain it has no hardfork history of (EDR issue #522: a `chains` history in the config did not
  // help for 31337 here); in a block of its own it uses its own hardfork. Anvil needs no such block.
  try {
    await rpc.request('hardhat_mine', ['0x1'])
  } catch (cause) {
    await stop(0)
    throw new InfraError('The Hardhat node refused to mine its first block.', { context: { URL: url, Log: logFile }, cause })
  }
  const exitInfo = () => {
    const exit = node.exit()
    return exit === null ? null : { code: exit.code, lastOutput: node.output().slice(-4_000) }
  }
  return { label: params.label, pid: node.pid, port, url, logFile, rpc, stop, exitInfo }
}

/** forkchaos's Anvil cheat methods under the names a Hardhat node serves them (same params). */
export const hardhatMethods: Readonly<Record<string, string>> = {
  anvil_setStorageAt: 'hardhat_setStorageAt',
  anvil_setCode: 'hardhat_setCode',
  anvil_setBalance: 'hardhat_setBalance',
  anvil_setNonce: 'hardhat_setNonce',
  anvil_impersonateAccount: 'hardhat_impersonateAccount',
  anvil_stopImpersonatingAccount: 'hardhat_stopImpersonatingAccount',
  // Both take (blocks, interval) as hex quantities.
  anvil_mine: 'hardhat_mine',
  anvil_setNextBlockBaseFeePerGas: 'hardhat_setNextBlockBaseFeePerGas',
  anvil_setCoinbase: 'hardhat_setCoinbase',
  anvil_setMinGasPrice: 'hardhat_setMinGasPrice',
  anvil_dropTransaction: 'hardhat_dropTransaction',
}

/**
 * An `Rpc` that speaks to a Hardhat node as if it were forkchaos's Anvil fork:
 * - `anvil_*` methods go out under their `hardhat_*` names (`hardhatMethods`); `evm_*` are shared;
 * - `eth_sendTransactionSync` is `eth_sendTransaction` then its receipt (automine has mined it);
 * - a sender is impersonated before its first transaction (Anvil runs with `--auto-impersonate`);
 * - `eth_createAccessList` (which slot discovery uses) is answered from `debug_traceCall`'s
 *   struct logs: every SLOAD's key, by the contract whose storage it read;
 * - `debug_traceTransaction` with `callTracer` (which Hardhat does not serve) is built from the
 *   struct logs: each call's frame, and whether it failed (`callFrames`);
 * - revert data comes back where Anvil puts it (`error.data`, a hex string), not nested.
 */
export function hardhatDialect(rpc: Rpc): Rpc {
  const impersonated = new Set<string>()
  const impersonate = async (from: unknown) => {
    if (typeof from !== 'string' || impersonated.has(from.toLowerCase())) return
    await rpc.request('hardhat_impersonateAccount', [from])
    impersonated.add(from.toLowerCase())
  }
  const name = (method: string) => hardhatMethods[method] ?? method
  const request = async <T>(method: string, params: readonly unknown[] = []): Promise<T> => {
    try {
      if (method === 'eth_sendTransactionSync' || method === 'eth_sendTransaction') {
        await impersonate((params[0] as { from?: unknown } | undefined)?.from)
        const hash = await rpc.request<string>('eth_sendTransaction', params)
        if (method === 'eth_sendTransaction') return hash as T
        return (await receiptOf(rpc, hash)) as T
      }
      if (method === 'eth_createAccessList') return (await accessList(rpc, params)) as T
      if (isCallTrace(method, params)) return (await callFrames(rpc, String(params[0]))) as T
      return await rpc.request<T>(name(method), params)
    } catch (error) {
      throw flatten(error)
    }
  }
  return {
    url: rpc.url,
    owned: rpc.owned,
    request,
    // A call the dialect answers itself (a send, an access list, a callTracer trace) goes through
    // `request`, each on its own, since the node would refuse it as sent; the rest stay one batch.
    async batch(calls) {
      const own = (c: { method: string; params?: readonly unknown[] }) => answeredByDialect(c.method, c.params)
      const plain = calls.filter((c) => !own(c))
      const [batched, answered] = await Promise.all([
        plain.length > 0 ? rpc.batch(plain.map((c) => ({ method: name(c.method), ...(c.params ? { params: c.params } : {}) }))) : Promise.resolve([]),
        Promise.all(calls.filter(own).map((c) => request(c.method, c.params ?? []).catch((error: unknown) => error))),
      ])
      let b = 0
      let a = 0
      return calls.map((c) => {
        if (own(c)) return answered[a++]
        const r = batched[b++]
        return r instanceof RpcError ? flatten(r) : r
      })
    },
  }
}

/** A `debug_traceTransaction` with `callTracer`, which the dialect builds from struct logs. */
function isCallTrace(method: string, params: readonly unknown[] | undefined): boolean {
  return method === 'debug_traceTransaction' && (params?.[1] as { tracer?: string } | undefined)?.tracer === 'callTracer'
}

/** The calls `hardhatDialect`'s `request` answers itself instead of passing them on (renamed or not). */
function answeredByDialect(method: string, params: readonly unknown[] | undefined): boolean {
  return method === 'eth_sendTransactionSync' || method === 'eth_sendTransaction' || method === 'eth_createAccessList' || isCallTrace(method, params)
}

/** At most this many receipt polls, 20 ms apart, after a send (automine mines in the send's own call). */
const RECEIPT_POLLS_MAX = 100

async function receiptOf(rpc: Rpc, hash: string): Promise<unknown> {
  for (let i = 0; i < RECEIPT_POLLS_MAX; i++) {
    const receipt = await rpc.request('eth_getTransactionReceipt', [hash])
    if (receipt) return receipt
    await new Promise((r) => setTimeout(r, 20))
  }
  throw new InfraError(`The Hardhat node accepted ${hash} but mined no receipt for it within ${(RECEIPT_POLLS_MAX * 20) / 1000} s.`, { hint: 'Automine is on in the fork; is a bundle step holding it off?' })
}

type StructLog = { op: string; depth: number; stack?: string[] }

const CALLS = new Set(['CALL', 'STATICCALL', 'DELEGATECALL', 'CALLCODE', 'CREATE', 'CREATE2'])

/**
 * An access list from a struct-log trace. The storage a step reads is that of the contract whose
 * code runs, except under DELEGATECALL / CALLCODE, which keep the caller's: the context is a
 * stack that a CALL or STATICCALL pushes the callee's address onto when the depth grows.
 */
async function accessList(rpc: Rpc, params: readonly unknown[]): Promise<{ accessList: { address: string; storageKeys: string[] }[] }> {
  const tx = params[0] as { to: string }
  const trace = await rpc.request<{ structLogs: StructLog[] }>('debug_traceCall', [tx, params[1] ?? 'latest', { disableMemory: true, disableStorage: true }])
  const word = (s: string | undefined) => `0x${(s ?? '0').replace(/^0x/, '').padStart(64, '0')}`
  const contexts = [tx.to.toLowerCase()]
  let next: string | undefined
  const keys = new Map<string, Set<string>>()
  for (const step of trace.structLogs) {
    while (contexts.length > step.depth) contexts.pop()
    if (step.depth > contexts.length) contexts.push(next ?? (contexts.at(-1) as string))
    const stack = step.stack ?? []
    const here = contexts.at(-1) as string
    if (step.op === 'CALL' || step.op === 'STATICCALL') next = `0x${word(stack.at(-2)).slice(-40)}`
    else if (step.op === 'DELEGATECALL' || step.op === 'CALLCODE') next = here
    else if (step.op === 'SLOAD') {
      const set = keys.get(here) ?? new Set<string>()
      set.add(word(stack.at(-1)))
      keys.set(here, set)
    }
  }
  return { accessList: [...keys].map(([address, set]) => ({ address, storageKeys: [...set] })) }
}

type Frame = { type: string; to?: string; error?: string; revertReason?: string; calls: Frame[] }

/**
 * A callTracer-shaped frame tree from a struct-log trace: enough for what forkchaos reads of it
 * (which inner calls failed, the top call's revert reason); no calldata, gas or values. A call
 * op's outcome is the word it leaves on the caller's stack (0: failed), read at the caller's
 * next step, so a call into code that runs no step (an account without code) is judged too.
 */
async function callFrames(rpc: Rpc, hash: string): Promise<Frame> {
  const [tx, trace] = await Promise.all([
    rpc.request<{ to: string | null }>('eth_getTransactionByHash', [hash]),
    rpc.request<{ failed: boolean; returnValue: string; structLogs: StructLog[] }>('debug_traceTransaction', [hash, { disableMemory: true, disableStorage: true }]),
  ])
  const root: Frame = { type: 'CALL', ...(tx.to ? { to: tx.to } : {}), calls: [] }
  const open: Frame[] = [root]
  const pending = new Map<number, Frame>()
  const word = (s: string | undefined) => (s ?? '0').replace(/^0x/, '').padStart(64, '0')
  for (const step of trace.structLogs) {
    while (open.length > step.depth) open.pop()
    const waiting = pending.get(step.depth)
    const stack = step.stack ?? []
    if (waiting && open.length === step.depth) {
      // Back in the caller: the call op's result is on top of its stack.
      if (/^0*$/.test(word(stack.at(-1)))) waiting.error = 'execution reverted'
      pending.delete(step.depth)
    }
    if (step.depth > open.length) open.push(pending.get(step.depth - 1) ?? { type: 'CALL', calls: [] })
    if (CALLS.has(step.op)) {
      const frame: Frame = { type: step.op, ...(step.op.startsWith('CREATE') ? {} : { to: `0x${word(stack.at(-2)).slice(-40)}` }), calls: [] }
      open.at(-1)?.calls.push(frame)
      pending.set(step.depth, frame)
    }
  }
  if (trace.failed) {
    root.error = 'execution reverted'
    const data = `0x${trace.returnValue.replace(/^0x/, '')}`
    if (data.startsWith('0x08c379a0') && data.length >= 138) root.revertReason = Buffer.from(data.slice(138, 138 + Number(BigInt(`0x${data.slice(74, 138)}`)) * 2), 'hex').toString('utf8')
  }
  return root
}

/** Hardhat nests revert data (`error.data.data`); forkchaos reads it at `error.data`, as Anvil sends it. */
function flatten(error: unknown): unknown {
  if (!(error instanceof RpcError)) return error
  const inner = error.data as { data?: unknown } | null | undefined
  if (inner && typeof inner === 'object' && 'data' in inner) {
    const data = typeof inner.data === 'string' ? inner.data : undefined
    return new RpcError(error.method, { code: error.code, message: error.message.replace(/ \(code -?\d+\)$/, '').replace(/^[^:]+: /, ''), ...(data ? { data } : {}) })
  }
  return error
}
