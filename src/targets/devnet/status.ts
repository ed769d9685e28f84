import type { NodeStatus } from '../../devnet/node/node.js'
import { createRpc } from '../rpc.js'

/**
 * A validator's `fc_status`, on a short timeout: a wedged (SIGSTOPped) validator must not stall
 * its caller. A module of its own, so a fault that reads it does not load the devnet's launcher
 * (and viem's accounts) when `validate` imports the fault registry.
 */
export function nodeStatus(node: { rpcUrl: string }): Promise<NodeStatus> {
  return createRpc(node.rpcUrl, { owned: true, timeoutMs: 400 }).request<NodeStatus>('fc_status')
}
