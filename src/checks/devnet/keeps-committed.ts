import { define } from '../../Check.js'
import { keepsCommitted as judge } from './checks.js'
import { contextOf } from './series.js'

/** No validator ever reports a lower height than before, crash-restarts included (durability). */
export const keepsCommitted = define({
  name: 'keepsCommitted',
  target: 'devnet',
  summary: 'no validator ever reports a lower height than before, crash-restarts included: a committed block is never forgotten',
  params: { const: true },
  evaluate: (series, window) => judge(contextOf(series, window)),
})
