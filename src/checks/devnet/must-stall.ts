import { define } from '../../Check.js'
import { mustStall as judge } from './checks.js'
import { contextOf } from './series.js'

/** Nothing commits while more than f validators are out (after one slot of grace). */
export const mustStall = define({
  name: 'mustStall',
  target: 'devnet',
  summary: 'nothing commits while more than f validators are out (after one slot of grace)',
  params: { const: true },
  evaluate: (series, window) => judge(contextOf(series, window)),
})
