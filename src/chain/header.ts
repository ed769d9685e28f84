import type { Hex } from 'viem'
import { keccak256, toRlp } from '../util/evm.js'

/** A JSON-RPC block (the header fields that go into its hash). */
export type RpcBlock = Record<string, unknown> & { hash: Hex; stateRoot: Hex }

const q = (v: unknown): Hex => {
  // RLP integers have no leading zeros; zero is the empty string.
  const n = BigInt(v as string)
  if (n === 0n) return '0x'
  const h = n.toString(16)
  return `0x${h.length % 2 ? '0' : ''}${h}`
}

/**
 * The header hash of a block as the node answered it: keccak256 of the RLP of its header fields
 * in the order of the yellow paper plus the fork additions (London base fee, Shanghai
 * withdrawals root, Cancun blob gas and beacon root, Prague requests hash), each present only
 * when the block has it. Lets a byzantine proposer keep a tampered header self-consistent.
 */
export function headerHash(block: RpcBlock): Hex {
  const fields: (Hex | Hex[])[] = [
    block.parentHash as Hex,
    block.sha3Uncles as Hex,
    block.miner as Hex,
    block.stateRoot,
    block.transactionsRoot as Hex,
    block.receiptsRoot as Hex,
    block.logsBloom as Hex,
    q(block.difficulty),
    q(block.number),
    q(block.gasLimit),
    q(block.gasUsed),
    q(block.timestamp),
    block.extraData as Hex,
    block.mixHash as Hex,
    block.nonce as Hex,
  ]
  if (block.baseFeePerGas !== undefined) fields.push(q(block.baseFeePerGas))
  if (block.withdrawalsRoot !== undefined) fields.push(block.withdrawalsRoot as Hex)
  if (block.blobGasUsed !== undefined) fields.push(q(block.blobGasUsed))
  if (block.excessBlobGas !== undefined) fields.push(q(block.excessBlobGas))
  if (block.parentBeaconBlockRoot !== undefined) fields.push(block.parentBeaconBlockRoot as Hex)
  if (block.requestsHash !== undefined) fields.push(block.requestsHash as Hex)
  return keccak256(toRlp(fields))
}

/** Flips the lowest bit of the state root and recomputes the block hash over the new header. */
export function flipStateRoot(block: RpcBlock): RpcBlock {
  const root = block.stateRoot
  const flipped = `${root.slice(0, -1)}${(Number.parseInt(root.slice(-1), 16) ^ 1).toString(16)}` as Hex
  const out = { ...block, stateRoot: flipped }
  return { ...out, hash: headerHash(out) }
}
