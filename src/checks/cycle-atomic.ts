import { define, valueOf } from '../Check.js'
import { type CycleTrace, type Frame, inWindow } from '../probes/fork.js'

const expected = 'a failed dependency call reverts the whole cycle (no partial state change)'

/**
 * Safety: a failed dependency call never leaves partial state. For each keeper cycle that
 * succeeded, the probe's call trace (`debug_traceTransaction`, callTracer) is searched for inner
 * calls that reverted — a failure the protocol swallowed. If one is found and the protocol's
 * state fingerprint (`protocol.state` views, read around the cycle) changed in that transaction,
 * the cycle went on with a half-done operation: the check fails and names the call.
 */
export const cycleAtomic = define({
  name: 'cycleAtomic',
  target: 'fork',
  summary: 'no dependency call fails inside a successful cycle() that changed state (no partial state)',
  params: { const: true },
  prepare: (body: true) => ({ params: body, reads: [{ kind: 'traces' }] }),
  evaluate(series, window) {
    const traces = new Map(valueOf<CycleTrace[]>(series.reads[0]).map((t) => [t.label, t.frame]))
    let traced = 0
    let reverted = 0
    for (const step of inWindow(series, window)) {
      if (step.type !== 'cycle' || !step.receipt) continue
      if (!step.ok) {
        reverted++
        continue
      }
      traced++
      const trace = traces.get(step.label)
      if (!trace) throw new Error(`${step.label}: no call trace was taken`)
      const swallowed = failedFrames(trace)
      if (swallowed.length === 0) continue
      const changed: string[] = []
      for (const [view, before] of Object.entries(step.before?.state ?? {})) {
        const after = step.after?.state[view]
        if (after !== undefined && before !== after) changed.push(`${view} ${before} → ${after}`)
      }
      if (changed.length > 0) {
        const f = swallowed[0] as Frame
        return {
          ok: false,
          observed: `${step.label}: call to ${f.to} (${f.input?.slice(0, 10) ?? 'calldata not traced'}) failed (${f.revertReason ?? f.error}) inside a successful cycle, and state changed: ${changed.join(', ')}`,
          expected,
        }
      }
    }
    return { ok: true, observed: `${traced} successful cycles with no swallowed dependency failure; ${reverted} reverted whole`, expected }
  },
})

function failedFrames(frame: Frame): Frame[] {
  const out: Frame[] = []
  for (const child of frame.calls ?? []) {
    if (child.error) out.push(child)
    out.push(...failedFrames(child))
  }
  return out
}
