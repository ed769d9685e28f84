import { define } from '../Check.js'
import { inWindow } from '../probes/fork.js'

/** Liveness: every call of the keeper entry point in the window succeeded (and at least one ran). */
export const cyclesSucceed = define({
  name: 'cyclesSucceed',
  target: 'fork',
  summary: 'every cycle() in the phase succeeded',
  params: { const: true },
  evaluate(series, window) {
    const cycles = inWindow(series, window).filter((s) => s.type === 'cycle')
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
  },
})
