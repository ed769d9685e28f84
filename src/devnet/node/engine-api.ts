import { createHmac } from 'node:crypto'
import { InfraError, InputError } from '../../errors.js'
import type { BuiltPayload, ExecutionEngine, Head, NewPayloadOptions, PayloadStatus } from './execution.js'
import { JsonRpcHttp, toQuantity } from './execution.js'
import type { Hex, Payload } from './types.js'

/**
 * The same `ExecutionEngine` over a real execution client's Engine API (Reth, Geth, …) on its
 * authenticated port: `engine_forkchoiceUpdatedV3` with payload attributes starts a build,
 * `engine_getPayloadV3` fetches it, `engine_newPayloadV3` validates one, and
 * `engine_forkchoiceUpdatedV3` without attributes makes one the head. Every request carries a
 * fresh HS256 JWT (`iat` = now) signed with the shared 32-byte secret, per the Engine API's
 * authentication section (the client refuses an `iat` more than 60 s off its clock).
 *
 * Not exercised against a real client here (no Reth in this environment); its JWT and
 * request shapes are tested against a local HTTP server. Known gap: `newPayload` needs the
 * full `ExecutionPayloadV3` (gas used, logs bloom, base fee…), which the consensus `Payload`
 * does not carry; this engine keeps the full envelopes it built or was given through
 * `rememberExecutionPayload`, and refuses a payload it has no envelope for.
 */
export type RethEngineOptions = {
  /** The authenticated Engine API URL (usually port 8551). */
  url: string
  /** The JWT secret: 32 bytes as hex (the content of `jwt.hex`), with or without 0x. */
  jwtSecretHex: string
  /** Per-call timeout. Default 10 s. */
  timeoutMs?: number
  /** The clock, in ms (a test seam). */
  nowMs?: () => number
}

const zero32 = `0x${'00'.repeat(32)}` as Hex

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

/** The Engine API's `ExecutionPayloadV3`, as JSON. */
export type ExecutionPayloadV3 = {
  parentHash: Hex
  feeRecipient: Hex
  stateRoot: Hex
  receiptsRoot: Hex
  logsBloom: Hex
  prevRandao: Hex
  blockNumber: Hex
  gasLimit: Hex
  gasUsed: Hex
  timestamp: Hex
  extraData: Hex
  baseFeePerGas: Hex
  blockHash: Hex
  transactions: Hex[]
  withdrawals: unknown[]
  blobGasUsed: Hex
  excessBlobGas: Hex
}

export class RethEngine implements ExecutionEngine {
  readonly #rpc: JsonRpcHttp
  readonly #secret: string
  readonly #nowMs: () => number
  #head: Head
  readonly #envelopes = new Map<Hex, ExecutionPayloadV3>()

  private constructor(rpc: JsonRpcHttp, secret: string, nowMs: () => number, head: Head) {
    this.#rpc = rpc
    this.#secret = secret
    this.#nowMs = nowMs
    this.#head = head
  }

  static async connect(options: RethEngineOptions): Promise<RethEngine> {
    secretBytes(options.jwtSecretHex)
    const rpc = new JsonRpcHttp(options.url, options.timeoutMs ?? 10_000)
    const nowMs = options.nowMs ?? Date.now
    const engine = new RethEngine(rpc, options.jwtSecretHex, nowMs, { number: 0, hash: zero32, timestampS: 0 })
    const block = await engine.#call<{ number: Hex; hash: Hex; timestamp: Hex }>('eth_getBlockByNumber', ['latest', false])
    engine.#head = { number: Number(block.number), hash: block.hash.toLowerCase() as Hex, timestampS: Number(block.timestamp) }
    return engine
  }

  head(): Head {
    return this.#head
  }

  /** Keeps a full envelope (e.g. received from a peer) so `newPayload` can send it. */
  rememberExecutionPayload(envelope: ExecutionPayloadV3) {
    this.#envelopes.set(envelope.blockHash.toLowerCase() as Hex, envelope)
  }

