import { gunzipSync } from 'node:zlib'
import type { Address, Hex } from 'viem'
import { InputError } from '../errors.js'
import { onTeardown } from '../lifecycle.js'
import type { RpcProxy } from '../proxy/jsonrpc/proxy.js'
import { type AnvilInstance, startAnvil } from './anvil.js'
import { revertTo, snapshot } from './chain.js'
import type { Engine } from './engine.js'
import { type Rpc, RpcError } from './rpc.js'
import { type AddressBook, devAccounts, startUpstream, type Upstream } from './embedded.js'

/** How a fork target is made. */
export type ForkSource =
  /** The embedded reference chain (default), optionally with a guard-removed vault build. */
  | { kind: 'embedded'; vaultBuild?: string }
  /** A user's RPC URL at a pinned block. The URL is never printed with its credentials. */
  | { kind: 'url'; url: string; blockNumber?: bigint; retries?: number; timeoutMs?: number; computeUnitsPerSecond?: number }
  /** A state dump written by `anvil --dump-state`. */
  | { kind: 'state'; path: string }

export type Fork = {
  /** The fork's node: an Anvil process, or with `engine: hardhat` a Hardhat node of the same shape. */
  readonly anvil: AnvilInstance
  /** Which node `anvil` is (src/targets/engine.ts). */
  readonly engine: Engine
  readonly upstream: Upstream | undefined
  readonly source: ForkSource
  /** Contract names the target knows (the embedded chain's deployment); scenarios add theirs. */
  readonly book: Partial<AddressBook>
  readonly accounts: Record<string, Address>
  /** JSON-RPC fault proxies that belong to the target itself (e.g. `upstream`). */
  readonly proxies: Map<string, RpcProxy>
  /** Puts the fork back to its clean state and takes a new snapshot (Anvil's are single-use). */
  reset(): Promise<void>
  stop(): Promise<void>
}

/**
 * Boots a fork target: an Anvil process of ours that forks the source, with automine and
 * `--auto-impersonate` (any account can send, as on a fork of a real chain). A snapshot is
 * taken once booted; `reset` reverts to it. Everything is stopped on `stop`, and on error,
 * Ctrl-C and SIGTERM through the teardown registry. With `upstream` (the embedded source only)
 * the fork forks that running upstream chain instead of starting one, and leaves it running.
 */
export async function startFork(source: ForkSource, options: { logDir?: string; warm?: boolean; upstream?: Upstream } = {}): Promise<Fork> {
  const logDir = options.logDir ? { logDir: options.logDir } : {}
  // An upstream the caller started (another fork's, `search --workers`) is forked, not stopped.
  const own = !options.upstream
  let upstream: Upstream | undefined = options.upstream
  const undoUpstream = () => (own ? upstream?.instance.stop() : undefined)
  const unregisterUpstream = onTeardown('upstream chain', undoUpstream)
  try {
    if (source.kind === 'embedded' && !upstream) upstream = await startUpstream({ ...logDir, ...(source.vaultBuild ? { vaultBuild: source.vaultBuild } : {}) })
    const anvil = await startAnvil({
      label: 'fork',
      ...logDir,
      ...(source.kind === 'embedded' && upstream
        ? { forkUrl: upstream.instance.url, forkBlockNumber: upstream.headBlock }
        : source.kind === 'url'
          ? {
              forkUrl: source.url,
              ...(source.blockNumber !== undefined ? { forkBlockNumber: source.blockNumber } : {}),
              ...(source.retries !== undefined ? { forkRetries: source.retries } : {}),
              ...(source.timeoutMs !== undefined ? { forkTimeoutMs: source.timeoutMs } : {}),
              ...(source.computeUnitsPerSecond !== undefined ? { computeUnitsPerSecond: source.computeUnitsPerSecond } : {}),
              startTimeoutMs: 60_000,
            }
          : source.kind === 'state'
            ? { loadStatePath: source.path }
            : {}),
      extraArgs: ['--auto-impersonate'],
    })
    const unregisterFork = onTeardown('fork', () => anvil.stop())
    if (options.warm && upstream) await warmFromUpstream(anvil.rpc, upstream.instance.rpc)
    // Anvil's revert does not put back the next block's base fee (a scenario's spike, or the fee
    // its blocks left): the clean one is read now and written again after every revert.
    const baseFee = await nextBaseFee(anvil.rpc)
    let snap: Hex = await snapshot(anvil.rpc)
    const fork: Fork = {
      anvil,
      engine: 'anvil',
      upstream,
      source,
      book: upstream?.book ?? {},
      accounts: { ...devAccounts },
      proxies: new Map(),
      async reset() {
        await revertTo(anvil.rpc, snap)
        if (baseFee === undefined) snap = await snapshot(anvil.rpc)
        else {
          // One batch: a snapshot does not hold the base fee (above), so the two may run in either order.
          const [set, taken] = await anvil.rpc.batch([
            { method: 'anvil_setNextBlockBaseFeePerGas', params: [baseFee] },
            { method: 'evm_snapshot', params: [] },
          ])
          if (set instanceof RpcError) throw set
          if (taken instanceof RpcError) throw taken
          snap = taken as Hex
        }
      },
      async stop() {
        unregisterFork()
        unregisterUpstream()
        await anvil.stop()
        if (own) await upstream?.instance.stop()
      },
    }
    return fork
  } catch (error) {
    unregisterUpstream()
    await undoUpstream()
    throw error
  }
}

