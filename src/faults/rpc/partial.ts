import { num } from '../../Fault.js'
import { rpcFault } from './common.js'

/** In a batch, each call fails on its own with `failProbability`; the rest are answered. */
export const partial = rpcFault<{ methods: string[]; probability: number; failProbability: number }>({
  type: 'rpc.partial',
  summary: 'Fail each element of a batch independently with `failProbability` (partial reads).',
  required: ['failProbability'],
  extraSchema: { failProbability: { type: 'number', minimum: 0, maximum: 1 } },
  parseExtra: (raw, where) => ({ failProbability: num(raw, 'failProbability', where, { min: 0, max: 1 }) }),
  action: (p) => ({ type: 'partial', failProbability: p.failProbability }),
})
