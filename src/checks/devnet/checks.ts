import type { Outcome } from '../types.js'
import type { Probe } from '../../scenario/devnet-probe.js'
import { faultToleranceOf } from '../../targets/devnet-size.js'

/** What a devnet check sees: the probe's series, the phase window, who is honest. */
export type DevnetCheckContext = {
  probe: Probe
  window: { from: number; to: number }
  slotMs: number
  /** Validators in the devnet, n = 3f + 1: a commit needs 2f + 1 signers. */
  validators: number
  honest: number[]
  /** Revert time of the faults (recover phase), ms on the probe clock. */
  revertedAt?: number
}

const heightAt = (probe: Probe, t: number, nodes: number[]) => {
  let best = 0
  for (const s of probe.samples) if (s.t <= t) for (const n of nodes) best = Math.max(best, s.heights[n] ?? 0)
  return best
}

/** Liveness: honest validators kept committing — at least `minCommitsPerSlot` per slot in the window — and each commit carries ≥ 2f + 1 distinct signers (3 of 4, 5 of 7). */
export function progress(c: DevnetCheckContext, body: { minCommitsPerSlot?: number }): Outcome {
  const ratio = body.minCommitsPerSlot ?? 0.5
  const start = heightAt(c.probe, c.window.from, c.honest)
  const end = heightAt(c.probe, c.window.to, c.honest)
  const need = Math.max(1, Math.floor(((c.window.to - c.window.from) / c.slotMs) * ratio))
  const quorum = 2 * faultToleranceOf(c.validators) + 1
  const thin = c.probe.blocks.filter((b) => b.height > start && b.height <= end && new Set(b.signers).size < quorum)
  return {
    ok: end - start >= need && thin.length === 0,
    observed: `${end - start} commits in ${c.window.to - c.window.from} ms (heights ${start} → ${end})${thin.length ? `; ${thin.length} with < ${quorum} signers (e.g. height ${thin[0]?.height})` : ''}`,
    expected: `≥ ${need} commits (${ratio} per ${c.slotMs} ms slot), each with ≥ ${quorum} signers`,
  }
}

/** Safety: every honest validator holds the same block at every height it reports, at all times. */
export function noFork(c: DevnetCheckContext): Outcome {
  const byHeight = new Map<number, Map<string, number[]>>()
  for (const b of c.probe.blocks) {
    if (!c.honest.includes(b.node)) continue
    const hashes = byHeight.get(b.height) ?? new Map()
    hashes.set(b.hash, [...(hashes.get(b.hash) ?? []), b.node])
    byHeight.set(b.height, hashes)
  }
  const forks = [...byHeight].filter(([, hashes]) => hashes.size > 1)
  const first = forks[0]
  return {
    ok: forks.length === 0,
    observed: first
      ? `${forks.length} heights with conflicting blocks; height ${first[0]}: ${[...first[1]].map(([h, nodes]) => `${h.slice(0, 10)}… on ${nodes.join(',')}`).join(' vs ')}`
      : `${byHeight.size} heights, one block each across honest validators`,
    expected: 'one block per height on every honest validator',
  }
}

/** Safety: with more than f validators down or split, nothing commits (after one slot of grace). */
export function mustStall(c: DevnetCheckContext): Outcome {
  const from = c.window.from + c.slotMs
  const start = heightAt(c.probe, from, c.honest)
  const end = heightAt(c.probe, c.window.to, c.honest)
  return { ok: end === start, observed: `${end - start} commits between ${from} and ${c.window.to} ms`, expected: 'no commit while more than f validators are out' }
}

/**
 * Safety (durability): no validator ever reports a lower height than it reported before, a
 * crash-restart included — a committed block is never forgotten. A validator restarted from its
 * store resumes at least where it stopped; one that lost its store comes back lower.
 */
export function keepsCommitted(c: DevnetCheckContext): Outcome {
  const best = new Map<number, { height: number; t: number }>()
  const drops: { node: number; from: number; to: number; t: number }[] = []
  for (const s of c.probe.samples) {
    if (s.t > c.window.to) break
    s.heights.forEach((h, node) => {
      if (h === null) return
      const before = best.get(node)
      if (before && h < before.height) drops.push({ node, from: before.height, to: h, t: s.t })
      if (!before || h > before.height) best.set(node, { height: h, t: s.t })
    })
  }
  const inWindow = drops.filter((d) => d.t >= c.window.from)
  const first = inWindow[0]
  return {
    ok: inWindow.length === 0,
    observed: first
      ? `validator ${first.node} went back from height ${first.from} to ${first.to} at ${first.t} ms (${inWindow.length} samples lower than before)`
      : `no validator reported a lower height than before (${best.size} validators sampled)`,
    expected: 'every validator resumes at least at the height it had committed',
  }
}

/** Liveness: a recovered validator reaches the others' height within `withinMs` of the revert. */
export function catchUp(c: DevnetCheckContext, body: { node: number; withinMs: number }): Outcome & { catchUpMs: number | null } {
  const at = c.revertedAt ?? c.window.from
  const others = c.honest.filter((n) => n !== body.node)
  const target = heightAt(c.probe, at, others)
  const sample = c.probe.samples.find((s) => s.t >= at && (s.heights[body.node] ?? -1) >= target)
  const catchUpMs = sample ? sample.t - at : null
  return {
    ok: catchUpMs !== null && catchUpMs <= body.withinMs,
    observed: catchUpMs === null ? `validator ${body.node} did not reach height ${target}` : `validator ${body.node} reached height ${target} ${catchUpMs} ms after heal`,
    expected: `≤ ${body.withinMs} ms`,
    catchUpMs,
  }
}

