import * as fs from 'node:fs'
import type { Devnet, NodeStatus } from '../targets/devnet.js'

/**
 * Samples a devnet continuously (every `intervalMs`): each validator's height and head, every
 * committed block each validator reports (hash, proposer, certificate), rejections and
 * equivocation evidence, and the resident memory of every validator process. Checks read
 * these series over a phase's window; nothing is asserted here.
 */
export type Sample = { t: number; heights: (number | null)[] }
export type BlockSeen = { node: number; height: number; hash: string; stateRoot: string; proposer: number; signers: number[]; t: number }
export type Rejection = { node: number; height: number; round: number; proposer: number; layer: string; reason: string; field?: string; latencyMs: number; at: number }
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

type Block = { height: number; hash: string; stateRoot: string; proposer: number; certificate?: { votes?: { validator: number }[] } }

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
  let running = true
  let tick = 0
  const loop = (async () => {
    while (running) {
      const started = performance.now()
      const statuses = await devnet.status()
      const t = now()
      probe.samples.push({ t, heights: statuses.map((s) => ('down' in s ? null : (s as NodeStatus).height)) })
      await Promise.all(
        devnet.nodes.map(async (node) => {
          const status = statuses[node.id]
          if (!node.running || !status || 'down' in status) return
          const from = (fetched.get(node.id) ?? 0) + 1
          for (let h = from; h <= status.height && h < from + 50; h++) {
            try {
              const b = await node.rpc.request<Block | null>('fc_block', [h])
              if (!b) break
              probe.blocks.push({ node: node.id, height: h, hash: b.hash, stateRoot: b.stateRoot, proposer: b.proposer, signers: (b.certificate?.votes ?? []).map((v) => v.validator), t })
              fetched.set(node.id, h)
            } catch {
              break
            }
          }
          if (tick % 5 === 0) {
            try {
              const rej = await node.rpc.request<Omit<Rejection, 'node'>[]>('fc_rejections')
              for (const r of rej.slice(seenRejections.get(node.id) ?? 0)) probe.rejections.push({ ...r, node: node.id })
              seenRejections.set(node.id, rej.length)
              const ev = await node.rpc.request<Omit<Evidence, 'node'>[]>('fc_evidence')
              for (const e of ev.slice(seenEvidence.get(node.id) ?? 0)) probe.evidence.push({ node: node.id, validator: e.validator, height: e.height, round: e.round, type: e.type })
              seenEvidence.set(node.id, ev.length)
            } catch {}
            for (const pid of [node.pid]) {
              const mb = rssMb(pid)
              if (mb !== undefined) probe.rssMb.push({ t, node: node.id, mb })
            }
          }
        }),
      )
      tick++
      const wait = intervalMs - (performance.now() - started)
      if (wait > 0) await new Promise((r) => setTimeout(r, wait))
    }
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
