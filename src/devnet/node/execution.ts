import * as http from 'node:http'
import * as https from 'node:https'
import { InfraError } from '../../errors.js'
import { redactUrl } from '../../util/redact.js'
import { txHashOf } from './crypto.js'
import type { Hex, Payload, PayloadField } from './types.js'

/**
 * The execution layer, shaped like the Engine API: a payload is built (or re-executed) on top
 * of the head without becoming the head, and only `forkchoiceUpdated` makes it canonical. At
 * most one uncommitted payload exists at a time; building or validating another drops it.
 */
export interface ExecutionEngine {
  /** The committed head (cached; updated by `forkchoiceUpdated`). */
  head(): Head
  /**
   * Executes `txs` on top of `parent` (which must be the head) and returns the block it made.
   * `budgetMs`: stop adding transactions once this long has gone by (the rest stay pending; the
   * first 4 always go in), so a slow execution layer makes smaller blocks rather than late ones.
   * Default: no limit.
   */
  buildPayload(params: BuildParams): Promise<BuiltPayload>
  /**
   * Re-executes `payload` on top of the head and compares every field with what execution
   * produced (except `ignore`d ones). VALID leaves it pending, to be committed; INVALID drops it.
   */
  newPayload(payload: Payload, options?: NewPayloadOptions): Promise<PayloadStatus>
  /** Makes the pending payload with this hash the head. */
  forkchoiceUpdated(blockHash: Hex): Promise<void>
  /** Drops anything uncommitted. */
  abandon(): Promise<void>
}

export type NewPayloadOptions = {
  /**
   * Fields not compared. A certified block is committed with `['stateRoot', 'receiptsRoot']`:
   * its block hash already binds the real roots; `unsafe.skipStateRootCheck` uses `['stateRoot']`.
   */
  ignore?: readonly PayloadField[]
}

export type Head = { number: number; hash: Hex; timestampS: number }

/** Transactions a build takes whatever its budget. */
const minTxsPerBuild = 4

export type BuildParams = { parent: Hex; timestampS: number; feeRecipient: Hex; txs: readonly Hex[]; budgetMs?: number }

export type BuiltPayload = Payload & {
  /** Transactions execution refused (bad nonce, no funds, …): left out of the block. */
  rejected: { tx: Hex; reason: string }[]
}

export type PayloadStatus =
  | { status: 'VALID' }
  | {
      status: 'INVALID'
      reason: string
      /** The first field that differs, in `PayloadField` order. */
      field: PayloadField
      /** Every field that differs. */
      mismatched: PayloadField[]
      /** An Engine API client's own answer (status, latestValidHash, validationError), when it gave one. */
      engine?: { method: string; status: string; latestValidHash: Hex | null; validationError: string | null }
    }

/** Fields in the order they are compared: cheap consensus facts first, the block hash last. */
export const payloadFields: readonly PayloadField[] = [
  'number',
  'parentHash',
  'timestamp',
  'transactions',
  'stateRoot',
  'receiptsRoot',
  'blockHash',
]

export type AnvilEngineOptions = {
  /** The Anvil's JSON-RPC URL (possibly a fault proxy in front of it). */
  url: string
  /** Per-call timeout. Default 10 s. */
  timeoutMs?: number
}

/**
 * An `ExecutionEngine` over an Anvil started with `--no-mining --timestamp <genesis>`. Anvil
 * mines deterministically: the same parent, raw transactions (sent one by one, in order — a
 * JSON-RPC batch may insert them into the pool in any order), coinbase and timestamp give the
 * same block hash, state root and receipts root on every Anvil with the same flags, so
 * re-execution is a byte-exact check.
 *
 * An uncommitted block is undone with `anvil_rollback(1)`, not with `evm_snapshot` /
 * `evm_revert`: Anvil keeps every snapshot that is never reverted, and a snapshot per block
 * grew one Anvil (200 accounts) to 1.1 GB after 3,000 blocks, where rollback stays at 40 MB and
 * re-executes to the same hashes. Neither restores Anvil's base-fee tracker, so the next base
 * fee is set explicitly from the parent (EIP-1559) before every block.
 *
 * Every field of a payload is read from the execution URL's own answer to
 * `eth_getBlockByNumber`, so a node proposes exactly what its execution layer told it.
 */