/**
 * The next block's base fee (the last of `eth_feeHistory`'s), as hex; undefined on a chain
 * without one (before London). Read at the fork's clean state: a reset writes it back
 * (`anvil_setNextBlockBaseFeePerGas`), since Anvil's `evm_revert` leaves the fee where the last
 * scenario's blocks or gas spike put it — the next scenario's transactions would pay that
 * (measured: 20 wei clean, 200 gwei after a reset that followed a 300 gwei spike and 3 blocks).
 */
export async function nextBaseFee(rpc: Rpc): Promise<Hex | undefined> {
  const history = await rpc.request<{ baseFeePerGas?: Hex[] }>('eth_feeHistory', ['0x1', 'latest', []])
  return history.baseFeePerGas?.at(-1)
}

/**
 * Fetches every account and non-zero storage slot the embedded upstream holds into the fork's
 * cache of upstream state, before the snapshot that `reset` reverts to. Anvil's snapshot holds
 * that cache too, so without this every reset drops what the last scenario fetched and the next
 * one fetches it again, one upstream round trip per account and slot (the first reads and the
 * first transaction after a reset took ~5 and ~8 ms instead of ~2 and ~3). The values are the
 * upstream's at the fork block, fetched sooner: nothing the fork answers changes. What the dump
 * does not hold still goes upstream after a reset: slots that are zero there, and Anvil's own
 * look-ups (a block by hash, a new transaction's receipt; 4 fetches in a reset fork's first cycle
 * here). Costs one
 * `anvil_dumpState` of the upstream and a few batches of reads (~0.1–0.3 s), so only callers that
 * reset many times ask for it (`search`).
 */
export async function warmFromUpstream(fork: Rpc, upstream: Rpc): Promise<{ accounts: number; slots: number }> {
  const dump = await upstream.request<Hex>('anvil_dumpState')
  const state = JSON.parse(gunzipSync(Buffer.from(dump.slice(2), 'hex')).toString('utf8')) as { accounts?: Record<string, { storage?: Record<string, string> }> }
  const calls: { method: string; params: unknown[] }[] = []
  let slots = 0
  for (const [address, account] of Object.entries(state.accounts ?? {})) {
    // The account's balance, nonce and code come from upstream in one fetch.
    calls.push({ method: 'eth_getCode', params: [address, 'latest'] })
    for (const slot of Object.keys(account.storage ?? {})) {
      calls.push({ method: 'eth_getStorageAt', params: [address, slot, 'latest'] })
      slots++
    }
  }
  // A few batches at once: the fork fetches each from upstream, concurrently across batches.
  const size = Math.max(1, Math.ceil(calls.length / 8))
  const batches: Promise<unknown[]>[] = []
  for (let i = 0; i < calls.length; i += size) batches.push(fork.batch(calls.slice(i, i + size)))
  for (const answers of await Promise.all(batches)) {
    const failed = answers.find((a) => a instanceof RpcError)
    if (failed) throw failed
  }
  return { accounts: Object.keys(state.accounts ?? {}).length, slots }
}

/**
 * The fork's source with its block pinned: `--fork-url` without `--fork-block` forks the
 * upstream's latest block, which moves on, so a replay, or another fork of the same chain, names
 * the block this fork was made at (an Anvil fork's own block number before anything is sent to
 * it: call this right after boot). Any other source is returned as it is.
 */
export async function pinnedSource(fork: Fork): Promise<ForkSource> {
  const source = fork.source
  if (source.kind !== 'url' || source.blockNumber !== undefined) return source
  return { ...source, blockNumber: BigInt(await fork.anvil.rpc.request<string>('eth_blockNumber')) }
}

/** The replay flags with `--fork-block` of `pinned` (from `pinnedSource`) when the fork's own source named no block. */
export function pinnedFlags(replayFlags: string, fork: Fork, pinned: ForkSource): string {
  return pinned !== fork.source && pinned.kind === 'url' ? `${replayFlags} --fork-block ${pinned.blockNumber}` : replayFlags
}

/** The replay flags with the fork's block pinned (`pinnedSource`). */
export async function pinForkBlock(replayFlags: string, fork: Fork): Promise<string> {
  return pinnedFlags(replayFlags, fork, await pinnedSource(fork))
}

/** Parses `--fork-block` (a decimal block number). */
export function parseBlockNumber(value: string, flag: string): bigint {
  if (!/^\d+$/.test(value)) throw new InputError(`\`${flag}\` must be a block number (decimal digits). Got \`${value}\`.`)
  return BigInt(value)
}
