import { define } from '../../Check.js'
import { memory as judge } from './checks.js'
import { contextOf } from './series.js'

/** No validator process grows past maxRssMb in the window. */
export const memory = define({
  name: 'memory',
  target: 'devnet',
  summary: 'no validator process grows past maxRssMb in the window',
  params: { type: 'object', additionalProperties: false, required: ['maxRssMb'], properties: { maxRssMb: { type: 'number', exclusiveMinimum: 0, maximum: 65_536 } } },
  evaluate: (series, window, body: { maxRssMb: number }) => judge(contextOf(series, window), body),
})
