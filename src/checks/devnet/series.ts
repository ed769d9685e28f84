import type { Probe } from '../../scenario/devnet-probe.js'
import { maxValidators } from '../../targets/devnet-size.js'

/** A validator id in a check's params; the loader checks it against `target.validators`. */
export const validatorId = { type: 'integer', minimum: 0, maximum: maxValidators - 1 }

/** The highest height any of `nodes` reported by time `t` (ms on the probe clock). */
export const heightAt = (probe: Probe, t: number, nodes: number[]) => {
  let best = 0
  for (const s of probe.samples) if (s.t <= t) for (const n of nodes) best = Math.max(best, s.heights[n] ?? 0)
  return best
}
