import * as fs from 'node:fs'
import type { Devnet, DevnetNode, NodeStatus } from '../targets/devnet.js'
import { createRpc, type Rpc, RpcError } from '../targets/rpc.js'

/**
 * Samples a devnet continuously (every `intervalMs`): each validator's height and head, every
 * committed block each validator reports (hash, proposer, certificate), rejections and
 * equivocation evidence, and the resident memory of every validator process. Checks read
 * these series over a phase's window; nothing is asserted here.
 */
export type Sample = { t: number; heights: (number | null)[] }
/** `proposer`: of the round that certified it; `builder`: the validator that built it (its fee recipient), when the node says. */
export type BlockSeen = { node: number; height: number; hash: string; stateRoot: string; /** The block's own timestamp (its build time on the proposer's clock), when the node says. */ timestampS?: number; proposer: number; builder?: number | null; signers: number[]; t: number }
/** `engine`: an Engine API client's own newPayload answer (status, latestValidHash, validationError), as the node recorded it. */
export type Rejection = {
  node: number
  height: number
  round: number
  proposer: number
  layer: string
  reason: string
  field?: string
  latencyMs: number
  at: number
  engine?: { status: string; latestValidHash: string | null; validationError: string | null }
}
export type Evidence = { node: number; validator: number; height: number; round: number; type: string }

export type Probe = {
  samples: Sample[]
  blocks: BlockSeen[]
  rejections: Rejection[]
  evidence: Evidence[]
  rssMb: { t: number; node: number; mb: number }[]
  /** Date.now() when the probe clock read 0: converts the nodes' epoch timestamps. */
  epochStartMs: number
  /** First time (ms since probe start) at which any validator reported height ≥ h. */
  firstCommitAt(h: number): number | undefined
  now(): number
  stop(): Promise<void>
}

type Block = { height: number; hash: string; stateRoot: string; timestampS?: number; proposer: number; builder?: number | null; certificate?: { votes?: { validator: number }[] } }

/** A status read: short, so that a wedged validator does not hold up the tick. */
const STATUS_TIMEOUT_MS = 400
/** A follow-up read (up to 50 blocks, rejections): off the tick, bounded so that stop() is too. */
const FOLLOW_UP_TIMEOUT_MS = 3_000

