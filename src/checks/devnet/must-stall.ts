import { define } from '../../Check.js'
import { heightAt } from './series.js'

/** Safety: with more than f validators down or split, nothing commits (after one slot of grace). */
export const mustStall = define({
  name: 'mustStall',
  target: 'devnet',
  summary: 'nothing commits while more than f validators are out (after one slot of grace)',
  params: { const: true },
  evaluate(series, window) {
    const from = window.from + series.slotMs
    const start = heightAt(series.probe, from, series.honest)
    const end = heightAt(series.probe, window.to, series.honest)
    return { ok: end === start, observed: `${end - start} commits between ${from} and ${window.to} ms`, expected: 'no commit while more than f validators are out' }
  },
})
