import type { Hex } from 'viem'
import { type ExecutionPayloadJson, type PayloadSidecar, type PayloadTamper, tamperPayload, unexecutableTx } from '../../chain/payload.js'
import type { RpcProxy } from '../../proxy/jsonrpc/proxy.js'

/**
 * The byzantine proxy on a proposer's Engine API link (consensus node → its execution client),
 * as hive's invalid-payload tests do it: every `engine_getPayloadV3/V4` answer — a block this
 * proposer's EL built — is rewritten (state root flipped, parent set to an older ancestor, or
 * a transaction no EL accepts appended) and its block hash recomputed over the new header, so
 * the header is self-consistent and only re-execution (or the parent check) catches it.
 *
 * The lie is kept whole on the link: when the proposer's consensus node hands its own tampered
 * block back (`engine_newPayloadV3/V4`, as the Engine API's calling order asks), its EL's
 * INVALID is answered as VALID, so the node proposes what it believes its EL built.
 *
 * What it needs and learns from the link itself: the beacon root a build was started with (from
 * `engine_forkchoiceUpdatedV3`'s payload attributes, by payloadId) and each block's parent
 * (from `newPayload` requests: the grandparent for a stale parent).
 */
export type EngineLieKind = PayloadTamper['kind']

/** A block the link tampered with. */
export type TamperedBlock = {
  number: number
  /** The hash the EL built. */
  honestHash: Hex
  /** The hash the proposer was given (and proposes). */
  blockHash: Hex
  /** The parent the honest ELs should answer as `latestValidHash`. */
  parentHash: Hex
  /** What the tampered header claims as parent (differs from `parentHash` only for a stale parent). */
  claimedParentHash: Hex
  /** Wall clock (ms since the epoch) when the tampered answer left the proxy. */
  at: number
}

export type EngineLie = {
  readonly kind: EngineLieKind
  /** Tampered blocks, oldest first (at most `MAX_TAMPERED`; later ones are still tampered, not kept). */
  readonly tampered: TamperedBlock[]
  /** getPayload answers left as they were, with why (at most 20 reasons kept). */
  readonly untouched: { count: number; reasons: string[] }
  /** The proposer's own newPayload calls for a tampered block, answered VALID on its behalf. */
  readonly ownValidations: () => number
  /** Whether `hash` is a block this link tampered with. */
  isTampered(hash: string): boolean
  /** The real parent of a tampered block (what `latestValidHash` should be), if it is one. */
  parentOf(hash: string): Hex | undefined
  /** Removes the rules (idempotent). */
  remove(): void
}

/** Tampered blocks kept per fault (a long soak tampers with one per proposer turn). */
export const MAX_TAMPERED = 1_000
/** Beacon roots and parents remembered per link (the oldest are dropped past this). */
const MAX_REMEMBERED = 4_096

export type EngineLieOptions = {
  kind: EngineLieKind
  /** The chain id the unexecutable transaction is signed for (`invalid-tx`). */
  chainId: number
  /** Seeds the unexecutable transaction's key (`invalid-tx`): one account per validator. */
  label: string
  /** Looks a block's parent and number up when the link has not seen it (`stale-parent`): e.g. `eth_getBlockByHash` on the EL. */
  parentOf?: (hash: Hex) => Promise<BlockLink | null>
}

const lower = (h: string) => h.toLowerCase() as Hex

/** A block's number and parent. */
export type BlockLink = { number: number; parentHash: Hex }

