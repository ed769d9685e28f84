import * as P from '../../Params.js'
import { rpcFault } from './common.js'

/** In a batch, each call fails on its own with `failProbability`; the rest are answered. */
export const partial = rpcFault({
  type: 'rpc.partial',
  summary: 'Fail each element of a batch independently with `failProbability` (partial reads).',
  params: { failProbability: P.number({ min: 0, max: 1, description: 'Chance that one call of a batch fails (seeded).' }) },
  action: (p) => ({ type: 'partial', failProbability: p.failProbability }),
})
