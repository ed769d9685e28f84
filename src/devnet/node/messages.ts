import { isHex, isRecord } from './config.js'
import type { Certificate, CommittedBlock, ExecutionEnvelope, Hex, Message, Payload, Proposal, Vote } from './types.js'

/**
 * Decoding of p2p frames. Peers are not trusted: every field is checked for type, range and
 * size, hex is lowercased (so encodings compare byte for byte), and anything else is refused
 * with a reason. Nothing here throws.
 */

/** Limits on what one frame may carry. */
export const frameLimits = {
  /** Bytes in one line; longer lines close the connection. */
  maxLineBytes: 32 * 1024 * 1024,
  maxTxsPerPayload: 2_000,
  maxTxBytes: 128 * 1024,
  maxTxsPerGossip: 1_000,
  maxBlocksPerSyncResponse: 64,
  maxVotesPerCertificate: 64,
  /** Rounds beyond this are refused (a round number is an attacker-chosen integer). */
  maxRound: 10_000,
  /** An Engine API payload's envelope (`Payload.execution`, without its transactions), as JSON: 16 KiB. */
  maxEnvelopeBytes: 16 * 1024,
  /** Execution requests in an envelope (Prague has 3 types). */
  maxExecutionRequests: 16,
} as const

export type Decoded = { ok: true; message: Message } | { ok: false; reason: string }

export function decodeFrame(line: string): Decoded {
  let raw: unknown
  try {
    raw = JSON.parse(line)
  } catch {
    return { ok: false, reason: 'not JSON' }
  }
  try {
    return { ok: true, message: decodeMessage(raw) }
  } catch (error) {
    return { ok: false, reason: error instanceof Invalid ? error.message : 'malformed' }
  }
}

function decodeMessage(raw: unknown): Message {
  if (!isRecord(raw)) throw new Invalid('not an object')
  switch (raw.t) {
    case 'hello':
      return {
        t: 'hello',
        id: int(raw.id, 'id'),
        chainId: int(raw.chainId, 'chainId'),
        ...(raw.network === undefined ? {} : { network: networkName(raw.network) }),
      }
    case 'proposal':
      return { t: 'proposal', proposal: decodeProposal(raw.proposal) }
    case 'vote':
      return { t: 'vote', vote: decodeVote(raw.vote) }
    case 'tx': {
      const txs = arr(raw.txs, 'txs', frameLimits.maxTxsPerGossip).map((x) => rawTx(x))
      if (raw.senders === undefined) return { t: 'tx', txs }
      const senders = arr(raw.senders, 'senders', frameLimits.maxTxsPerGossip).map(address)
      if (senders.length !== txs.length) throw new Invalid('senders and txs differ in length')
      return { t: 'tx', txs, senders }
    }
    case 'status':
      return { t: 'status', height: int(raw.height, 'height'), headHash: hash(raw.headHash, 'headHash') }
    case 'syncRequest':
      return { t: 'syncRequest', fromHeight: int(raw.fromHeight, 'fromHeight'), toHeight: int(raw.toHeight, 'toHeight') }
    case 'syncResponse':
      return {
        t: 'syncResponse',
        blocks: arr(raw.blocks, 'blocks', frameLimits.maxBlocksPerSyncResponse).map(decodeBlock),
      }
    default:
      throw new Invalid(`unknown message type ${JSON.stringify(raw.t)?.slice(0, 40)}`)
  }
}

export function decodeBlock(raw: unknown): CommittedBlock {
  if (!isRecord(raw)) throw new Invalid('block is not an object')
  return { payload: decodePayload(raw.payload), certificate: decodeCertificate(raw.certificate) }
}

function decodeCertificate(raw: unknown): Certificate {
  if (!isRecord(raw)) throw new Invalid('certificate is not an object')
  return {
    round: int(raw.round, 'certificate.round', frameLimits.maxRound),
    votes: arr(raw.votes, 'certificate.votes', frameLimits.maxVotesPerCertificate).map((v) => {
      if (!isRecord(v)) throw new Invalid('certificate vote is not an object')
      return { validator: int(v.validator, 'validator'), signature: sig(v.signature) }
    }),
  }
}

export function decodeProposal(raw: unknown): Proposal {
  if (!isRecord(raw)) throw new Invalid('proposal is not an object')
  const polRound = raw.polRound
  if (typeof polRound !== 'number' || !Number.isInteger(polRound) || polRound < -1 || polRound > frameLimits.maxRound)
    throw new Invalid('bad polRound')
  return {
    height: int(raw.height, 'height'),
    round: int(raw.round, 'round', frameLimits.maxRound),
    polRound,
    proposer: int(raw.proposer, 'proposer'),
    payload: decodePayload(raw.payload),
    signature: sig(raw.signature),
  }
}

