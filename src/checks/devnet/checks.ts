import type { DevnetSeries, Outcome, Window } from '../../Check.js'
import type { Probe } from '../../scenario/devnet-probe.js'
import { catchUp as catchUpCheck } from './catch-up.js'
import { driftRejected as driftRejectedCheck } from './drift-rejected.js'
import { evidence as evidenceCheck } from './evidence.js'
import { keepsCommitted as keepsCommittedCheck } from './keeps-committed.js'
import { memory as memoryCheck } from './memory.js'
import { mustStall as mustStallCheck } from './must-stall.js'
import { noFork as noForkCheck } from './no-fork.js'
import { progress as progressCheck } from './progress.js'
import { rejects as rejectsCheck } from './rejects.js'

/**
 * The devnet checks (one file each beside this one, registered in ../registry.ts) as plain
 * functions of one context, for code that judges a probe directly, as tests do.
 */
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

const seriesOf = (c: DevnetCheckContext): DevnetSeries => ({ probe: c.probe, slotMs: c.slotMs, validators: c.validators, honest: c.honest, inclusionMs: [] })
const windowOf = (c: DevnetCheckContext): Window => ({ phase: c.revertedAt === undefined ? 'inject' : 'recover', ...c.window, ...(c.revertedAt !== undefined ? { revertedAt: c.revertedAt } : {}) })
const plain = ({ metrics: _metrics, ...outcome }: Outcome): Outcome => outcome

export const progress = (c: DevnetCheckContext, body: { minCommitsPerSlot?: number }) => plain(progressCheck.evaluate(seriesOf(c), windowOf(c), body))
export const noFork = (c: DevnetCheckContext) => plain(noForkCheck.evaluate(seriesOf(c), windowOf(c), true))
export const mustStall = (c: DevnetCheckContext) => plain(mustStallCheck.evaluate(seriesOf(c), windowOf(c), true))
export const keepsCommitted = (c: DevnetCheckContext) => plain(keepsCommittedCheck.evaluate(seriesOf(c), windowOf(c), true))
export const driftRejected = (c: DevnetCheckContext, body: { proposer: number }) => plain(driftRejectedCheck.evaluate(seriesOf(c), windowOf(c), body))
export const evidence = (c: DevnetCheckContext, body: { validator: number }) => plain(evidenceCheck.evaluate(seriesOf(c), windowOf(c), body))
export const memory = (c: DevnetCheckContext, body: { maxRssMb: number }) => plain(memoryCheck.evaluate(seriesOf(c), windowOf(c), body))
export function catchUp(c: DevnetCheckContext, body: { node: number; withinMs: number }): Outcome & { catchUpMs: number | null } {
  const { metrics, ...outcome } = catchUpCheck.evaluate(seriesOf(c), windowOf(c), body)
  return { ...outcome, catchUpMs: metrics?.catchUpMs ?? null }
}
export function rejects(c: DevnetCheckContext, body: { proposer: number }): Outcome & { rejectionLatencyMs: number | null } {
  const { metrics, ...outcome } = rejectsCheck.evaluate(seriesOf(c), windowOf(c), body)
  return { ...outcome, rejectionLatencyMs: metrics?.rejectionLatencyMs ?? null }
}
