import type { CheckResult, FaultRecord } from '../report/types.js'
import { decideVerdict } from './verdict.js'

/**
 * An experiment on a live target (the chaos API's `/chaos/inject` … `/chaos/revert`): one fault
 * applied on request and reverted on request (or by its schedule), with the same fault record
 * as a scenario's, then the recover phase of the experiment engine: the target's probe is
 * polled until it answers or the recovery window ends, and the verdict comes from the same
 * rules (`decideVerdict`): `held` when the probe was back within the window, else `failed`.
 * MTTR is measured as in a scenario: faults reverted → the check back.
 */
export type LiveExperiment = {
  record: FaultRecord
  /** The recover check, once judged. */
  check: CheckResult | null
  mttrMs: number | null
  verdict: 'active' | 'recovering' | 'held' | 'failed'
}

/** A live experiment's record as a fault is applied (`tStart` on the caller's clock). */
export function startLive(fault: { type: string; target: string; params: Record<string, unknown> }, tStart: number): LiveExperiment {
  return { record: { type: fault.type, target: fault.target, params: fault.params, tStart, tStop: null, evidence: null }, check: null, mttrMs: null, verdict: 'active' }
}

/** What a probe answers: back (`true`), not yet (`false`), or why it never can be (a string). */
export type ProbeAnswer = boolean | string

/**
 * The recover phase of a live experiment, after its fault was reverted at `record.tStop`:
 * polls `probe` every `pollMs` until it answers, gives up at once when it says it never can,
 * and ends when `windowMs` has passed or `stopped()` says the server is going away. Sets the
 * recover check, the MTTR and the verdict on `live`.
 */
export async function recoverLive(
  live: LiveExperiment,
  options: { probe(): Promise<ProbeAnswer>; windowMs: number; pollMs: number; now(): number; stopped(): boolean; what: string },
): Promise<void> {
  const revertedAt = live.record.tStop ?? options.now()
  const deadline = revertedAt + options.windowMs
  let answer: ProbeAnswer = false
  while (!options.stopped() && options.now() < deadline) {
    answer = await options.probe()
    if (answer !== false) break
    await new Promise((r) => setTimeout(r, options.pollMs))
  }
  const back = answer === true
  const backAt = options.now()
  live.check = {
    name: options.what,
    kind: 'liveness',
    phase: 'recover',
    ok: back,
    observed: back
      ? `answered ${backAt - revertedAt} ms after the revert`
      : typeof answer === 'string'
        ? answer
        : options.stopped()
          ? 'the control server stopped before recovery was seen'
          : `no answer through the proxy within the recovery window of ${options.windowMs} ms`,
    expected: `an answer within ${options.windowMs} ms of the revert`,
  }
  const { verdict } = decideVerdict([live.check], { recovered: back, aborted: undefined })
  live.verdict = verdict === 'held' ? 'held' : 'failed'
  live.mttrMs = back ? backAt - revertedAt : null
}
