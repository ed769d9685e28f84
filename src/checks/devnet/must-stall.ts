import { define } from '../../Check.js'
import { faultToleranceOf } from '../../targets/devnet-size.js'
import { heightAt } from './series.js'

/**
 * Safety: with more than f validators down or split, nothing commits — after one slot of grace,
 * and except the one height that was in flight when the fault landed: its precommits were signed
 * before it (by validators that are down now), and they can still arrive late on a busy machine.
 * That one is excused only with a full certificate (≥ 2f + 1 distinct signers), so a build that
 * commits without a quorum still fails, and so does a second commit. Where signers are not
 * visible (endpoints over eth_*), nothing is excused.
 */
export const mustStall = define({
  name: 'mustStall',
  target: 'devnet',
  summary: 'nothing commits while more than f validators are out (after one slot of grace; the height in flight at the fault, fully certified, excused)',
  params: { const: true },
  evaluate(series, window) {
    const from = window.from + series.slotMs
    const start = heightAt(series.probe, from, series.honest)
    const end = heightAt(series.probe, window.to, series.honest)
    const quorum = 2 * faultToleranceOf(series.validators) + 1
    const signersOf = (h: number) => Math.max(0, ...series.probe.blocks.filter((b) => b.height === h && series.honest.includes(b.node)).map((b) => new Set(b.signers).size))
    const firstSigners = end > start ? signersOf(start + 1) : 0
    const inFlight = firstSigners >= quorum ? 1 : 0
    const commits = end - start
    return {
      ok: commits - inFlight === 0,
      observed: `${commits} commits between ${from} and ${window.to} ms${inFlight ? ` (height ${start + 1}, in flight at the fault, signed by ${firstSigners}: excused)` : ''}`,
      expected: 'no commit while more than f validators are out',
    }
  },
})
