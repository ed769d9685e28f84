import { createHmac } from 'node:crypto'
import type { ExecutionPayloadJson } from '../../chain/payload.js'
import { InfraError, InputError } from '../../errors.js'
import type { BuildParams, BuiltPayload, ExecutionEngine, Head, NewPayloadOptions, PayloadStatus } from './execution.js'
import { JsonRpcHttp, toQuantity } from './execution.js'
import type { ExecutionEnvelope, Hex, Payload, PayloadField } from './types.js'

/**
 * The `ExecutionEngine` over a real execution client's Engine API (ethereumjs, Reth, Geth, …)
 * on its authenticated port, used for every execution client that is not Anvil:
 *
 * - `engine_exchangeCapabilities` once at connect picks the versions: V4 `newPayload` /
 *   `getPayload` (with `executionRequests`, Prague) when the client has them, else V3;
 *   `forkchoiceUpdatedV3` either way (Prague refuses V3 `newPayload`).
 * - A build is `forkchoiceUpdated(head, attributes)` (timestamp, fee recipient, zero
 *   `prevRandao` and `parentBeaconBlockRoot`, no withdrawals) → `getPayload`, then the proposer
 *   sends its own block to `newPayload` too: a client that was never given its built block
 *   answers the next `forkchoiceUpdated` SYNCING (and, within a few blocks, every node stalled).
 * - Validation is `newPayload`; only `forkchoiceUpdated` (without attributes) to a committed
 *   block makes it the head, and it is also safe and final (BFT finality).
 * - Every request on the engine port carries a fresh HS256 JWT (`iat` = now), signed with the
 *   shared 32-byte secret (clients refuse an `iat` more than 60 s off). Transactions go to the
 *   client's pool and blocks are read over its plain JSON-RPC port (`rpcUrl`, no JWT).
 *
 * The consensus `Payload` is cut to what validators compare; `newPayload` needs the whole
 * execution payload, so a built payload carries it as `execution` (the `ExecutionEnvelope`:
 * the payload without its transactions, which `Payload.transactions` already holds, plus the
 * requests and the version). A peer gets it inside the proposal; the block hash commits to all
 * of it, so a tampered envelope is a block the client refuses.
 *
 * The client keeps its own chain, and `forkchoiceUpdated` to an ancestor does not rewind it:
 * `rollbackTo` below the client's head is refused, and a node must reconcile its store with the
 * client's chain instead (see `reconcile` in node.ts).
 */
export type EngineApiOptions = {
  /** The authenticated Engine API URL (ethereumjs `--rpcEnginePort`, Reth 8551), maybe via a proxy. */
  url: string
  /** The client's plain JSON-RPC URL (eth_*). Default `url` (a client that serves both on one port). */
  rpcUrl?: string
  /** The JWT secret: 32 bytes as hex (the content of `jwt.hex`), with or without 0x. */
  jwtSecretHex: string
  /** Per-call timeout. Default 10 s. */
  timeoutMs?: number
  /** The clock, in ms (a test seam). */
  nowMs?: () => number
}

const zero32 = `0x${'00'.repeat(32)}` as Hex

/** Engine API methods this engine can use, in preference order within each kind. */
const wanted = ['engine_newPayloadV4', 'engine_newPayloadV3', 'engine_getPayloadV4', 'engine_getPayloadV3', 'engine_forkchoiceUpdatedV3'] as const