export function startProbe(devnet: Devnet, intervalMs = 100): Probe {
  const t0 = performance.now()
  const now = () => Math.round(performance.now() - t0)
  const probe: Probe = {
    epochStartMs: Date.now(),
    samples: [],
    blocks: [],
    rejections: [],
    evidence: [],
    rssMb: [],
    firstCommitAt(h) {
      return probe.samples.find((s) => s.heights.some((x) => x !== null && x >= h))?.t
    },
    now,
    stop: async () => {
      running = false
      await loop
    },
  }
  const fetched = new Map<number, number>() // node → highest height whose block we read
  const seenRejections = new Map<number, number>()
  const seenEvidence = new Map<number, number>()
  const rejectionsReadAt = new Map<number, number>() // node → tick its rejections were last read
  // A restarted validator's lists start empty: the counts above are of the process (pid) they were read from.
  const seenPid = new Map<number, number>()
  // A node's follow-up reads (its later blocks, its rejections) run beside the sampling, never in
  // its way: a validator stopped between its status and its follow-up (a wedge, SIGSTOP) stalls
  // only its own follow-up, which times out, while every other validator is still sampled each tick.
  const followUps = new Map<number, Promise<void>>()
  let running = true
  let tick = 0
  // One HTTP request per validator per tick (a batch): its status and the next block it may have
  // committed. A short timeout: a wedged (SIGSTOPped) validator must not stall the sampling of
  // the others. Every 5th tick, in its follow-up: its rejections and evidence.
  const statusClients = new Map<string, Rpc>()
  const followUpClients = new Map<string, Rpc>()
  const clientOf = (clients: Map<string, Rpc>, url: string, timeoutMs: number) => {
    let c = clients.get(url)
    if (!c) clients.set(url, (c = createRpc(url, { owned: true, timeoutMs })))
    return c
  }
  const record = (node: DevnetNode, h: number, b: Block, t: number) => {
    probe.blocks.push({ node: node.id, height: h, hash: b.hash, stateRoot: b.stateRoot, ...(typeof b.timestampS === 'number' ? { timestampS: b.timestampS } : {}), proposer: b.proposer, ...(b.builder !== undefined ? { builder: b.builder } : {}), signers: (b.certificate?.votes ?? []).map((v) => v.validator), t })
    fetched.set(node.id, h)
  }
  /** Catching up (a restarted validator, a slow tick): the rest of its blocks in one batch, up to 50; every 5th tick its rejections and evidence. */
  const followUp = async (node: DevnetNode, from: number, status: NodeStatus, t: number, readRejections: boolean) => {
    const rpc = clientOf(followUpClients, node.rpcUrl, FOLLOW_UP_TIMEOUT_MS)
    const last = Math.min(status.height, from + 49)
    if (last > from) {
      const heights = Array.from({ length: last - from }, (_, i) => from + 1 + i)
      const blocks = await rpc.batch(heights.map((h) => ({ method: 'fc_block', params: [h] }))).catch(() => [])
      for (const [i, b] of blocks.entries()) {
        if (!b || b instanceof RpcError) break
        record(node, heights[i] as number, b as Block, t)
      }
    }
    if (!readRejections) return
    rejectionsReadAt.set(node.id, tick)
    const pid = node.pid
    const [rej, ev] = await rpc.batch([{ method: 'fc_rejections' }, { method: 'fc_evidence' }]).catch(() => [])
    if (pid !== node.pid) return
    if (seenPid.get(node.id) !== pid) {
      seenPid.set(node.id, pid)
      seenRejections.delete(node.id)
      seenEvidence.delete(node.id)
    }
    if (Array.isArray(rej)) {
      for (const r of (rej as Omit<Rejection, 'node'>[]).slice(seenRejections.get(node.id) ?? 0)) probe.rejections.push({ ...r, node: node.id })
      seenRejections.set(node.id, rej.length)
    }
    if (Array.isArray(ev)) {
      for (const e of (ev as Omit<Evidence, 'node'>[]).slice(seenEvidence.get(node.id) ?? 0)) probe.evidence.push({ node: node.id, validator: e.validator, height: e.height, round: e.round, type: e.type })
      seenEvidence.set(node.id, ev.length)
    }
    const mb = rssMb(node.pid)
    if (mb !== undefined) probe.rssMb.push({ t, node: node.id, mb })
  }
  const loop = (async () => {
    while (running) {
      const started = performance.now()
      const answers = await Promise.all(
        devnet.nodes.map(async (node) => {
          if (!node.running) return undefined
          // While its follow-up runs, only its status: the block after `fetched` may be on its way.
          const busy = followUps.has(node.id)
          const from = (fetched.get(node.id) ?? 0) + 1
          const out = await clientOf(statusClients, node.rpcUrl, STATUS_TIMEOUT_MS)
            .batch(busy ? [{ method: 'fc_status' }] : [{ method: 'fc_status' }, { method: 'fc_block', params: [from] }])
            .catch(() => undefined)
          const status = out?.[0]
          return status && !(status instanceof RpcError) ? { node, from, busy, status: status as NodeStatus, first: out?.[1] } : undefined
        }),
      )
      const t = now()
      probe.samples.push({ t, heights: devnet.nodes.map((_, i) => answers[i]?.status.height ?? null) })
      for (const a of answers) {
        if (!a || a.busy) continue
        const { node, from, status, first } = a
        // Rejections and evidence are read every 5th tick whether or not a block came: during a
        // stall (no quorum) they were not read until the chain moved again, so an equivocation
        // while it stood still showed up only in the next phase.
        const block = first instanceof RpcError || !first ? undefined : (first as Block)
        if (block) record(node, from, block, t)
        const readRejections = tick - (rejectionsReadAt.get(node.id) ?? -Infinity) >= 5
        if ((!block || status.height <= from) && !readRejections) continue
        const p = followUp(node, block ? from : from - 1, status, t, readRejections).finally(() => followUps.delete(node.id))
        followUps.set(node.id, p)
      }
      tick++
      const wait = intervalMs - (performance.now() - started)
      if (wait > 0) await new Promise((r) => setTimeout(r, wait))
    }
    await Promise.all(followUps.values())
  })()
  return probe
}

function rssMb(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) / 1024 : undefined
  } catch {
    return undefined
  }
}