/** Installs the rewrite on `proxy` (the proposer's engine link). */
export function lieOnEngineLink(proxy: RpcProxy, options: EngineLieOptions): EngineLie {
  const beaconRoots = new Map<string, Hex>()
  const parents = new Map<Hex, BlockLink>()
  const remember = <K, V>(map: Map<K, V>, key: K, value: V) => {
    map.set(key, value)
    if (map.size > MAX_REMEMBERED) map.delete(map.keys().next().value as K)
  }
  const tampered: TamperedBlock[] = []
  /** Tampered block hash → its real parent. */
  const tamperedHashes = new Map<Hex, Hex>()
  const untouched = { count: 0, reasons: [] as string[] }
  const leave = (reason: string) => {
    untouched.count++
    if (untouched.reasons.length < 20 && !untouched.reasons.includes(reason)) untouched.reasons.push(reason)
  }
  let ownValidations = 0
  let badTx: Promise<Hex> | undefined

  const rules = [
    // A build's beacon root, by the payloadId the EL answered for it.
    proxy.addRule({
      match: { methods: ['engine_forkchoiceUpdatedV3'] },
      action: {
        type: 'rewrite',
        path: '',
        with: (result, ctx) => {
          const attributes = (ctx.params as unknown[] | undefined)?.[1] as { parentBeaconBlockRoot?: Hex } | null | undefined
          const id = (result as { payloadId?: string | null } | null)?.payloadId
          if (id && attributes?.parentBeaconBlockRoot) remember(beaconRoots, id, lower(attributes.parentBeaconBlockRoot))
          return result
        },
      },
    }),
    // Parents from newPayload, and the proposer's own tampered block answered VALID.
    proxy.addRule({
      match: { methods: ['engine_newPayloadV3', 'engine_newPayloadV4'] },
      action: {
        type: 'rewrite',
        path: '',
        with: (result, ctx) => {
          const payload = (ctx.params as unknown[] | undefined)?.[0] as Partial<ExecutionPayloadJson> | undefined
          if (!payload?.blockHash || !payload.parentHash) return result
          const hash = lower(payload.blockHash)
          if (tamperedHashes.has(hash)) {
            ownValidations++
            return { status: 'VALID', latestValidHash: hash, validationError: null }
          }
          remember(parents, hash, { number: Number(payload.blockNumber), parentHash: lower(payload.parentHash) })
          return result
        },
      },
    }),
    proxy.addRule({
      match: { methods: ['engine_getPayloadV3', 'engine_getPayloadV4'] },
      action: {
        type: 'rewrite',
        path: '',
        with: async (result, ctx) => {
          const envelope = result as { executionPayload?: ExecutionPayloadJson; executionRequests?: Hex[] } | null
          const payload = envelope?.executionPayload
          if (!payload || typeof payload.blockHash !== 'string') {
            leave('the answer holds no executionPayload')
            return result
          }
          const id = String((ctx.params as unknown[] | undefined)?.[0] ?? '')
          const sidecar: PayloadSidecar = {
            parentBeaconBlockRoot: beaconRoots.get(id) ?? `0x${'00'.repeat(32)}`,
            ...(ctx.method === 'engine_getPayloadV4' ? { executionRequests: envelope.executionRequests ?? [] } : {}),
          }
          const parentHash = lower(payload.parentHash)
          let tamper: PayloadTamper
          if (options.kind === 'stale-parent') {
            const parent = parents.get(parentHash) ?? (await options.parentOf?.(parentHash).catch(() => null)) ?? null
            if (!parent || parent.number < 1) {
              leave(`no ancestor known for parent ${parentHash} (block ${Number(payload.blockNumber)})`)
              return result
            }
            tamper = { kind: 'stale-parent', ancestor: lower(parent.parentHash), ancestorNumber: parent.number - 1 }
          } else if (options.kind === 'invalid-tx') {
            badTx ??= unexecutableTx(options.chainId, options.label)
            tamper = { kind: 'invalid-tx', tx: await badTx }
          } else tamper = { kind: 'state-root-flip' }
          let out: ExecutionPayloadJson
          try {
            out = await tamperPayload(payload, sidecar, tamper)
          } catch (error) {
            leave((error as Error).message.split('\n')[0] ?? 'tampering failed')
            return result
          }
          const blockHash = lower(out.blockHash)
          remember(tamperedHashes, blockHash, parentHash)
          if (tampered.length < MAX_TAMPERED)
            tampered.push({
              number: Number(payload.blockNumber),
              honestHash: lower(payload.blockHash),
              blockHash,
              parentHash,
              claimedParentHash: lower(out.parentHash),
              at: Date.now(),
            })
          return { ...envelope, executionPayload: out }
        },
      },
    }),
  ]
  return {
    kind: options.kind,
    tampered,
    untouched,
    ownValidations: () => ownValidations,
    isTampered: (hash) => tamperedHashes.has(lower(hash)),
    parentOf: (hash) => tamperedHashes.get(lower(hash)),
    remove() {
      for (const rule of rules) proxy.removeRule(rule)
    },
  }
}

// ─── The fault side: which form, the honest ELs' answers, canonical checks ──────────────────

/** An honest EL's answer to `newPayload` for a tampered block, as the report records it. */
export type ElAnswer = {
  /** The validator whose EL answered. */
  node: number
  number: number
  blockHash: Hex
  status: string
  latestValidHash: Hex | null
  validationError: string | null
  /** Whether `latestValidHash` is the tampered block's real parent (what the Engine API asks for). */
  latestValidIsParent: boolean
}

/** Whether a tampered block became canonical on some EL (read with eth_getBlockByNumber at its number). */
export type BadBlockCheck = { number: number; blockHash: Hex; canonicalOn: number[]; unread: number[] }

