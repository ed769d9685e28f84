/**
 * The data one validator node exchanges with its peers, its store and its execution layer.
 * Heights are execution block numbers: height `h` decides block `h` (genesis is 0).
 */
export type Hex = `0x${string}`

/**
 * An execution payload as the consensus layer sees it, shaped like the Engine API's
 * `ExecutionPayload` but cut to the fields a validator compares after re-executing it.
 * All hex is lowercase, so that two nodes encode the same payload to the same bytes.
 */
export type Payload = {
  number: number
  parentHash: Hex
  timestampS: number
  feeRecipient: Hex
  /** Raw signed transactions, in block order. */
  transactions: Hex[]
  blockHash: Hex
  stateRoot: Hex
  receiptsRoot: Hex
  /**
   * Engine API devnets only (absent on Anvil): the rest of the execution payload, which a
   * peer's execution client needs for `newPayload`. Not part of the value id: the block hash
   * already commits to every field of it. At most `frameLimits.maxEnvelopeBytes` as JSON.
   */
  execution?: ExecutionEnvelope
}

/**
 * The Engine API execution payload of a block without its transactions (`Payload.transactions`
 * holds them), its `executionRequests` (Prague; V4) and the Engine API version it speaks.
 */
export type ExecutionEnvelope = {
  version: 3 | 4
  payload: Record<string, Hex | unknown[]>
  executionRequests: Hex[]
}

/** The payload fields a re-execution can disagree on, in the order they are checked. */
export type PayloadField =
  | 'number'
  | 'parentHash'
  | 'timestamp'
  | 'transactions'
  | 'stateRoot'
  | 'receiptsRoot'
  | 'blockHash'

/** Fields a consensus-layer check can reject a proposal on, besides the payload fields. */
export type RejectionField = PayloadField | 'proposer' | 'signature'

export type VoteType = 'prevote' | 'precommit'

/** A signed prevote or precommit. `value` is a payload's value id, or null for nil. */
export type Vote = {
  type: VoteType
  height: number
  round: number
  value: Hex | null
  validator: number
  signature: Hex
}

/**
 * A signed proposal. `polRound` is the round of the proof of lock the proposer re-proposes
 * from (Tendermint's `validRound`), -1 for a fresh value.
 */
export type Proposal = {
  height: number
  round: number
  polRound: number
  proposer: number
  payload: Payload
  signature: Hex
}

/** ≥ 2f+1 precommits for one block in one round: what makes a block final. */
export type Certificate = {
  round: number
  votes: { validator: number; signature: Hex }[]
}

/** A committed block as stored and as served to a syncing peer. */
export type CommittedBlock = {
  payload: Payload
  certificate: Certificate
}

/** One frame on a p2p link (one line of JSON). */
export type Message =
  | { t: 'hello'; id: number; chainId: number; network?: string }
  | { t: 'proposal'; proposal: Proposal }
  | { t: 'vote'; vote: Vote }
  /** Mempool gossip; `senders[i]` is the sender the gossiping node recovered for `txs[i]`. */
  | { t: 'tx'; txs: Hex[]; senders?: Hex[] }
  | { t: 'status'; height: number; headHash: Hex }
  | { t: 'syncRequest'; fromHeight: number; toHeight: number }
  | { t: 'syncResponse'; blocks: CommittedBlock[] }

/** Why this node refused a proposal, as `fc_rejections` lists it. */
export type Rejection = {
  height: number
  round: number
  proposer: number
  layer: 'execution' | 'consensus'
  reason: string
  field: RejectionField
  /** From receiving the proposal to deciding it is invalid. */
  latencyMs: number
  /** Wall clock (ms since the epoch) of the decision. */
  at: number
  /** An Engine API client's own answer to `engine_newPayload` (execution rejections on Engine API devnets). */
  engine?: { status: string; latestValidHash: Hex | null; validationError: string | null }
}

/** Two conflicting signed messages from one validator for the same height and round. */
export type Evidence = {
  validator: number
  height: number
  round: number
  type: 'proposal' | VoteType
  a: Proposal | Vote
  b: Proposal | Vote
}