export function decodeVote(raw: unknown): Vote {
  if (!isRecord(raw)) throw new Invalid('vote is not an object')
  if (raw.type !== 'prevote' && raw.type !== 'precommit') throw new Invalid('bad vote type')
  return {
    type: raw.type,
    height: int(raw.height, 'height'),
    round: int(raw.round, 'round', frameLimits.maxRound),
    value: raw.value === null ? null : hash(raw.value, 'value'),
    validator: int(raw.validator, 'validator'),
    signature: sig(raw.signature),
  }
}

export function decodePayload(raw: unknown): Payload {
  if (!isRecord(raw)) throw new Invalid('payload is not an object')
  return {
    number: int(raw.number, 'number'),
    parentHash: hash(raw.parentHash, 'parentHash'),
    timestampS: int(raw.timestampS, 'timestampS'),
    feeRecipient: address(raw.feeRecipient),
    transactions: arr(raw.transactions, 'transactions', frameLimits.maxTxsPerPayload).map(rawTx),
    blockHash: hash(raw.blockHash, 'blockHash'),
    stateRoot: hash(raw.stateRoot, 'stateRoot'),
    receiptsRoot: hash(raw.receiptsRoot, 'receiptsRoot'),
    // Absent on Anvil devnets: the decoded payload is then the same object shape as before.
    ...(raw.execution === undefined ? {} : { execution: decodeEnvelope(raw.execution) }),
  }
}

/** Payload fields an envelope may carry: hex strings, and `withdrawals` (an array). ethereumjs adds `requestsHash` to its V4 payloads. */
const envelopeKeys = new Set(['parentHash', 'feeRecipient', 'stateRoot', 'receiptsRoot', 'logsBloom', 'prevRandao', 'blockNumber', 'gasLimit', 'gasUsed', 'timestamp', 'extraData', 'baseFeePerGas', 'blockHash', 'withdrawals', 'blobGasUsed', 'excessBlobGas', 'requestsHash'])

function decodeEnvelope(raw: unknown): ExecutionEnvelope {
  if (!isRecord(raw) || !isRecord(raw.payload)) throw new Invalid('execution is not an object')
  if (JSON.stringify(raw).length > frameLimits.maxEnvelopeBytes) throw new Invalid(`execution is over ${frameLimits.maxEnvelopeBytes} bytes`)
  if (raw.version !== 3 && raw.version !== 4) throw new Invalid('bad execution.version')
  const payload: ExecutionEnvelope['payload'] = {}
  for (const [k, v] of Object.entries(raw.payload)) {
    if (!envelopeKeys.has(k)) throw new Invalid(`unknown execution.payload.${k}`)
    if (k === 'withdrawals') payload[k] = arr(v, 'execution.payload.withdrawals', 16)
    else if (isHex(v)) payload[k] = v.toLowerCase() as Hex
    else throw new Invalid(`bad execution.payload.${k}`)
  }
  const executionRequests = arr(raw.executionRequests, 'execution.executionRequests', frameLimits.maxExecutionRequests).map((r) => {
    if (!isHex(r)) throw new Invalid('bad execution request')
    return r.toLowerCase() as Hex
  })
  return { version: raw.version, payload, executionRequests }
}

function networkName(v: unknown): string {
  if (typeof v !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(v)) throw new Invalid('bad network')
  return v
}

function int(v: unknown, what: string, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) throw new Invalid(`bad ${what}`)
  return v
}

function arr(v: unknown, what: string, max: number): unknown[] {
  if (!Array.isArray(v)) throw new Invalid(`${what} is not an array`)
  if (v.length > max) throw new Invalid(`${what} has more than ${max} entries`)
  return v
}

function hash(v: unknown, what: string): Hex {
  if (!isHex(v) || v.length !== 66) throw new Invalid(`bad ${what}`)
  return v.toLowerCase() as Hex
}

function address(v: unknown): Hex {
  if (!isHex(v) || v.length !== 42) throw new Invalid('bad address')
  return v.toLowerCase() as Hex
}

function sig(v: unknown): Hex {
  if (!isHex(v) || v.length !== 132) throw new Invalid('bad signature')
  return v.toLowerCase() as Hex
}

function rawTx(v: unknown): Hex {
  if (!isHex(v) || v.length < 4 || v.length % 2 !== 0 || v.length > 2 + 2 * frameLimits.maxTxBytes)
    throw new Invalid('bad raw transaction')
  return v.toLowerCase() as Hex
}

class Invalid extends Error {
  override name = 'Invalid'
}
