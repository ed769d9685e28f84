import type { TransactionSerialized } from 'viem'

type TxCodec = Pick<typeof import('viem'), 'parseTransaction' | 'recoverTransactionAddress'>
let codec: TxCodec | undefined
let loading: Promise<TxCodec> | undefined

/**
 * viem's transaction decoding, loaded on first use: imported at start-up, viem's root took ~0.25 s
 * of each node process's CPU, four processes on 2 cores before the first commit. The node awaits
 * this before it admits a transaction.
 */
export function loadTxCodec(): Promise<TxCodec> {
  loading ??= import('viem').then((m) => (codec = m))
  return loading
}

function txCodec(): TxCodec {
  if (!codec) throw new Error('the transaction decoder is not loaded yet: await loadTxCodec() first')
  return codec
}
import { txHashOf } from './crypto.js'
import type { Hex } from './types.js'

/**
 * Pending transactions, bounded in total and per sender, deduplicated by hash. A transaction
 * is decoded and its sender recovered once, on the way in; one whose nonce the committed chain
 * has already used is refused. Proposers take transactions ordered by sender, then nonce;
 * committed ones leave, and so do ones the chain has made stale.
 */
export type MempoolOptions = {
  chainId: number
  /** Transactions held at most. */
  maxTotal: number
  /** Transactions held per sender at most. */
  maxPerSender: number
  /**
   * Transactions a client may submit per second (a token bucket, one second deep). Each costs a
   * signature recovery; beyond this the node refuses at once, so a flood cannot starve
   * consensus of CPU. Gossip from peers (sender already recovered) does not count. Default ∞.
   */
  maxIngressPerS?: number
  /** The next nonce of `sender` on the committed head. */
  committedNonce: (sender: Hex) => Promise<number>
  /**
   * A next nonce of `sender` known without waiting, possibly from an older head (so at most the
   * committed one), or undefined. When given, admission checks against it instead of waiting
   * for `committedNonce`; pruning after a commit always asks `committedNonce`.
   */
  knownNonce?: (sender: Hex) => number | undefined
}

export type AddResult =
  | { ok: true; hash: Hex; isNew: boolean }
  | { ok: false; hash: Hex | null; reason: string }

type Entry = { raw: Hex; hash: Hex; sender: Hex; nonce: number; tipWei: bigint }

export class Mempool {
  readonly #options: MempoolOptions
  readonly #byHash = new Map<Hex, Entry>()
  /** sender → nonce → entry; Map keeps senders in arrival order. */
  readonly #bySender = new Map<Hex, Map<number, Entry>>()

  constructor(options: MempoolOptions) {
    this.#options = options
  }

  get size(): number {
    return this.#byHash.size
  }

  has(hash: Hex): boolean {
    return this.#byHash.has(hash)
  }

  /** The recovered (or claimed) sender of a pending transaction. */
  senderOf(hash: Hex): Hex | undefined {
    return this.#byHash.get(hash)?.sender
  }

  /**
   * Admits a transaction. `claimedSender` skips the ~1.5 ms signature recovery for gossip from
   * a peer that already recovered it; a peer lying about it only skews this node's per-sender
   * accounting — execution checks the signature when the transaction is built into a block.
   */
  #tokens = 0
  #refilledAt = 0
  /** Tips of the last admitted client submissions: over budget, only a higher tip gets in. */
  #recentTips: bigint[] = []

