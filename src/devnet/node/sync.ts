import type { Prng } from '../../util/prng.js'
import { certificateSigners, type ValidatorSet } from './crypto.js'
import type { CommittedBlock, Hex, Message } from './types.js'

/**
 * Catch-up: a node that learns (from a peer's status) that the chain is ahead of its head asks
 * that peer for the missing blocks, checks each block's certificate (a quorum of valid,
 * distinct precommits from the validator set for exactly that payload) and its link to the
 * head, and hands it to `commit`, which re-executes it before it becomes the head. A node back
 * from a partition, a kill or a corrupted store catches up by itself.
 */
export type SyncOptions = {
  chainId: number
  validators: ValidatorSet
  quorum: number
  slotMs: number
  /** Blocks asked for per request. Default 32. */
  batchSize?: number
  /** A request with no answer for this long is given up and retried with another peer. Default 3 s. */
  requestTimeoutMs?: number
  prng: Prng
  head(): { number: number; hash: Hex }
  /** Committed blocks in [from, to] this node can serve. */
  blocks(from: number, to: number): CommittedBlock[]
  send(to: number, message: Message): void
  /** Re-executes and commits one verified block; false when it could not. */
  commit(block: CommittedBlock): Promise<boolean>
  /** When this node last made progress (commit or start), ms since the epoch. */
  lastProgressMs(): number
  log(line: string): void
}

export type Sync = {
  onStatus(from: number, height: number): void
  onRequest(from: number, fromHeight: number, toHeight: number): void
  onResponse(from: number, blocks: readonly CommittedBlock[]): Promise<void>
  /** Called periodically: asks a peer for blocks when behind. */
  tick(nowMs: number): void
  /** Highest head a peer reported. */
  bestPeerHeight(): number
  readonly stats: { requests: number; blocksSynced: number; badBlocks: number }
}

export function createSync(options: SyncOptions): Sync {
  const batchSize = options.batchSize ?? 32
  const requestTimeoutMs = options.requestTimeoutMs ?? 3_000
  const peerHeights = new Map<number, number>()
  const stats = { requests: 0, blocksSynced: 0, badBlocks: 0 }
  let inFlight: { peer: number; atMs: number; from: number } | null = null
  let applying = false

  return {
    stats,
    bestPeerHeight: () => Math.max(0, ...peerHeights.values()),
    onStatus(from, height) {
      peerHeights.set(from, height)
    },
    onRequest(from, fromHeight, toHeight) {
      const to = Math.min(toHeight, fromHeight + batchSize - 1)
      if (to < fromHeight) return
      const blocks = options.blocks(fromHeight, to)
      // Keep one frame well under the line limit: large payloads make shorter answers.
      let bytes = 0
      let cut = 0
      for (const b of blocks) {
        bytes += 400 + b.payload.transactions.reduce((s, t) => s + t.length, 0)
        if (bytes > 8 * 1024 * 1024 && cut > 0) break
        cut++
      }
      if (cut > 0) options.send(from, { t: 'syncResponse', blocks: blocks.slice(0, cut) })
    },
    async onResponse(from, blocks) {
      if (inFlight?.peer === from) inFlight = null
      if (applying) return
      applying = true
      try {
        for (const block of blocks) {
          const head = options.head()
          const height = block.payload.number
          if (height <= head.number) continue
          if (height !== head.number + 1) break
          const signers = certificateSigners(options.chainId, options.validators, height, block.payload, block.certificate)
          if (signers < options.quorum) {
            stats.badBlocks++
            options.log(`sync: block ${height} from ${from} has ${signers} valid precommits, needs ${options.quorum}; ignored`)
            break
          }
          if (block.payload.parentHash !== head.hash) {
            stats.badBlocks++
            options.log(`sync: block ${height} from ${from} does not extend the head ${head.hash}; ignored`)
            break
          }
          if (!(await options.commit(block))) break
          stats.blocksSynced++
        }
      } finally {
        applying = false
      }
    },
    tick(nowMs) {
      if (inFlight && nowMs - inFlight.atMs < requestTimeoutMs) return
      if (applying) return
      const head = options.head().number
      const ahead = [...peerHeights].filter(([, h]) => h > head)
      if (ahead.length === 0) return
      const best = Math.max(...ahead.map(([, h]) => h))
      // One block behind is normal for a moment (a peer committed first); stay out of the way
      // of consensus unless it has not moved for a slot.
      if (best < head + 2 && nowMs - options.lastProgressMs() < options.slotMs) return
      // Retry a different peer after a timeout; otherwise pick at random among those ahead.
      const candidates = ahead.filter(([id]) => id !== inFlight?.peer)
      const pool = candidates.length > 0 ? candidates : ahead
      const [peer] = pool[Math.floor(options.prng.next() * pool.length)] as [number, number]
      inFlight = { peer, atMs: nowMs, from: head + 1 }
      stats.requests++
      options.send(peer, { t: 'syncRequest', fromHeight: head + 1, toHeight: Math.min(best, head + batchSize) })
    },
  }
}