/** An Engine API JWT: HS256 over `{"iat": <seconds>}`. */
export function createJwt(secretHex: string, iatS: number): string {
  const secret = secretBytes(secretHex)
  const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')
  const signingInput = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ iat: iatS })}`
  const signature = createHmac('sha256', secret).update(signingInput).digest('base64url')
  return `${signingInput}.${signature}`
}

function secretBytes(secretHex: string): Buffer {
  const hex = secretHex.trim().replace(/^0x/, '')
  if (!/^[0-9a-fA-F]{64}$/.test(hex))
    throw new InputError('The Engine API JWT secret must be 32 bytes of hex.', { context: { Length: hex.length } })
  return Buffer.from(hex, 'hex')
}

/** The Engine API's `ExecutionPayloadV3`, as JSON, as a client answers it (every Shanghai/Cancun field present). */
export type ExecutionPayloadV3 = Required<ExecutionPayloadJson>

/** What the client answered a `newPayload` (status, `latestValidHash`, `validationError`), for reports. */
export type EngineVerdict = { method: string; status: string; latestValidHash: Hex | null; validationError: string | null }

/** The Engine API versions in use: 3 or 4 for `newPayload` / `getPayload`. */
export type EngineVersions = { newPayload: 3 | 4; getPayload: 3 | 4 }

export class EngineApiEngine implements ExecutionEngine {
  /** The engine port (JWT). `rpc` is what node.ts counts calls on. */
  readonly rpc: JsonRpcHttp
  /** The plain JSON-RPC port. */
  readonly eth: JsonRpcHttp
  readonly versions: EngineVersions
  readonly #secret: string
  readonly #nowMs: () => number
  #head: Head
  /** Full envelopes of blocks built or validated here (by block hash), until they are below the head. */
  readonly #envelopes = new Map<Hex, { envelope: ExecutionPayloadV3; requests: Hex[] }>()
  #pending: Hex | null = null
  /** The client's last answers to `newPayload`, newest last (at most 64). */
  readonly verdicts: (EngineVerdict & { blockHash: Hex; number: number })[] = []

  private constructor(rpc: JsonRpcHttp, eth: JsonRpcHttp, secret: string, nowMs: () => number, versions: EngineVersions) {
    this.rpc = rpc
    this.eth = eth
    this.#secret = secret
    this.#nowMs = nowMs
    this.versions = versions
    this.#head = { number: 0, hash: zero32, timestampS: 0 }
  }

  static async connect(options: EngineApiOptions): Promise<EngineApiEngine> {
    secretBytes(options.jwtSecretHex)
    const timeoutMs = options.timeoutMs ?? 10_000
    const rpc = new JsonRpcHttp(options.url, timeoutMs)
    const eth = options.rpcUrl && options.rpcUrl !== options.url ? new JsonRpcHttp(options.rpcUrl, timeoutMs) : rpc
    const nowMs = options.nowMs ?? Date.now
    const token = () => ({ authorization: `Bearer ${createJwt(options.jwtSecretHex, Math.floor(nowMs() / 1_000))}` })
    let has: Set<string>
    try {
      has = new Set(await rpc.call<string[]>('engine_exchangeCapabilities', [[...wanted]], token()))
    } catch (error) {
      rpc.close()
      if (eth !== rpc) eth.close()
      throw new InfraError('The execution client refused engine_exchangeCapabilities.', {
        context: { 'Engine URL': options.url, Reason: (error as Error).message.split('\n')[0] },
        hint: 'Check the engine port and that both sides read the same JWT secret file.',
        cause: error,
      })
    }
    // A client that answers null (or an older list) gets V3 throughout.
    const versions: EngineVersions = {
      newPayload: has.has('engine_newPayloadV4') ? 4 : 3,
      getPayload: has.has('engine_getPayloadV4') ? 4 : 3,
    }
    const engine = new EngineApiEngine(rpc, eth, options.jwtSecretHex, nowMs, versions)
    engine.#head = await engine.#readHead('latest')
    return engine
  }

  head(): Head {
    return this.#head
  }

  /** The client's own head (its `latest`), which may be ahead of `head()` after a restart. */
  clientHead(): Promise<Head> {
    return this.#readHead('latest')
  }

  /** The hash of the client's canonical block `n`, or null when it has none. */
  async blockHashAt(n: number): Promise<Hex | null> {
    const block = await this.#ethCall<{ hash: Hex } | null>('eth_getBlockByNumber', [toQuantity(n), false])
    return block ? (block.hash.toLowerCase() as Hex) : null
  }

  /** The hash of the block built or validated last and not yet committed. */
  pendingHash(): Hex | null {
    return this.#pending
  }

  /**
   * Sets the head the consensus node works from to block `n` of the client's chain (at most the
   * client's head). It never rewinds the client: a block above `n` stays in its chain, and
   * committing the same block again is `newPayload` VALID + a no-op `forkchoiceUpdated`.
   */
  async rollbackTo(n: number): Promise<void> {
    this.#head = await this.#readHead(toQuantity(n))
    this.#pending = null
  }

  async buildPayload(params: BuildParams): Promise<BuiltPayload> {
    if (params.parent !== this.#head.hash)
      throw new InfraError('buildPayload: the parent is not the head.', { context: { Parent: params.parent, Head: this.#head.hash } })
    const rejected: BuiltPayload['rejected'] = []
    // The client builds from its own pool: hand it the transactions first (plain port).
    for (const tx of params.txs) {
      try {
        await this.#ethCall('eth_sendRawTransaction', [tx])
      } catch (error) {
        const message = (error as Error).message
        // Already in its pool (sent for an earlier round): not a refusal.
        if (!/already|known/i.test(message)) rejected.push({ tx, reason: message })
      }
    }
    const updated = await this.#call<{ payloadStatus: { status: string; validationError?: string | null }; payloadId: Hex | null }>('engine_forkchoiceUpdatedV3', [
      forkchoiceState(params.parent),
      { timestamp: toQuantity(params.timestampS), prevRandao: zero32, suggestedFeeRecipient: params.feeRecipient, withdrawals: [], parentBeaconBlockRoot: zero32 },
    ])
    if (updated.payloadStatus.status !== 'VALID' || !updated.payloadId)
      throw new InfraError('engine_forkchoiceUpdatedV3 did not start a payload.', {
        context: { Status: updated.payloadStatus.status, Error: updated.payloadStatus.validationError ?? undefined },
      })
    const method = `engine_getPayloadV${this.versions.getPayload}`
    const got = await this.#call<{ executionPayload: ExecutionPayloadV3; executionRequests?: Hex[] }>(method, [updated.payloadId])
    const requests = (got.executionRequests ?? []).map((r) => r.toLowerCase() as Hex)
    const payload = toPayload(got.executionPayload, requests, this.versions.newPayload)
    // The proposer's own block goes through newPayload before anything else (see above).
    const status = await this.newPayload(payload)
    if (status.status !== 'VALID')
      throw new InfraError('The execution client refused the block it built.', { context: { Hash: payload.blockHash, Reason: status.reason } })
    return { ...payload, rejected }
  }

  async newPayload(payload: Payload, options: NewPayloadOptions = {}): Promise<PayloadStatus> {
    void options // the client compares every field itself; none can be ignored
    // What came with the payload is what is judged; an envelope kept here only stands in for a payload without one.
    const full = payload.execution
      ? { envelope: fromEnvelope(payload.execution, payload.transactions), requests: payload.execution.executionRequests }
      : (this.#envelopes.get(payload.blockHash) ?? null)
    if (!full) return invalid('blockHash', 'no execution payload came with this block (a proposal for the Engine API must carry `execution`)')
    // The consensus fields must be what the execution payload says: the client checks the payload, votes name these.
    const mine = toPayload(full.envelope, full.requests, this.versions.newPayload)
    for (const field of ['number', 'parentHash', 'timestampS', 'feeRecipient', 'stateRoot', 'receiptsRoot', 'blockHash'] as const)
      if (mine[field] !== payload[field])
        // The fee recipient has no field of its own in a rejection: the block hash commits to it.
        return invalid(field === 'timestampS' ? 'timestamp' : field === 'feeRecipient' ? 'blockHash' : field, `${field} differs from the execution payload`)
    if (mine.transactions.length !== payload.transactions.length || mine.transactions.some((t, i) => t !== payload.transactions[i]))
      return invalid('transactions', 'transactions differ from the execution payload')
    const v = this.versions.newPayload
    const method = `engine_newPayloadV${v}`
    const params = v === 4 ? [full.envelope, [], zero32, full.requests] : [full.envelope, [], zero32]
    const answer = await this.#call<{ status: string; latestValidHash?: Hex | null; validationError?: string | null }>(method, params)
    const verdict: EngineVerdict = { method, status: answer.status, latestValidHash: answer.latestValidHash?.toLowerCase() as Hex ?? null, validationError: answer.validationError ?? null }
    this.verdicts.push({ ...verdict, blockHash: payload.blockHash, number: payload.number })
    if (this.verdicts.length > 64) this.verdicts.shift()
    if (answer.status === 'VALID') {
      this.#envelopes.set(payload.blockHash, full)
      this.#pending = payload.blockHash
      return { status: 'VALID' }
    }
    if (answer.status === 'INVALID' || answer.status === 'INVALID_BLOCK_HASH')
      return { ...invalid('blockHash', `${method}: ${answer.status}${answer.validationError ? `: ${answer.validationError}` : ''}`), engine: verdict }
    // SYNCING / ACCEPTED: the client cannot judge it now (an unknown parent); neither valid nor invalid.
    throw new EngineNotReadyError(method, answer.status)
  }

  async forkchoiceUpdated(blockHash: Hex): Promise<void> {
    const updated = await this.#call<{ payloadStatus: { status: string; validationError?: string | null } }>('engine_forkchoiceUpdatedV3', [forkchoiceState(blockHash), null])
    if (updated.payloadStatus.status !== 'VALID')
      throw new InfraError('engine_forkchoiceUpdatedV3 refused the head.', {
        context: { Hash: blockHash, Status: updated.payloadStatus.status, Error: updated.payloadStatus.validationError ?? undefined },
      })
    const known = this.#envelopes.get(blockHash)
    this.#head = known
      ? { number: Number(known.envelope.blockNumber), hash: blockHash, timestampS: Number(known.envelope.timestamp) }
      : await this.#readHead('latest')
    this.#pending = null
    for (const [hash, e] of this.#envelopes) if (Number(e.envelope.blockNumber) <= this.#head.number) this.#envelopes.delete(hash)
  }

  async abandon(): Promise<void> {
    // A built or validated payload is not canonical until forkchoiceUpdated: nothing to undo.
    this.#pending = null
  }

  close() {
    this.rpc.close()
    if (this.eth !== this.rpc) this.eth.close()
  }

  async #readHead(tag: string): Promise<Head> {
    const block = await this.#ethCall<{ number: Hex; hash: Hex; timestamp: Hex } | null>('eth_getBlockByNumber', [tag, false])
    if (!block) throw new InfraError('The execution client has no such block.', { context: { Block: tag } })
    return { number: Number(block.number), hash: block.hash.toLowerCase() as Hex, timestampS: Number(block.timestamp) }
  }

  /** eth_* on the plain port; with a JWT when the client serves them on its engine port only. */
  #ethCall<T>(method: string, params: readonly unknown[]): Promise<T> {
    return this.eth === this.rpc ? this.#call<T>(method, params) : this.eth.call<T>(method, params)
  }

  #call<T>(method: string, params: readonly unknown[]): Promise<T> {
    const token = createJwt(this.#secret, Math.floor(this.#nowMs() / 1_000))
    return this.rpc.call<T>(method, params, { authorization: `Bearer ${token}` })
  }
}

/** The earlier name: the Engine API engine first written for Reth. */
export const RethEngine = EngineApiEngine
export type RethEngineOptions = EngineApiOptions

/** The client answered SYNCING or ACCEPTED: it could not judge the block now (retry, or sync). */
export class EngineNotReadyError extends InfraError {
  override name = 'EngineNotReadyError'
  constructor(
    readonly method: string,
    readonly status: string,
  ) {
    super(`${method} answered ${status}: the execution client cannot validate this block yet.`, { context: { Status: status } })
  }
}

function forkchoiceState(hash: Hex) {
  // A BFT-finalized head is also safe and final.
  return { headBlockHash: hash, safeBlockHash: hash, finalizedBlockHash: hash }
}

function invalid(field: PayloadField, reason: string): Extract<PayloadStatus, { status: 'INVALID' }> {
  return { status: 'INVALID', field, mismatched: [field], reason }
}

const lower = (h: string) => h.toLowerCase() as Hex

/** A consensus payload (with its envelope) from the client's execution payload. */
export function toPayload(e: ExecutionPayloadV3, requests: readonly Hex[], version: 3 | 4): Payload {
  const { transactions, ...rest } = e
  const execution: ExecutionEnvelope = { version, payload: Object.fromEntries(Object.entries(rest).map(([k, v]) => [k, typeof v === 'string' ? lower(v) : v])) as ExecutionEnvelope['payload'], executionRequests: [...requests] }
  return {
    number: Number(e.blockNumber),
    parentHash: lower(e.parentHash),
    timestampS: Number(e.timestamp),
    feeRecipient: lower(e.feeRecipient),
    transactions: transactions.map(lower),
    blockHash: lower(e.blockHash),
    stateRoot: lower(e.stateRoot),
    receiptsRoot: lower(e.receiptsRoot),
    execution,
  }
}

/** The client's execution payload back from an envelope and the block's transactions. */
export function fromEnvelope(x: ExecutionEnvelope, transactions: readonly Hex[]): ExecutionPayloadV3 {
  return { ...(x.payload as Omit<ExecutionPayloadV3, 'transactions'>), transactions: [...transactions] }
}
