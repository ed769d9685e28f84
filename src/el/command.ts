import * as fs from 'node:fs'
import * as path from 'node:path'
import { ForkchaosError, InfraError } from '../errors.js'
import { create as createProcess } from '../process/Instance.js'
import type { AnvilInstance } from '../targets/anvil.js'
import { createRpc } from '../targets/rpc.js'
import type { ClientKind } from '../topology/spawn.js'

/** How long each client may take to exit after SIGTERM before SIGKILL, in ms: ethereumjs takes ~10 s. */
export const EL_GRACE_MS: { readonly [c in ClientKind]: number } = { anvil: 2_000, ethereumjs: 15_000, reth: 10_000, other: 10_000 }
/** How long each client may take to start (its ready line, then an `eth_chainId` answer), in ms: 4 ethereumjs started together take 6–9 s here. */
export const EL_START_TIMEOUT_MS: { readonly [c in ClientKind]: number } = { anvil: 20_000, ethereumjs: 30_000, reth: 30_000, other: 30_000 }
/** After its ready line, how long the client's JSON-RPC may refuse before it counts as not started. */
const RPC_ANSWER_MS = 5_000

let counter = 0

/**
 * Starts one validator's execution client from its topology command, rendered (argv exactly
 * as given), under the process owner (own process group, pid file, start timeout, output ring).
 * Ready: Anvil at its "Listening on" line (its port, as `{enginePort}` 0 lets the kernel pick
 * it), ethereumjs at "Client started successfully", any other at spawn; then its JSON-RPC
 * (`http://127.0.0.1:<rpcPort>`, or Anvil's port) must answer `eth_chainId`. Returned in the
 * shape the devnet keeps for an Anvil, with the Engine API URL of a non-Anvil client.
 */
export async function startElCommand(p: {
  label: string
  client: ClientKind
  command: readonly string[]
  env: Record<string, string>
  logDir: string
  /** What /proc/<pid>/cmdline contains, for `forkchaos cleanup` (its data dir). */
  match: string
  rpcPort?: number
  enginePort?: number
}): Promise<{ anvil: AnvilInstance; engineUrl?: string; command: string[] }> {
  fs.mkdirSync(p.logDir, { recursive: true })
  const logFile = path.join(p.logDir, `${p.label}-${process.pid}-${++counter}.log`)
  const log = fs.openSync(logFile, 'a')
  const [command, ...args] = p.command as [string, ...string[]]
  const el = createProcess<number | true>({
    kind: p.client === 'anvil' ? 'anvil' : 'execution',
    label: p.label,
    command,
    args,
    match: p.match,
    ...(Object.keys(p.env).length ? { env: p.env } : {}),
    startTimeoutMs: EL_START_TIMEOUT_MS[p.client],
    graceMs: EL_GRACE_MS[p.client],
    logFile,
    onOutput: (chunk) => fs.writeSync(log, chunk),
    ...(p.client === 'anvil'
      ? { ready: (output: string) => { const m = /Listening on 127\.0\.0\.1:(\d+)/.exec(output); return m ? Number(m[1]) : undefined } }
      : p.client === 'ethereumjs'
        ? { ready: (output: string) => (/Client started successfully/.test(output) ? true : undefined) }
        : {}),
  })
  let stopping: Promise<void> | undefined
  const stop = (graceMs = EL_GRACE_MS[p.client]) =>
    (stopping ??= (async () => {
      await el.stop({ graceMs })
      fs.closeSync(log)
    })())
  let ready: number | true
  try {
    ready = await el.start()
  } catch (error) {
    await stop(0)
    if (!(error instanceof ForkchaosError)) throw error
    const output = el.output()
    throw new InfraError(`The execution client \`${p.label}\` did not start${/EADDRINUSE/.test(output) ? ' (EADDRINUSE: a port was taken)' : ''}.`, {
      context: { Command: p.command.join(' ').slice(0, 300), Reason: error.shortMessage, 'Last output': output.slice(-600).trim(), Log: logFile },
      cause: error,
    })
  }
  const port = typeof ready === 'number' ? ready : (p.rpcPort as number)
  const url = `http://127.0.0.1:${port}`
  const rpc = createRpc(url, { owned: false, timeoutMs: 2_000 })
  // Servers may log that they started before they accept connections: poll for a moment.
  const deadline = performance.now() + RPC_ANSWER_MS
  for (;;) {
    try {
      await rpc.request('eth_chainId')
      break
    } catch (cause) {
      if (performance.now() > deadline || el.exit() !== null) {
        await stop(0)
        throw new InfraError(`The execution client \`${p.label}\` started but its JSON-RPC does not answer.`, { context: { URL: url, Log: logFile, 'Last output': el.output().slice(-1_500).trim() }, cause })
      }
      await new Promise((r) => setTimeout(r, 100))
    }
  }
  const exitInfo = () => {
    const exit = el.exit()
    return exit === null ? null : { code: exit.code, lastOutput: el.output().slice(-4_000) }
  }
  return {
    anvil: { label: p.label, pid: el.pid, port, url, logFile, rpc: createRpc(url, { owned: p.client === 'anvil' }), stop, exitInfo },
    ...(p.client === 'anvil' ? {} : { engineUrl: `http://127.0.0.1:${p.enginePort as number}` }),
    command: [...p.command],
  }
}
