import { define } from '../../Check.js'
import { faultToleranceOf } from '../../targets/devnet-size.js'
import { heightAt } from './series.js'

/** Liveness: honest validators kept committing — at least `minCommitsPerSlot` per slot in the window — and each commit carries ≥ 2f + 1 distinct signers (3 of 4, 5 of 7). */
export const progress = define({
  name: 'progress',
  target: 'devnet',
  summary: 'honest validators commit ≥ minCommitsPerSlot (default 0.5) per slot, each commit signed by ≥ 2f + 1',
  params: { type: 'object', additionalProperties: false, properties: { minCommitsPerSlot: { type: 'number', minimum: 0, maximum: 1 } } },
  evaluate(series, window, body: { minCommitsPerSlot?: number }) {
    const ratio = body.minCommitsPerSlot ?? 0.5
    const start = heightAt(series.probe, window.from, series.honest)
    const end = heightAt(series.probe, window.to, series.honest)
    const need = Math.max(1, Math.floor(((window.to - window.from) / series.slotMs) * ratio))
    const quorum = 2 * faultToleranceOf(series.validators) + 1
    const thin = series.probe.blocks.filter((b) => b.height > start && b.height <= end && new Set(b.signers).size < quorum)
    return {
      ok: end - start >= need && thin.length === 0,
      observed: `${end - start} commits in ${window.to - window.from} ms (heights ${start} → ${end})${thin.length ? `; ${thin.length} with < ${quorum} signers (e.g. height ${thin[0]?.height})` : ''}`,
      expected: `≥ ${need} commits (${ratio} per ${series.slotMs} ms slot), each with ≥ ${quorum} signers`,
    }
  },
})
