import type { CheckFn } from './types.js'

/** Liveness: every call of the keeper entry point in the phase succeeded (and at least one ran). */
export const cyclesSucceed: CheckFn<'cyclesSucceed'> = async (_ctx, _body, phase) => {
  const cycles = phase.steps.filter((s) => s.type === 'cycle')
  const failed = cycles.filter((s) => !s.ok)
  const first = failed[0]
  return {
    ok: cycles.length > 0 && failed.length === 0,
    observed:
      cycles.length === 0
        ? 'no cycle ran in this phase'
        : `${cycles.length - failed.length}/${cycles.length} cycles succeeded${first ? `; first revert: ${first.reason ?? 'no reason'}` : ''}`,
    expected: 'every cycle succeeds',
  }
}
