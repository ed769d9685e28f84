import { define } from '../../Check.js'
import { noFork as judge } from './checks.js'
import { contextOf } from './series.js'

/** Every honest validator holds the same block at every height (no fork). */
export const noFork = define({
  name: 'noFork',
  target: 'devnet',
  summary: 'every honest validator holds the same block at every height (no fork)',
  params: { const: true },
  evaluate: (series, window) => judge(contextOf(series, window)),
})
