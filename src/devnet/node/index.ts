/**
 * One validator node of a Tendermint-style BFT devnet whose execution layer is Anvil.
 * `startNode(config)` runs it in-process; `main.ts` is the process entry
 * (`node dist/src/devnet/node/main.js <config.json>`).
 */
export { type NodeConfig, parseNodeConfig } from './config.js'
export { type Consensus, type ConsensusConfig, createConsensus, defaultTimeouts, type Input, type Output } from './consensus.js'
export { AnvilEngine, type ExecutionEngine, type Head, type PayloadStatus } from './execution.js'
export { createJwt, RethEngine } from './engine-api.js'
export { type NodeHandle, type NodeStatus, type StartNodeOptions, startNode } from './node.js'
export type { Certificate, CommittedBlock, Evidence, Hex, Message, Payload, Proposal, Rejection, Vote } from './types.js'
