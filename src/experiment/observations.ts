import type { Observations } from '../Fault.js'
import type { Evidence, Probe, Rejection } from '../scenario/devnet-probe.js'

/**
 * What the devnet probe saw while the faults were active (the inject window, ms on the probe
 * clock), for each devnet fault's `detect`: per validator its height at the window's start and
 * end and how many samples it did not answer; the rejections recorded in the window; the
 * equivocation evidence; and the commit rate against the baseline's.
 */
export type DevnetObservations = {
  window: { from: number; to: number }
  slotMs: number
  /** Per validator; `signed`: how many of the window's committed blocks carry its vote. */
  validators: { id: number; heightFrom: number | null; heightTo: number | null; unanswered: number; samples: number; signed: number }[]
  /** Blocks committed in the window (distinct heights, as the probe read them). */
  blocks: number
  rejections: Rejection[]
  evidence: Evidence[]
  /** Commits by honest validators in the window, and per slot at baseline (null: no baseline window). */
  commits: number
  baselinePerSlot: number | null
}

/** At most this many rejections and evidence items are kept per observation (the probe keeps them all). */
const KEEP = 200

export function devnetObservations(probe: Probe, window: { from: number; to: number }, baseline: { from: number; to: number } | undefined, slotMs: number, honest: number[]): DevnetObservations {
  const inWindow = probe.samples.filter((s) => s.t >= window.from && s.t <= window.to)
  const n = probe.samples[0]?.heights.length ?? 0
  const heightAt = (t: number, nodes: number[]) => {
    let best = 0
    for (const s of probe.samples) if (s.t <= t) for (const v of nodes) best = Math.max(best, s.heights[v] ?? 0)
    return best
  }
  const lastKnown = (id: number, t: number) => {
    let h: number | null = null
    for (const s of probe.samples) if (s.t <= t && s.heights[id] !== null && s.heights[id] !== undefined) h = s.heights[id] as number
    return h
  }
  // One certificate per height committed in the window (by the honest validators' heights): the first copy the probe read.
  const [low, high] = [heightAt(window.from, honest), heightAt(window.to, honest)]
  const byHeight = new Map<number, number[]>()
  for (const b of probe.blocks) if (b.height > low && b.height <= high && !byHeight.has(b.height)) byHeight.set(b.height, b.signers)
  const perSlot = baseline && baseline.to > baseline.from ? ((heightAt(baseline.to, honest) - heightAt(baseline.from, honest)) * slotMs) / (baseline.to - baseline.from) : null
  return {
    window,
    slotMs,
    validators: Array.from({ length: n }, (_, id) => ({
      id,
      heightFrom: lastKnown(id, window.from),
      heightTo: lastKnown(id, window.to),
      unanswered: inWindow.filter((s) => s.heights[id] === null || s.heights[id] === undefined).length,
      samples: inWindow.length,
      signed: [...byHeight.values()].filter((signers) => signers.includes(id)).length,
    })),
    blocks: byHeight.size,
    rejections: probe.rejections.filter((r) => r.at - probe.epochStartMs >= window.from - slotMs && r.at - probe.epochStartMs <= window.to).slice(0, KEEP),
    evidence: probe.evidence.slice(0, KEEP),
    commits: high - low,
    baselinePerSlot: perSlot === null ? null : Math.round(perSlot * 100) / 100,
  }
}

/**
 * What the devnet showed while a fault was active, focused on the validators it acts on
 * (`focus`; all when empty): those that stopped answering or stalled while the others went on,
 * proposals the others rejected (with the layer and reason), its own refusals of theirs,
 * evidence against it, and the network's commit rate against the baseline's. `null` when the
 * observations come from a fork (no devnet probe).
 */
export function seenOnDevnet(observations: Observations, focus: readonly number[] = []): string | null {
  const o = observations.devnet
  if (!o) return null
  const ids = focus.length > 0 ? focus : o.validators.map((v) => v.id)
  const others = o.validators.filter((v) => !ids.includes(v.id))
  const othersTo = Math.max(0, ...others.map((v) => v.heightTo ?? 0))
  const seen: string[] = []
  for (const id of ids) {
    const v = o.validators[id]
    if (!v) continue
    if (v.unanswered > 0) seen.push(`validator ${id} did not answer ${v.unanswered} of ${v.samples} probe samples`)
    if (focus.length > 0 && o.blocks > 0 && v.signed < o.blocks) seen.push(`validator ${id} voted in ${v.signed} of the ${o.blocks} blocks committed`)
    if (v.heightFrom !== null && v.heightTo !== null && focus.length > 0 && others.length > 0) {
      if (v.heightTo <= v.heightFrom && othersTo > v.heightFrom) seen.push(`validator ${id} stalled at height ${v.heightTo} while the others reached ${othersTo}`)
      else if (othersTo - v.heightTo >= 2) seen.push(`validator ${id} ended the window ${othersTo - v.heightTo} blocks behind (${v.heightTo} vs ${othersTo})`)
    }
    const against = o.rejections.filter((r) => r.proposer === id && r.node !== id)
    if (against.length > 0) seen.push(`${against.length} of validator ${id}'s proposals rejected by ${[...new Set(against.map((r) => r.node))].join(', ')} (${[...new Set(against.map((r) => `${r.layer}${r.field ? `/${r.field}` : ''}: ${r.reason}`))].slice(0, 2).join('; ')})`)
    const refused = focus.length > 0 ? o.rejections.filter((r) => r.node === id && r.proposer !== id) : []
    if (refused.length > 0) seen.push(`validator ${id} refused ${refused.length} proposals of others (${[...new Set(refused.map((r) => r.reason))].slice(0, 2).join('; ')})`)
    const evidence = o.evidence.filter((e) => e.validator === id)
    if (evidence.length > 0) seen.push(`${evidence.length} ${[...new Set(evidence.map((e) => e.type))].join('/')} evidence against validator ${id} (recorded by ${[...new Set(evidence.map((e) => e.node))].join(', ')}; first at height ${evidence[0]?.height})`)
  }
  const ms = o.window.to - o.window.from
  const rate = ms > 0 ? Math.round(((o.commits * o.slotMs) / ms) * 100) / 100 : 0
  seen.push(`the network committed ${o.commits} blocks in ${ms} ms (${rate} per slot${o.baselinePerSlot === null ? '' : `; ${o.baselinePerSlot} at baseline`})`)
  return seen.slice(0, 8).join('; ')
}