/** What an Engine API byzantine fault puts in its report (`faults[].evidence.engine`). */
export type EngineEvidence = {
  kind: EngineLieKind
  /** The proposer whose engine link lied. */
  proposer: number
  tampered: number
  /** The first tampered blocks (at most 20). */
  blocks: TamperedBlock[]
  /** getPayload answers left as they were, and why. */
  untouched: { count: number; reasons: string[] }
  /** Every honest EL's answer to a tampered block that reached it (at most 200). */
  answers: ElAnswer[]
  /** Per tampered block (at most 50): the ELs on which it is canonical (must be none). */
  canonical: BadBlockCheck[]
}

/** What the Engine API form needs of a validator: its engine link proxy and its EL's plain JSON-RPC URL. */
export type EngineSide = { engine: RpcProxy; elRpcUrl: string }

/** The answers kept per fault. */
const MAX_ANSWERS = 200

/**
 * Watches one honest validator's engine link: every `newPayload` answer to a block `lie`
 * tampered with is recorded as its EL gave it.
 */
export function watchEngineLink(proxy: RpcProxy, node: number, lie: EngineLie, out: ElAnswer[]): () => void {
  const rule = proxy.addRule({
    match: { methods: ['engine_newPayloadV3', 'engine_newPayloadV4'] },
    action: {
      type: 'rewrite',
      path: '',
      with: (result, ctx) => {
        const payload = (ctx.params as unknown[] | undefined)?.[0] as Partial<ExecutionPayloadJson> | undefined
        if (!payload?.blockHash || !lie.isTampered(payload.blockHash) || out.length >= MAX_ANSWERS) return result
        const r = (result ?? {}) as { status?: string; latestValidHash?: string | null; validationError?: string | null }
        const blockHash = lower(payload.blockHash)
        const latestValidHash = r.latestValidHash ? lower(r.latestValidHash) : null
        out.push({
          node,
          number: Number(payload.blockNumber),
          blockHash,
          status: String(r.status ?? '(none)'),
          latestValidHash,
          validationError: r.validationError ?? null,
          latestValidIsParent: latestValidHash !== null && latestValidHash === lie.parentOf(blockHash),
        })
        return result
      },
    },
  })
  return () => {
    proxy.removeRule(rule)
  }
}

/**
 * For each tampered block: on which ELs it is canonical (`eth_getBlockByNumber` at its number
 * answers its hash). `rpc(url, method, params)` is one plain JSON-RPC call.
 */
export async function badBlocksCanonical(
  blocks: readonly TamperedBlock[],
  els: readonly { node: number; rpcUrl: string }[],
  rpc: (url: string, method: string, params: unknown[]) => Promise<unknown>,
): Promise<BadBlockCheck[]> {
  const out: BadBlockCheck[] = []
  for (const b of blocks.slice(0, 50)) {
    const check: BadBlockCheck = { number: b.number, blockHash: b.blockHash, canonicalOn: [], unread: [] }
    await Promise.all(
      els.map(async (el) => {
        try {
          const got = (await rpc(el.rpcUrl, 'eth_getBlockByNumber', [`0x${b.number.toString(16)}`, false])) as { hash?: string } | null
          if (got?.hash && lower(got.hash) === b.blockHash) check.canonicalOn.push(el.node)
        } catch {
          check.unread.push(el.node)
        }
      }),
    )
    check.canonicalOn.sort((x, y) => x - y)
    check.unread.sort((x, y) => x - y)
    out.push(check)
  }
  return out
}

/** One line for `seen`: what the honest ELs answered and whether any bad block is canonical. */
export function describeEngineEvidence(e: EngineEvidence): string {
  const byStatus = new Map<string, number>()
  for (const a of e.answers) byStatus.set(a.status, (byStatus.get(a.status) ?? 0) + 1)
  const statuses = [...byStatus].map(([s, n]) => `${s} ×${n}`).join(', ') || 'none'
  const parents = e.answers.filter((a) => a.latestValidIsParent).length
  const errors = [...new Set(e.answers.map((a) => a.validationError).filter((x): x is string => !!x).map((x) => x.slice(0, 120)))].slice(0, 2)
  const canonical = e.canonical.filter((c) => c.canonicalOn.length > 0)
  return (
    `${e.tampered} payloads of validator ${e.proposer} tampered (${e.kind}); honest ELs answered ${statuses} (latestValidHash = parent in ${parents} of ${e.answers.length})` +
    (errors.length ? ` — ${errors.join('; ')}` : '') +
    `; ${canonical.length === 0 ? 'no bad block canonical on any EL' : `${canonical.length} bad blocks canonical (on ${[...new Set(canonical.flatMap((c) => c.canonicalOn))].join(', ')})`}`
  )
}