  /**
   * The ingress cap alone (`maxIngressPerS`), for a client's submission: cheap (a decode, no
   * signature recovery), so a node can refuse at once and queue only what it will admit.
   * Takes a token; `tipWei` is 0 for an undecodable transaction (`add` gives the reason).
   */
  ingress(raw: Hex): { ok: true; tipWei: bigint } | { ok: false; reason: string } {
    // Not decodable: tip 0, and `add` refuses it with the reason.
    const tip = tipOf(raw)
    const rate = this.#options.maxIngressPerS
    if (rate === undefined) return { ok: true, tipWei: tip }
    const now = performance.now()
    this.#tokens = Math.min(rate, this.#tokens + ((now - this.#refilledAt) / 1000) * rate)
    this.#refilledAt = now
    if (this.#tokens < 1) {
      // Over budget: a transaction still gets in if it outbids every recent submission, so a
      // flood at one price cannot lock out a user who pays more (as a fee market would).
      const floor = this.#recentTips.reduce((a, b) => (b > a ? b : a), 0n)
      if (tip <= floor) return { ok: false, reason: `node busy: more than ${rate} submitted transactions per second (maxIngressPerS) and the tip does not outbid them; retry later or pay more` }
    } else this.#tokens -= 1
    this.#recentTips.push(tip)
    if (this.#recentTips.length > 256) this.#recentTips.shift()
    return { ok: true, tipWei: tip }
  }

  /** `ingressChecked`: the caller already passed a client's transaction through `ingress`. */
  async add(raw: Hex, claimedSender?: Hex, options: { ingressChecked?: boolean } = {}): Promise<AddResult> {
    if (claimedSender === undefined && !options.ingressChecked) {
      const checked = this.ingress(raw)
      if (!checked.ok) return { ok: false, hash: null, reason: checked.reason }
    }
    const lower = raw.toLowerCase() as Hex
    let hash: Hex
    try {
      hash = txHashOf(lower)
    } catch {
      return { ok: false, hash: null, reason: 'not a hex-encoded transaction' }
    }
    if (this.#byHash.has(hash)) return { ok: true, hash, isNew: false }
    let sender: Hex
    let nonce: number
    let tipWei: bigint
    const { parseTransaction, recoverTransactionAddress } = await loadTxCodec()
    try {
      const tx = parseTransaction(lower as TransactionSerialized)
      tipWei = tx.maxPriorityFeePerGas ?? tx.gasPrice ?? 0n
      if (tx.chainId !== this.#options.chainId)
        return { ok: false, hash, reason: `chain id ${tx.chainId ?? 'missing (pre-EIP-155)'} is not ${this.#options.chainId}` }
      if (tx.nonce === undefined) return { ok: false, hash, reason: 'the transaction has no nonce' }
      nonce = tx.nonce
      sender =
        claimedSender ??
        ((await recoverTransactionAddress({ serializedTransaction: lower as TransactionSerialized })).toLowerCase() as Hex)
    } catch (error) {
      return { ok: false, hash, reason: `cannot decode the transaction: ${(error as Error).message.split('\n')[0]}` }
    }
    if (this.#byHash.has(hash)) return { ok: true, hash, isNew: false }
    if (this.#byHash.size >= this.#options.maxTotal)
      return { ok: false, hash, reason: `mempool full: ${this.#options.maxTotal} transactions pending (maxTotal)` }
    const mine = this.#bySender.get(sender)
    if (mine && mine.size >= this.#options.maxPerSender)
      return { ok: false, hash, reason: `sender ${sender} already has ${mine.size} pending transactions (maxPerSender)` }
    if (mine?.has(nonce)) return { ok: false, hash, reason: `sender ${sender} already has a pending transaction with nonce ${nonce}` }
    const next = this.#options.knownNonce?.(sender) ?? (await this.#options.committedNonce(sender))
    if (nonce < next) return { ok: false, hash, reason: `nonce too low: ${nonce} < ${next} for ${sender}` }
    if (this.#byHash.has(hash)) return { ok: true, hash, isNew: false }
    const entry: Entry = { raw: lower, hash, sender, nonce, tipWei }
    this.#byHash.set(hash, entry)
    let bySender = this.#bySender.get(sender)
    if (!bySender) this.#bySender.set(sender, (bySender = new Map()))
    bySender.set(nonce, entry)
    return { ok: true, hash, isNew: true }
  }

  /**
   * Up to `max` transactions: senders by the tip of their next transaction (highest first, then
   * arrival order), each sender's in nonce order — so under a flood a transaction that pays more
   * is not stuck behind the flood.
   */
  take(max: number): Hex[] {
    const out: Hex[] = []
    const senders = [...this.#bySender.values()]
      .map((bySender, arrival) => ({ bySender, arrival, tip: (bySender.get(Math.min(...bySender.keys())) as Entry).tipWei }))
      .sort((a, b) => (a.tip === b.tip ? a.arrival - b.arrival : a.tip > b.tip ? -1 : 1))
    for (const { bySender } of senders) {
      for (const nonce of [...bySender.keys()].sort((a, b) => a - b)) {
        if (out.length >= max) return out
        out.push((bySender.get(nonce) as Entry).raw)
      }
    }
    return out
  }

  remove(hash: Hex) {
    const entry = this.#byHash.get(hash)
    if (!entry) return
    this.#byHash.delete(hash)
    const bySender = this.#bySender.get(entry.sender)
    bySender?.delete(entry.nonce)
    if (bySender?.size === 0) this.#bySender.delete(entry.sender)
  }

  /**
   * After a commit: drops the block's transactions, then every pending transaction of the
   * block's senders whose nonce the chain has now used. (A stale transaction of a sender this
   * node never saw in a block is dropped when a build refuses it.)
   */
  async removeCommitted(raws: readonly Hex[]) {
    const senders = new Set<Hex>()
    for (const raw of raws) {
      const entry = this.#byHash.get(txHashOf(raw))
      if (entry) {
        senders.add(entry.sender)
        this.remove(entry.hash)
      }
    }
    for (const sender of senders) {
      const bySender = this.#bySender.get(sender)
      if (!bySender) continue
      const next = await this.#options.committedNonce(sender)
      for (const [nonce, entry] of bySender) if (nonce < next) this.remove(entry.hash)
    }
  }
}

/** The priority fee a raw transaction offers (wei); 0 when it does not decode. */
export function tipOf(raw: Hex): bigint {
  const { parseTransaction } = txCodec()
  try {
    const tx = parseTransaction(raw.toLowerCase() as TransactionSerialized)
    return tx.maxPriorityFeePerGas ?? tx.gasPrice ?? 0n
  } catch {
    return 0n
  }
}

/**
 * A FIFO per tip, highest tip first: what waits for admission, so that under a flood at one
 * price a transaction that pays more is not queued behind the flood.
 */
export class TipQueue<T> {
  /** Distinct tips waiting, highest first. */
  readonly #tips: bigint[] = []
  readonly #byTip = new Map<bigint, T[]>()
  #length = 0

  get length(): number {
    return this.#length
  }

  push(item: T, tipWei: bigint) {
    let fifo = this.#byTip.get(tipWei)
    if (!fifo) {
      this.#byTip.set(tipWei, (fifo = []))
      let at = 0
      while (at < this.#tips.length && (this.#tips[at] as bigint) > tipWei) at++
      this.#tips.splice(at, 0, tipWei)
    }
    fifo.push(item)
    this.#length++
  }

  shift(): T | undefined {
    const tip = this.#tips[0]
    if (tip === undefined) return undefined
    const fifo = this.#byTip.get(tip) as T[]
    const item = fifo.shift() as T
    if (fifo.length === 0) {
      this.#byTip.delete(tip)
      this.#tips.shift()
    }
    this.#length--
    return item
  }
}
