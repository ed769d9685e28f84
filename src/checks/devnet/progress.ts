import { define } from '../../Check.js'
import { progress as judge } from './checks.js'
import { contextOf } from './series.js'

/** Honest validators commit ≥ minCommitsPerSlot (default 0.5) per slot, each commit signed by ≥ 2f + 1. */
export const progress = define({
  name: 'progress',
  target: 'devnet',
  summary: 'honest validators commit ≥ minCommitsPerSlot (default 0.5) per slot, each commit signed by ≥ 2f + 1',
  params: { type: 'object', additionalProperties: false, properties: { minCommitsPerSlot: { type: 'number', minimum: 0, maximum: 1 } } },
  evaluate: (series, window, body: { minCommitsPerSlot?: number }) => judge(contextOf(series, window), body),
})