export class AnvilEngine implements ExecutionEngine {
  readonly rpc: JsonRpcHttp
  #head: Head
  /** The head's fee fields: the next block's base fee is derived from them. */
  #headFees: BlockFees
  #pending: { payload: Payload; fees: BlockFees } | null = null
  /** Anvil may hold a block above the head (an execution that failed half-way). */
  #dirty = false
  #queue: Promise<unknown> = Promise.resolve()

  private constructor(rpc: JsonRpcHttp, head: { head: Head; fees: BlockFees }) {
    this.rpc = rpc
    this.#head = head.head
    this.#headFees = head.fees
  }

  /** Connects, drops whatever sits in Anvil's pool, and reads the head. */
  static async connect(options: AnvilEngineOptions): Promise<AnvilEngine> {
    const rpc = new JsonRpcHttp(options.url, options.timeoutMs ?? 10_000)
    await rpc.call('anvil_dropAllTransactions')
    const engine = new AnvilEngine(rpc, await readHead(rpc, 'latest'))
    return engine
  }

  head(): Head {
    return this.#head
  }

  /** Whether an uncommitted payload with this block hash is executed on top of the head. */
  pendingHash(): Hex | null {
    return this.#pending?.payload.blockHash ?? null
  }

  buildPayload(params: BuildParams): Promise<BuiltPayload> {
    return this.#serial(async () => {
      if (params.parent !== this.#head.hash)
        throw new InfraError('buildPayload: the parent is not the head.', {
          context: { Parent: params.parent, Head: this.#head.hash },
        })
      const deadlineMs = params.budgetMs === undefined ? Number.POSITIVE_INFINITY : performance.now() + params.budgetMs
      const { block, rejected } = await this.#execute(params.feeRecipient, params.timestampS, params.txs, deadlineMs)
      const payload = await this.#payloadOf(block, params.txs)
      this.#pending = { payload, fees: feesOf(block) }
      return { ...payload, rejected }
    })
  }

  newPayload(payload: Payload, options: NewPayloadOptions = {}): Promise<PayloadStatus> {
    return this.#serial(async () => {
      if (payload.number !== this.#head.number + 1)
        return invalid(['number'], `number ${payload.number} is not head + 1 (${this.#head.number + 1})`)
      if (payload.parentHash !== this.#head.hash)
        return invalid(['parentHash'], `parent ${payload.parentHash} is not the head ${this.#head.hash}`)
      const pending = this.#pending
      if (pending && samePayload(pending.payload, payload)) return { status: 'VALID' } as const
      if (pending && options.ignore && pending.payload.blockHash === payload.blockHash) {
        const differing = payloadFields.filter((f) => !fieldEqual(f, pending.payload, payload))
        if (differing.every((f) => options.ignore?.includes(f))) return { status: 'VALID' } as const
      }
      const { block, rejected } = await this.#execute(payload.feeRecipient, payload.timestampS, payload.transactions)
      const got = await this.#payloadOf(block, payload.transactions)
      const mismatched = payloadFields.filter((f) => !fieldEqual(f, got, payload))
      this.#pending = { payload: got, fees: feesOf(block) }
      if (mismatched.every((f) => options.ignore?.includes(f))) return { status: 'VALID' } as const
      // INVALID: put Anvil back on the head at once.
      await this.#revertPending()
      const first = mismatched[0] as PayloadField
      let reason = describe(first, got, payload)
      if (first === 'transactions' && rejected.length > 0)
        reason += `; execution refused ${rejected.map((r) => `${r.tx.slice(0, 18)}… (${r.reason})`).join(', ')}`
      return invalid(mismatched, reason)
    })
  }

