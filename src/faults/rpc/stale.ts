import * as P from '../../Params.js'
import { rpcFault } from './common.js'

/** Answers as a node `blocks` behind the head: block number, latest block, calls and logs at latest. */
export const stale = rpcFault({
  type: 'rpc.stale',
  summary: 'Answer as a node `blocks` behind: eth_blockNumber, latest blocks, calls and logs at latest.',
  params: { blocks: P.integer({ min: 1, max: 10_000, description: 'How far behind the head the answers are.' }) },
  action: (p) => ({ type: 'stale', blocks: p.blocks }),
})
