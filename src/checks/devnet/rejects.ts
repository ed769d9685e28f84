import { define } from '../../Check.js'
import { rejects as judge } from './checks.js'
import { contextOf, validatorId } from './series.js'

/** Safety: a byzantine proposer's bad blocks are rejected within one slot and never committed (measured: `rejectionLatencyMs`). */
export const rejects = define({
  name: 'rejects',
  target: 'devnet',
  summary: "the proposer's bad blocks are rejected within one slot, none committed, the height still commits",
  params: { type: 'object', additionalProperties: false, required: ['proposer'], properties: { proposer: validatorId } },
  evaluate(series, window, body: { proposer: number }) {
    const { rejectionLatencyMs, ...outcome } = judge(contextOf(series, window), body)
    return { ...outcome, metrics: { rejectionLatencyMs } }
  },
})
