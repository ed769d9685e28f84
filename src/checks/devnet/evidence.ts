import { define } from '../../Check.js'
import { validatorId } from './series.js'
import { evidence as judge } from './checks.js'
import { contextOf } from './series.js'

/** Equivocation evidence names the given validator, and nobody else. */
export const evidence = define({
  name: 'evidence',
  target: 'devnet',
  summary: 'equivocation evidence names the given validator, and nobody else',
  params: { type: 'object', additionalProperties: false, required: ['validator'], properties: { validator: validatorId } },
  evaluate: (series, window, body: { validator: number }) => judge(contextOf(series, window), body),
})
