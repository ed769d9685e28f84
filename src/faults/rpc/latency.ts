import * as P from '../../Params.js'
import { rpcFault } from './common.js'

/** Delays matching calls by `latencyMs` ± `jitterMs` (uniform, seeded). */
export const latency = rpcFault({
  type: 'rpc.latency',
  summary: 'Delay matching JSON-RPC calls by `latencyMs` ± `jitterMs`.',
  params: {
    latencyMs: P.number({ min: 0, max: 600_000, description: 'Added delay, in ms.' }),
    jitterMs: P.number({ min: 0, max: 600_000, default: 0, description: 'Uniform ± spread around `latencyMs`, in ms (seeded).' }),
  },
  action: (p) => ({ type: 'latency', latencyMs: p.latencyMs, jitterMs: p.jitterMs }),
})
