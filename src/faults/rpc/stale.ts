import { num } from '../../Fault.js'
import { rpcFault } from './common.js'

/** Answers as a node `blocks` behind the head: block number, latest block, calls and logs at latest. */
export const stale = rpcFault<{ methods: string[]; probability: number; blocks: number }>({
  type: 'rpc.stale',
  summary: 'Answer as a node `blocks` behind: eth_blockNumber, latest blocks, calls and logs at latest.',
  required: ['blocks'],
  extraSchema: { blocks: { type: 'integer', minimum: 1, maximum: 10_000 } },
  parseExtra: (raw, where) => ({ blocks: num(raw, 'blocks', where, { min: 1, max: 10_000, integer: true }) }),
  action: (p) => ({ type: 'stale', blocks: p.blocks }),
})
