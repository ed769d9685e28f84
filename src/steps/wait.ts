import { duration, limits } from '../scenario/schema-parts.js'
import { define } from '../Step.js'
import { parseDurationMs } from '../util/duration.js'

export type WaitBody = {
  /** How long the phase waits here, as the faults applied so far stay applied ("2s", "500ms"; at most the phase limit). */
  duration: string | number
}

/** How often a wait looks at the stop conditions (ms). */
const POLL_MS = 500

/**
 * Waits `duration` on the wall clock (a devnet's time goes on by itself), looking at the stop
 * conditions as it goes. With `fault` steps it makes a timed schedule of a devnet's inject phase:
 * apply, wait, revert, wait, apply another.
 */
export const wait = define<'wait', WaitBody>({
  kind: 'wait',
  summary: 'waits `duration` (devnet: the time between a `fault` step and the next), looking at the stop conditions as it goes',
  target: ['devnet'],
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['duration'],
    properties: { duration: duration(limits.phaseMs, 'How long the phase waits here') },
  },
  async run(_ctx, body, env) {
    const end = performance.now() + parseDurationMs(body.duration, `${env.where}.wait.duration`, { maxMs: limits.phaseMs })
    while (performance.now() < end) {
      await new Promise((r) => setTimeout(r, Math.max(0, Math.min(POLL_MS, end - performance.now()))))
      await env.stopCheck()
    }
  },
})