/**
 * Safety: the byzantine proposer's bad blocks are rejected within one slot: honest validators
 * record the rejection (naming the proposer and the layer), none of them commits a block that
 * proposer built during the window, and the height still commits within one slot.
 */
export function rejects(c: DevnetCheckContext, body: { proposer: number }): Outcome & { rejectionLatencyMs: number | null } {
  const rejections = c.probe.rejections.filter((r) => c.honest.includes(r.node) && r.proposer === body.proposer)
  const committedBad = c.probe.blocks.filter((b) => c.honest.includes(b.node) && b.proposer === body.proposer && b.t >= c.window.from && b.t <= c.window.to)
  const latency = rejections.length ? Math.max(...rejections.map((r) => r.latencyMs)) : null
  // The height a bad proposal was for must still commit within one slot of its rejection
  // (probe samples every 100 ms, so allow one sample of slack).
  let worstCommitDelay = 0
  for (const r of rejections) {
    const committed = c.probe.firstCommitAt(r.height)
    const rejectedAt = r.at - c.probe.epochStartMs
    worstCommitDelay = Math.max(worstCommitDelay, committed === undefined ? Number.POSITIVE_INFINITY : committed - rejectedAt)
  }
  const layers = [...new Set(rejections.map((r) => `${r.layer}${r.field ? `/${r.field}` : ''}`))].join(', ')
  return {
    ok: rejections.length > 0 && committedBad.length === 0 && latency !== null && latency <= c.slotMs && worstCommitDelay <= c.slotMs + 100,
    observed:
      `${rejections.length} rejections of validator ${body.proposer}'s proposals (${layers || 'none'}), worst latency ${latency ?? '—'} ms, ` +
      `height committed ${Number.isFinite(worstCommitDelay) ? `${Math.round(worstCommitDelay)} ms` : 'never'} after the rejection at worst; ` +
      `${committedBad.length} blocks by validator ${body.proposer} committed by honest validators`,
    expected: `every bad proposal rejected within ${c.slotMs} ms, none committed, the height committed within one slot`,
    rejectionLatencyMs: latency,
  }
}

/**
 * Safety, for a validator whose clock is off by more than the drift bound: the others refuse
 * its proposals for timestamp drift (at least one refusal in the window: the skew was seen),
 * and none of them commits a block it proposed in the window (after one slot of grace for a
 * proposal made before the skew).
 */
export function driftRejected(c: DevnetCheckContext, body: { proposer: number }): Outcome {
  const others = c.honest.filter((n) => n !== body.proposer)
  const inWindow = (t: number) => t >= c.window.from && t <= c.window.to
  const refused = c.probe.rejections.filter(
    (r) => others.includes(r.node) && r.proposer === body.proposer && r.field === 'timestamp' && /from the local clock/.test(r.reason) && inWindow(r.at - c.probe.epochStartMs),
  )
  const committed = c.probe.blocks.filter((b) => others.includes(b.node) && b.proposer === body.proposer && b.t >= c.window.from + c.slotMs && b.t <= c.window.to)
  const heights = [...new Set(committed.map((b) => b.height))]
  return {
    ok: refused.length > 0 && committed.length === 0,
    observed:
      `${refused.length} refusals of validator ${body.proposer}'s proposals for timestamp drift (by ${[...new Set(refused.map((r) => r.node))].join(', ') || 'nobody'})` +
      `${refused[0] ? `, e.g. "${refused[0].reason}"` : ''}; ${heights.length} of its blocks committed${heights.length ? ` (heights ${heights.slice(0, 5).join(', ')})` : ''}`,
    expected: 'its proposals refused for timestamp drift, none of its blocks committed',
  }
}

/** Equivocation is caught and pinned on the right validator — and on nobody else. */
export function evidence(c: DevnetCheckContext, body: { validator: number }): Outcome {
  const honestEvidence = c.probe.evidence.filter((e) => c.honest.includes(e.node))
  const named = new Set(honestEvidence.map((e) => e.validator))
  const others = [...named].filter((v) => v !== body.validator)
  return {
    ok: named.has(body.validator) && others.length === 0,
    observed: `evidence names validator(s) ${[...named].join(', ') || 'none'} (${honestEvidence.length} records)`,
    expected: `evidence against validator ${body.validator} only`,
  }
}

/** Liveness: no validator process grows past `maxRssMb` during the window. */
export function memory(c: DevnetCheckContext, body: { maxRssMb: number }): Outcome {
  const inWindow = c.probe.rssMb.filter((r) => r.t >= c.window.from && r.t <= c.window.to)
  const worst = inWindow.reduce((a, r) => (r.mb > a.mb ? r : a), { t: 0, node: -1, mb: 0 })
  return { ok: inWindow.length > 0 && worst.mb <= body.maxRssMb, observed: `max RSS ${worst.mb.toFixed(0)} MB (validator ${worst.node})`, expected: `≤ ${body.maxRssMb} MB` }
}
