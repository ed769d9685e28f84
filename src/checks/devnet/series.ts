import { maxValidators } from '../../targets/devnet-size.js'
import type { DevnetSeries, Window } from '../../Check.js'
import type { DevnetCheckContext } from './checks.js'

/** The devnet check bodies' view of a series and a window. */
export function contextOf(series: DevnetSeries, window: Window): DevnetCheckContext {
  return {
    probe: series.probe,
    window: { from: window.from, to: window.to },
    slotMs: series.slotMs,
    validators: series.validators,
    honest: series.honest,
    ...(window.revertedAt !== undefined ? { revertedAt: window.revertedAt } : {}),
  }
}

/** A validator id in a check's params; the loader checks it against `target.validators`. */
export const validatorId = { type: 'integer', minimum: 0, maximum: maxValidators - 1 }
