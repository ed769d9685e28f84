import { ForkchaosError, PrerequisiteMissingError } from '../errors.js'
import type { CheckResult, Verdict } from '../report/types.js'

/**
 * The verdict rules (../shared/DESIGN.md):
 * - aborted: the stop condition tripped (faults were reverted at once);
 * - failed: a safety check broke at any time, or the checks were not back after recovery;
 * - degraded: only liveness broke, during inject, and everything held again after recovery;
 * - held: every check held in every phase.
 * (`error` and `skipped` come from `verdictOfError`: the experiment did not run to its end.)
 */
export function decideVerdict(results: CheckResult[], run: { recovered: boolean; aborted: string | undefined }): { verdict: Verdict; reason: string } {
  if (run.aborted) return { verdict: 'aborted', reason: run.aborted }
  const safety = results.find((r) => !r.ok && r.kind === 'safety')
  if (safety) return { verdict: 'failed', reason: `safety check \`${safety.name}\` broke in ${safety.phase}: ${safety.observed} (expected ${safety.expected})` }
  if (!run.recovered) {
    const stuck = results.find((r) => !r.ok && r.phase === 'recover')
    return { verdict: 'failed', reason: `did not recover: \`${stuck?.name}\` still broken after the recover steps: ${stuck?.observed}` }
  }
  const liveness = results.filter((r) => !r.ok && r.kind === 'liveness')
  if (liveness.length > 0)
    return { verdict: 'degraded', reason: `liveness broke during inject (${liveness.map((r) => `\`${r.name}\``).join(', ')}) and recovered` }
  return { verdict: 'held', reason: `all ${results.length} checks held through baseline, inject and recover` }
}

/**
 * The baseline rule, the same on every target: the steady state must hold before anything is
 * broken. A safety check broken at baseline is `failed` (DESIGN.md: "a safety check broke at any
 * time"); only liveness broken is `aborted` (nothing to learn, no fault injected). `undefined`:
 * the baseline held, go on.
 */
export function baselineVerdict(results: CheckResult[]): { verdict: 'failed' | 'aborted'; reason: string } | undefined {
  const broken = results.filter((r) => !r.ok)
  if (broken.length === 0) return undefined
  const safety = broken.find((r) => r.kind === 'safety')
  if (safety) return { verdict: 'failed', reason: `safety check \`${safety.name}\` broke at baseline, before any fault: ${safety.observed}` }
  const first = broken[0] as CheckResult
  return { verdict: 'aborted', reason: `steady state did not hold at baseline, so no fault was injected: \`${first.name}\` observed ${first.observed} (expected ${first.expected})` }
}

/**
 * The verdict of an experiment that threw: `skipped` when a prerequisite is missing on this
 * machine (with the reason and the install command), otherwise `error`. Bad input is not
 * judged here: the runners rethrow it (exit 2).
 */
export function verdictOfError(error: unknown): { verdict: 'skipped' | 'error'; reason: string } {
  if (error instanceof PrerequisiteMissingError) return { verdict: 'skipped', reason: `${error.shortMessage} Install it: ${error.install}` }
  return { verdict: 'error', reason: `the experiment could not run: ${error instanceof ForkchaosError ? error.shortMessage : (error as Error).message}` }
}
