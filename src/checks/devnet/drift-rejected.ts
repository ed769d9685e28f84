import { define } from '../../Check.js'
import { validatorId } from './series.js'
import { driftRejected as judge } from './checks.js'
import { contextOf } from './series.js'

/** The validator's proposals are refused for timestamp drift, and none of its blocks commits. */
export const driftRejected = define({
  name: 'driftRejected',
  target: 'devnet',
  summary: "the validator's proposals are refused for timestamp drift, and none of its blocks commits",
  params: { type: 'object', additionalProperties: false, required: ['proposer'], description: "The validator's proposals are refused for timestamp drift by the others, and none of its blocks commits (clock-skew drills).", properties: { proposer: validatorId } },
  evaluate: (series, window, body: { proposer: number }) => judge(contextOf(series, window), body),
})
