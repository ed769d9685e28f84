import type { Address, Hex } from 'viem'
import type { CheckFn } from './types.js'

type Frame = { to?: Address; input?: Hex; error?: string; revertReason?: string; calls?: Frame[] }

/**
 * Safety: a failed dependency call never leaves partial state. For each keeper cycle that
 * succeeded, the call trace (`debug_traceTransaction`, callTracer) is searched for inner calls
 * that reverted — a failure the protocol swallowed. If one is found and the protocol's state
 * fingerprint (`protocol.state` views) changed in that transaction, the cycle went on with a
 * half-done operation: the check fails and names the call.
 */
export const cycleAtomic: CheckFn<'cycleAtomic'> = async (ctx, _body, phase) => {
  let traced = 0
  let reverted = 0
  for (const step of phase.steps) {
    if (step.type !== 'cycle' || !step.receipt) continue
    if (!step.ok) {
      reverted++
      continue
    }
    traced++
    const trace = await ctx.rpc.request<Frame>('debug_traceTransaction', [step.receipt.transactionHash, { tracer: 'callTracer' }])
    const swallowed = failedFrames(trace)
    if (swallowed.length === 0) continue
    const changed: string[] = []
    for (const [key, before] of Object.entries(step.pre ?? {})) {
      const after = step.post?.[key]
      if (key.startsWith('state:') && after !== undefined && before !== after) changed.push(`${key.slice(6)} ${before} → ${after}`)
    }
    if (changed.length > 0) {
      const f = swallowed[0] as Frame
      return {
        ok: false,
        observed: `${step.label}: call to ${f.to} (${f.input?.slice(0, 10)}) failed (${f.revertReason ?? f.error}) inside a successful cycle, and state changed: ${changed.join(', ')}`,
        expected: 'a failed dependency call reverts the whole cycle (no partial state change)',
      }
    }
  }
  return {
    ok: true,
    observed: `${traced} successful cycles with no swallowed dependency failure; ${reverted} reverted whole`,
    expected: 'a failed dependency call reverts the whole cycle (no partial state change)',
  }
}

function failedFrames(frame: Frame): Frame[] {
  const out: Frame[] = []
  for (const child of frame.calls ?? []) {
    if (child.error) out.push(child)
    out.push(...failedFrames(child))
  }
  return out
}
