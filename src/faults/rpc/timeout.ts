import { rpcFault } from './common.js'

/** Matching calls never get an answer: the client's own timeout is what ends them. */
export const timeout = rpcFault({
  type: 'rpc.timeout',
  summary: 'Hang matching JSON-RPC calls until the client gives up.',
  params: {},
  action: () => ({ type: 'hang' }),
})