  async buildPayload(params: { parent: Hex; timestampS: number; feeRecipient: Hex; txs: readonly Hex[] }): Promise<BuiltPayload> {
    const rejected: BuiltPayload['rejected'] = []
    // The client builds from its own pool: hand it the transactions first.
    for (const tx of params.txs) {
      try {
        await this.#call('eth_sendRawTransaction', [tx])
      } catch (error) {
        rejected.push({ tx, reason: (error as Error).message })
      }
    }
    const updated = await this.#call<{ payloadStatus: { status: string; validationError?: string | null }; payloadId: Hex | null }>(
      'engine_forkchoiceUpdatedV3',
      [
        forkchoiceState(params.parent),
        {
          timestamp: toQuantity(params.timestampS),
          prevRandao: zero32,
          suggestedFeeRecipient: params.feeRecipient,
          withdrawals: [],
          parentBeaconBlockRoot: zero32,
        },
      ],
    )
    if (updated.payloadStatus.status !== 'VALID' || !updated.payloadId)
      throw new InfraError('engine_forkchoiceUpdatedV3 did not start a payload.', {
        context: { Status: updated.payloadStatus.status, Error: updated.payloadStatus.validationError ?? undefined },
      })
    const got = await this.#call<{ executionPayload: ExecutionPayloadV3 }>('engine_getPayloadV3', [updated.payloadId])
    this.rememberExecutionPayload(got.executionPayload)
    return { ...toPayload(got.executionPayload), rejected }
  }

  async newPayload(payload: Payload, options: NewPayloadOptions = {}): Promise<PayloadStatus> {
    void options // the client compares every field itself; nothing can be ignored
    const envelope = this.#envelopes.get(payload.blockHash)
    if (!envelope)
      return {
        status: 'INVALID',
        field: 'blockHash',
        mismatched: ['blockHash'],
        reason: 'no ExecutionPayloadV3 envelope is known for this block hash',
      }
    const mine = toPayload(envelope)
    const claimed = ['number', 'parentHash', 'stateRoot', 'receiptsRoot'] as const
    for (const field of claimed)
      if (mine[field] !== payload[field])
        return { status: 'INVALID', field, mismatched: [field], reason: `${field} differs from the envelope` }
    const status = await this.#call<{ status: string; validationError?: string | null }>('engine_newPayloadV3', [
      envelope,
      [],
      zero32,
    ])
    if (status.status === 'VALID') return { status: 'VALID' }
    return {
      status: 'INVALID',
      field: 'blockHash',
      mismatched: ['blockHash'],
      reason: `engine_newPayloadV3: ${status.status}${status.validationError ? `: ${status.validationError}` : ''}`,
    }
  }

  async forkchoiceUpdated(blockHash: Hex): Promise<void> {
    const updated = await this.#call<{ payloadStatus: { status: string } }>('engine_forkchoiceUpdatedV3', [forkchoiceState(blockHash), null])
    if (updated.payloadStatus.status !== 'VALID')
      throw new InfraError('engine_forkchoiceUpdatedV3 refused the head.', { context: { Hash: blockHash, Status: updated.payloadStatus.status } })
    const envelope = this.#envelopes.get(blockHash)
    if (envelope) this.#head = { number: Number(envelope.blockNumber), hash: blockHash, timestampS: Number(envelope.timestamp) }
    for (const [hash, e] of this.#envelopes) if (Number(e.blockNumber) <= this.#head.number) this.#envelopes.delete(hash)
  }

  async abandon(): Promise<void> {
    // A built or validated payload is not canonical until forkchoiceUpdated: nothing to undo.
  }

  close() {
    this.#rpc.close()
  }

  #call<T>(method: string, params: readonly unknown[]): Promise<T> {
    const token = createJwt(this.#secret, Math.floor(this.#nowMs() / 1_000))
    return this.#rpc.call<T>(method, params, { authorization: `Bearer ${token}` })
  }
}

function forkchoiceState(hash: Hex) {
  // A BFT-finalized head is also safe and final.
  return { headBlockHash: hash, safeBlockHash: hash, finalizedBlockHash: hash }
}

function toPayload(e: ExecutionPayloadV3): Payload {
  return {
    number: Number(e.blockNumber),
    parentHash: e.parentHash.toLowerCase() as Hex,
    timestampS: Number(e.timestamp),
    feeRecipient: e.feeRecipient.toLowerCase() as Hex,
    transactions: e.transactions.map((t) => t.toLowerCase() as Hex),
    blockHash: e.blockHash.toLowerCase() as Hex,
    stateRoot: e.stateRoot.toLowerCase() as Hex,
    receiptsRoot: e.receiptsRoot.toLowerCase() as Hex,
  }
}
