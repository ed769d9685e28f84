import { num } from '../../Fault.js'
import { rpcFault } from './common.js'

/** Delays matching calls by `latencyMs` ± `jitterMs` (uniform, seeded). */
export const latency = rpcFault<{ methods: string[]; probability: number; latencyMs: number; jitterMs: number }>({
  type: 'rpc.latency',
  summary: 'Delay matching JSON-RPC calls by `latencyMs` ± `jitterMs`.',
  required: ['latencyMs'],
  extraSchema: { latencyMs: { type: 'number', minimum: 0, maximum: 600_000 }, jitterMs: { type: 'number', minimum: 0, maximum: 600_000, default: 0 } },
  parseExtra: (raw, where) => ({ latencyMs: num(raw, 'latencyMs', where, { min: 0, max: 600_000 }), jitterMs: num(raw, 'jitterMs', where, { min: 0, max: 600_000, default: 0 }) }),
  action: (p) => ({ type: 'latency', latencyMs: p.latencyMs, jitterMs: p.jitterMs }),
})