  forkchoiceUpdated(blockHash: Hex): Promise<void> {
    return this.#serial(async () => {
      if (blockHash === this.#head.hash && !this.#pending) return
      const pending = this.#pending
      if (!pending || pending.payload.blockHash !== blockHash)
        throw new InfraError('forkchoiceUpdated: no pending payload with this hash.', {
          context: { Hash: blockHash, Pending: pending?.payload.blockHash ?? 'none' },
        })
      this.#head = { number: pending.payload.number, hash: pending.payload.blockHash, timestampS: pending.payload.timestampS }
      this.#headFees = pending.fees
      this.#pending = null
    })
  }

  abandon(): Promise<void> {
    return this.#serial(() => this.#revertPending())
  }

  /** Closes the keep-alive connections. */
  close() {
    this.rpc.close()
  }

  /**
   * Rolls Anvil back to `number` (`anvil_rollback`), e.g. when it holds blocks a crash left
   * uncommitted. Only below the head: committed blocks the store does not have yet.
   */
  rollbackTo(number: number): Promise<void> {
    return this.#serial(async () => {
      await this.#revertPending()
      const depth = this.#head.number - number
      if (depth <= 0) return
      await this.rpc.call('anvil_rollback', [depth])
      const head = await readHead(this.rpc, 'latest')
      this.#head = head.head
      this.#headFees = head.fees
    })
  }

  /** The hash of block `number` on this Anvil, or null when it has no such block. */
  async blockHashAt(number: number): Promise<Hex | null> {
    const block = await this.rpc.call<RpcBlock | null>('eth_getBlockByNumber', [toQuantity(number), false])
    return block ? (block.hash.toLowerCase() as Hex) : null
  }

  /** Rolls Anvil back to the head if it may hold anything above it. */
  async #revertPending() {
    if (!this.#pending && !this.#dirty) return
    this.#pending = null
    this.#dirty = true
    await this.#rollbackToHead()
  }

  async #rollbackToHead() {
    // Ask rather than assume: a call that failed after Anvil acted on it (a lost answer to
    // evm_mine) leaves a block we did not see.
    const latest = Number(await this.rpc.call<Hex>('eth_blockNumber'))
    if (latest > this.#head.number) await this.rpc.call('anvil_rollback', [latest - this.#head.number])
    this.#dirty = false
  }

  /**
   * Send the txs one by one (until `deadlineMs`, `performance.now()` time), mine one block at
   * `timestampS` on top of the head, read it back.
   */
  async #execute(feeRecipient: Hex, timestampS: number, txs: readonly Hex[], deadlineMs = Number.POSITIVE_INFINITY) {
    // Every call is a round trip through the execution proxy, and on a busy machine each costs
    // 10–500 ms: a block took 8 + n of them, now 3 + n. After a clean execution Anvil holds
    // exactly the head, or the pending block on top of it, and an empty pool; only after one
    // that failed half-way (dirty) is its height asked for and its pool emptied first.
    const dirty = this.#dirty
    const pendingAbove = this.#pending !== null
    this.#pending = null
    this.#dirty = true
    if (dirty) await this.#rollbackToHead()
    else if (pendingAbove) await this.rpc.call('anvil_rollback', [1])
    this.#dirty = true
    const rpc = this.rpc
    // Anvil's fee tracker remembers blocks that were rolled back, so the base fee it would pick
    // depends on history. Set it from the parent (EIP-1559) instead. (Independent calls: one batch.)
    await rpc.batch([
      ...(dirty ? [{ method: 'anvil_dropAllTransactions' }] : []),
      { method: 'anvil_setCoinbase', params: [feeRecipient] },
      { method: 'anvil_setNextBlockBaseFeePerGas', params: [toQuantity(nextBaseFee(this.#headFees))] },
    ])
    const rejected: { tx: Hex; reason: string }[] = []
    for (const [i, tx] of txs.entries()) {
      // The first few (the best-paying: the mempool orders by tip) go in even when the budget is
      // spent, so a slow machine still moves transactions.
      if (i >= minTxsPerBuild && performance.now() >= deadlineMs) break
      try {
        await rpc.call('eth_sendRawTransaction', [tx])
      } catch (error) {
        if (!(error instanceof ExecutionRpcError)) throw error
        rejected.push({ tx, reason: error.rpcMessage })
      }
    }
    await rpc.call('evm_mine', [timestampS])
    // Queued leftovers (a nonce gap) must not leak into a later block.
    const [block] = (await rpc.batch([{ method: 'eth_getBlockByNumber', params: ['latest', false] }, { method: 'anvil_dropAllTransactions' }])) as [RpcBlock, unknown]
    if (Number(block.number) !== this.#head.number + 1)
      throw new InfraError('Anvil mined at an unexpected height (did something else mine on it?).', {
        context: { Expected: this.#head.number + 1, Got: Number(block.number) },
      })
    // From here the block is the pending payload's: `#pending` says whether to undo it.
    this.#dirty = false
    return { block, rejected }
  }

  async #payloadOf(block: RpcBlock, sent: readonly Hex[]): Promise<Payload> {
    const byHash = new Map(sent.map((tx) => [txHashOf(tx), tx.toLowerCase() as Hex]))
    const transactions: Hex[] = []
    for (const h of block.transactions) {
      const known = byHash.get(h.toLowerCase() as Hex)
      transactions.push(known ?? ((await this.rpc.call<Hex>('eth_getRawTransactionByHash', [h])).toLowerCase() as Hex))
    }
    return {
      number: Number(block.number),
      parentHash: block.parentHash.toLowerCase() as Hex,
      timestampS: Number(block.timestamp),
      feeRecipient: block.miner.toLowerCase() as Hex,
      transactions,
      blockHash: block.hash.toLowerCase() as Hex,
      stateRoot: block.stateRoot.toLowerCase() as Hex,
      receiptsRoot: block.receiptsRoot.toLowerCase() as Hex,
    }
  }

  #serial<T>(job: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(job, job)
    this.#queue = run.catch(() => undefined)
    return run
  }
}

type RpcBlock = {
  number: Hex
  baseFeePerGas?: Hex
  gasUsed: Hex
  gasLimit: Hex
  hash: Hex
  parentHash: Hex
  timestamp: Hex
  miner: Hex
  stateRoot: Hex
  receiptsRoot: Hex
  transactions: Hex[]
}

type BlockFees = { baseFeePerGas: bigint; gasUsed: bigint; gasLimit: bigint }

const feesOf = (block: RpcBlock): BlockFees => ({
  baseFeePerGas: BigInt(block.baseFeePerGas ?? 0),
  gasUsed: BigInt(block.gasUsed),
  gasLimit: BigInt(block.gasLimit),
})

/** EIP-1559: the base fee moves by up to 1/8 towards keeping blocks half full. */
export function nextBaseFee(parent: BlockFees): bigint {
  const target = parent.gasLimit / 2n
  const base = parent.baseFeePerGas
  if (target === 0n || parent.gasUsed === target) return base
  if (parent.gasUsed > target) {
    const delta = (base * (parent.gasUsed - target)) / target / 8n
    return base + (delta > 1n ? delta : 1n)
  }
  return base - (base * (target - parent.gasUsed)) / target / 8n
}

async function readHead(rpc: JsonRpcHttp, tag: string): Promise<{ head: Head; fees: BlockFees }> {
  const block = await rpc.call<RpcBlock>('eth_getBlockByNumber', [tag, false])
  return {
    head: { number: Number(block.number), hash: block.hash.toLowerCase() as Hex, timestampS: Number(block.timestamp) },
    fees: feesOf(block),
  }
}

function samePayload(a: Payload, b: Payload): boolean {
  return payloadFields.every((f) => fieldEqual(f, a, b)) && a.feeRecipient === b.feeRecipient
}

function fieldEqual(field: PayloadField, a: Payload, b: Payload): boolean {
  switch (field) {
    case 'timestamp':
      return a.timestampS === b.timestampS
    case 'transactions':
      return a.transactions.length === b.transactions.length && a.transactions.every((t, i) => t === b.transactions[i])
    default:
      return a[field] === b[field]
  }
}

function describe(field: PayloadField, got: Payload, claimed: Payload): string {
  if (field === 'transactions')
    return `execution included ${got.transactions.length} of the ${claimed.transactions.length} proposed transactions${
      got.transactions.length === claimed.transactions.length ? ' in a different order' : ''
    }`
  const key = field === 'timestamp' ? 'timestampS' : field
  return `${field} differs: proposed ${String(claimed[key])}, execution produced ${String(got[key])}`
}

function invalid(mismatched: PayloadField[], reason: string): PayloadStatus {
  return { status: 'INVALID', reason, field: mismatched[0] as PayloadField, mismatched }
}

export const toQuantity = (n: number | bigint) => `0x${n.toString(16)}` as Hex

/**
 * A small JSON-RPC client over one keep-alive HTTP connection at a time: engine calls are
 * sequential, and Node's `http` costs ~0.4 ms per call against Anvil where `fetch` costs ~1 ms,
 * which matters when a 500-transaction payload is re-executed one transaction at a time.
 */
export class JsonRpcHttp {
  readonly #url: URL
  readonly #agent: http.Agent
  readonly #timeoutMs: number
  #id = 0
  /** Calls made, their summed and largest round trip (ms), and calls in flight now. */
  readonly stats = { calls: 0, totalMs: 0, maxMs: 0, inFlight: 0 }

  constructor(url: string, timeoutMs: number) {
    this.#url = new URL(url)
    this.#timeoutMs = timeoutMs
    const Agent = this.#url.protocol === 'https:' ? https.Agent : http.Agent
    this.#agent = new Agent({ keepAlive: true, maxSockets: 4 })
  }

  get url(): string {
    return this.#url.toString()
  }

  /** Raw request: resolves with the parsed body (an answer object, or an array for a batch). */
  post(body: unknown, headers: Record<string, string> = {}): Promise<unknown> {
    const payload = JSON.stringify(body)
    const mod = this.#url.protocol === 'https:' ? https : http
    return new Promise((resolve, reject) => {
      const req = mod.request(
        this.#url,
        {
          method: 'POST',
          agent: this.#agent,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), ...headers },
          timeout: this.#timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = []
          res.on('data', (c: Buffer) => chunks.push(c))
          res.on('error', reject)
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8')
            try {
              resolve(JSON.parse(text))
            } catch {
              reject(
                new InfraError('The execution endpoint answered with something that is not JSON.', {
                  context: { URL: redactUrl(this.url), Status: res.statusCode, Body: text.slice(0, 200) },
                }),
              )
            }
          })
        },
      )
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.#timeoutMs} ms`)))
      req.on('error', (cause) =>
        reject(
          new InfraError('The execution endpoint did not answer.', {
            context: { URL: redactUrl(this.url), Reason: cause.message },
            cause,
          }),
        ),
      )
      req.end(payload)
    })
  }

  /** One round trip, counted in `stats` (in flight, calls, total and worst latency). */
  async #timed(request: Promise<unknown>): Promise<unknown> {
    const t0 = performance.now()
    this.stats.inFlight++
    try {
      return await request
    } finally {
      const ms = performance.now() - t0
      this.stats.inFlight--
      this.stats.calls++
      this.stats.totalMs += ms
      if (ms > this.stats.maxMs) this.stats.maxMs = ms
    }
  }

  async call<T = unknown>(method: string, params: readonly unknown[] = [], headers: Record<string, string> = {}): Promise<T> {
    const reply = await this.#timed(this.post({ jsonrpc: '2.0', id: ++this.#id, method, params }, headers))
    if (typeof reply !== 'object' || reply === null)
      throw new InfraError('The execution endpoint answered with a non-object.', { context: { Method: method } })
    const r = reply as { result?: unknown; error?: { code?: number; message?: string } }
    if (r.error) throw new ExecutionRpcError(method, r.error.code ?? 0, String(r.error.message ?? 'error'))
    return r.result as T
  }

  /**
   * Several independent calls in one JSON-RPC batch (one round trip; the server may run them in
   * any order). Resolves with the results in call order; rejects with the first error answer.
   */
  async batch(calls: readonly { method: string; params?: readonly unknown[] }[]): Promise<unknown[]> {
    const first = this.#id + 1
    this.#id += calls.length
    const reply = await this.#timed(this.post(calls.map((c, i) => ({ jsonrpc: '2.0', id: first + i, method: c.method, params: c.params ?? [] }))))
    if (!Array.isArray(reply))
      throw new InfraError('The execution endpoint answered a batch with something that is not an array.', { context: { Methods: calls.map((c) => c.method).join(', ') } })
    const byId = new Map<unknown, { result?: unknown; error?: { code?: number; message?: string } }>()
    for (const r of reply) if (typeof r === 'object' && r !== null) byId.set((r as { id?: unknown }).id, r as never)
    return calls.map((c, i) => {
      const r = byId.get(first + i)
      if (!r) throw new InfraError('The execution endpoint left a call of a batch unanswered.', { context: { Method: c.method } })
      if (r.error) throw new ExecutionRpcError(c.method, r.error.code ?? 0, String(r.error.message ?? 'error'))
      return r.result
    })
  }

  close() {
    this.#agent.destroy()
  }
}

/** A JSON-RPC error answer from the execution layer (the call reached it and was refused). */
export class ExecutionRpcError extends Error {
  override name = 'ExecutionRpcError'
  constructor(
    readonly method: string,
    readonly code: number,
    readonly rpcMessage: string,
  ) {
    super(`${method}: ${rpcMessage} (code ${code})`)
  }
}
