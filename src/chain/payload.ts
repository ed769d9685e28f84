import { createHash } from 'node:crypto'
import type { Hex } from 'viem'
import { bytesToHex, hexToBytes, keccak256, stringToBytes, toRlp } from '../util/evm.js'
import { InputError, PrerequisiteMissingError } from '../errors.js'
import { headerHash, type RpcBlock } from './header.js'

/**
 * The Engine API's `ExecutionPayloadV3` as JSON (`engine_getPayloadV4` answers it under Prague;
 * V4 moved the execution requests out of the payload, beside it).
 */
export type ExecutionPayloadJson = {
  parentHash: Hex
  feeRecipient: Hex
  stateRoot: Hex
  receiptsRoot: Hex
  logsBloom: Hex
  prevRandao: Hex
  blockNumber: Hex
  gasLimit: Hex
  gasUsed: Hex
  timestamp: Hex
  extraData: Hex
  baseFeePerGas: Hex
  blockHash: Hex
  transactions: Hex[]
  withdrawals?: WithdrawalJson[]
  blobGasUsed?: Hex
  excessBlobGas?: Hex
}

/** An EIP-4895 withdrawal as the Engine API writes it (`amount` in Gwei). */
export type WithdrawalJson = { index: Hex; validatorIndex: Hex; address: Hex; amount: Hex }

/**
 * What the block header commits to beyond the payload: the beacon root (EIP-4788, sent beside
 * the payload in `engine_newPayloadV3/V4` and in the payload attributes of the forkchoiceUpdated
 * that started the build) and, from Prague, the execution requests (EIP-7685; `getPayloadV4`
 * answers them beside the payload, `newPayloadV4` takes them as its 4th param). `undefined`
 * leaves the field out of the header (a pre-Cancun / pre-Prague block).
 */
export type PayloadSidecar = { parentBeaconBlockRoot?: Hex; executionRequests?: readonly Hex[] }

/** keccak256(rlp([])): every post-merge header's `sha3Uncles`. */
export const EMPTY_UNCLES_HASH = '0x1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347' as Hex

/** Transactions a payload may hold here (a trie over more is not a payload a devnet builds). */
export const MAX_PAYLOAD_TRANSACTIONS = 10_000

/** The Merkle-Patricia root of an ordered list (key rlp(index), value the item's bytes), as transactionsRoot and withdrawalsRoot are. */
export async function orderedTrieRoot(items: readonly Uint8Array[]): Promise<Hex> {
  const { MerklePatriciaTrie } = await loadMpt()
  const trie = new MerklePatriciaTrie()
  for (const [i, item] of items.entries()) await trie.put(hexToBytes(toRlp(quantity(BigInt(i)))), item)
  return bytesToHex(trie.root())
}

/** transactionsRoot over raw signed transactions (typed ones as `type || payload`, legacy as RLP), in block order. */
export function transactionsRoot(transactions: readonly Hex[]): Promise<Hex> {
  if (transactions.length > MAX_PAYLOAD_TRANSACTIONS)
    throw new InputError(`A payload may hold at most ${MAX_PAYLOAD_TRANSACTIONS} transactions.`, { context: { Got: transactions.length } })
  return orderedTrieRoot(transactions.map((t) => hexToBytes(t)))
}

/** withdrawalsRoot (EIP-4895): each withdrawal as rlp([index, validatorIndex, address, amount]). */
export function withdrawalsRoot(withdrawals: readonly WithdrawalJson[]): Promise<Hex> {
  return orderedTrieRoot(withdrawals.map((w) => hexToBytes(toRlp([quantity(w.index), quantity(w.validatorIndex), w.address, quantity(w.amount)]))))
}

/**
 * requestsHash (EIP-7685): sha256 over the concatenated sha256 of each request (`type || data`,
 * as the Engine API carries them); requests with no data (just the type byte) are left out.
 */
export function requestsHash(requests: readonly Hex[]): Hex {
  const outer = createHash('sha256')
  for (const r of requests) {
    const bytes = hexToBytes(r)
    if (bytes.length > 1) outer.update(createHash('sha256').update(bytes).digest())
  }
  return bytesToHex(outer.digest())
}

/** The block header an execution payload stands for, as a JSON-RPC block (`headerHash` hashes it). */
export async function payloadHeader(payload: ExecutionPayloadJson, sidecar: PayloadSidecar = {}): Promise<RpcBlock> {
  const header: RpcBlock = {
    hash: payload.blockHash,
    parentHash: payload.parentHash,
    sha3Uncles: EMPTY_UNCLES_HASH,
    miner: payload.feeRecipient,
    stateRoot: payload.stateRoot,
    transactionsRoot: await transactionsRoot(payload.transactions),
    receiptsRoot: payload.receiptsRoot,
    logsBloom: payload.logsBloom,
    difficulty: '0x0',
    number: payload.blockNumber,
    gasLimit: payload.gasLimit,
    gasUsed: payload.gasUsed,
    timestamp: payload.timestamp,
    extraData: payload.extraData,
    mixHash: payload.prevRandao,
    nonce: '0x0000000000000000',
    baseFeePerGas: payload.baseFeePerGas,
  }
  if (payload.withdrawals !== undefined) header.withdrawalsRoot = await withdrawalsRoot(payload.withdrawals)
  if (payload.blobGasUsed !== undefined) header.blobGasUsed = payload.blobGasUsed
  if (payload.excessBlobGas !== undefined) header.excessBlobGas = payload.excessBlobGas
  if (sidecar.parentBeaconBlockRoot !== undefined) header.parentBeaconBlockRoot = sidecar.parentBeaconBlockRoot
  if (sidecar.executionRequests !== undefined) header.requestsHash = requestsHash(sidecar.executionRequests)
  return header
}

/** The block hash of an execution payload: keccak256 of its header's RLP (what the EL checks `blockHash` against). */
export async function payloadBlockHash(payload: ExecutionPayloadJson, sidecar: PayloadSidecar = {}): Promise<Hex> {
  return headerHash(await payloadHeader(payload, sidecar))
}

/** How a byzantine engine link rewrites a payload (each keeps the header self-consistent: the block hash is recomputed). */
export type PayloadTamper =
  /** One bit of the state root flipped: only re-execution can tell. */
  | { kind: 'state-root-flip' }
  /**
   * `parentHash` set to an older ancestor and `blockNumber` to the ancestor's + 1 (`ancestor`,
   * `ancestorNumber`): a competitor of a committed block, executed on the wrong state.
   */
  | { kind: 'stale-parent'; ancestor: Hex; ancestorNumber: number }
  /** A transaction appended that no execution accepts (`tx`: see `unexecutableTx`); transactionsRoot recomputed. */
  | { kind: 'invalid-tx'; tx: Hex }

/**
 * A tampered copy of `payload` with its block hash recomputed over the new header. The input is
 * not changed. Throws `InputError` when `payload`'s own hash cannot be reproduced from it and
 * `sidecar` (a payload of a fork this does not know): a rewrite must never send a header that is
 * wrong for another reason than the one it means.
 */
export async function tamperPayload(payload: ExecutionPayloadJson, sidecar: PayloadSidecar, tamper: PayloadTamper): Promise<ExecutionPayloadJson> {
  const honest = await payloadBlockHash(payload, sidecar)
  if (honest.toLowerCase() !== payload.blockHash.toLowerCase())
    throw new InputError('The payload\'s block hash cannot be reproduced from its fields; it is not rewritten.', {
      context: { 'Block hash': payload.blockHash, Computed: honest, 'Beacon root': sidecar.parentBeaconBlockRoot ?? 'none', Requests: sidecar.executionRequests?.length ?? 'none' },
    })
  let out: ExecutionPayloadJson
  switch (tamper.kind) {
    case 'state-root-flip':
      out = { ...payload, stateRoot: flipLowestBit(payload.stateRoot) }
      break
    case 'stale-parent':
      out = { ...payload, parentHash: tamper.ancestor, blockNumber: `0x${(tamper.ancestorNumber + 1).toString(16)}` as Hex }
      break
    case 'invalid-tx':
      out = { ...payload, transactions: [...payload.transactions, tamper.tx] }
      break
  }
  return { ...out, blockHash: await payloadBlockHash(out, sidecar) }
}

/** The state root with its lowest bit flipped. */
export function flipLowestBit(root: Hex): Hex {
  return `${root.slice(0, -1)}${(Number.parseInt(root.slice(-1), 16) ^ 1).toString(16)}` as Hex
}

/**
 * A well-formed, correctly signed EIP-1559 transfer of 1 ETH from an account with no funds (its
 * key derived from `label`): every execution client must refuse a block holding it.
 */
export async function unexecutableTx(chainId: number, label: string): Promise<Hex> {
  const { privateKeyToAccount } = await import('viem/accounts')
  const broke = privateKeyToAccount(keccak256(stringToBytes(`forkchaos/byzantine/${label}`)))
  return (await broke.signTransaction({
    chainId,
    type: 'eip1559',
    nonce: 0,
    to: '0x000000000000000000000000000000000000dEaD',
    value: 10n ** 18n,
    gas: 21_000n,
    maxFeePerGas: 10n ** 10n,
    maxPriorityFeePerGas: 1n,
  })) as Hex
}

function quantity(v: bigint | Hex | string): Hex {
  // RLP integers have no leading zeros; zero is the empty string.
  const n = BigInt(v)
  if (n === 0n) return '0x'
  const h = n.toString(16)
  return `0x${h.length % 2 ? '0' : ''}${h}`
}

type Mpt = { MerklePatriciaTrie: new () => { put(key: Uint8Array, value: Uint8Array): Promise<void>; root(): Uint8Array } }
let mpt: Promise<Mpt> | undefined

/**
 * ethereumjs's Merkle-Patricia trie, which comes with the optional `@ethereumjs/client` (the
 * `ethereumjs` execution client): loaded on first use, so the Anvil devnet never needs it.
 */
function loadMpt(): Promise<Mpt> {
  // A specifier in a variable: the build does not need the optional package's types.
  const specifier = '@ethereumjs/mpt'
  mpt ??= (import(specifier) as Promise<Mpt>).catch((error: unknown) => {
    mpt = undefined
    throw new PrerequisiteMissingError('Block hashes of Engine API payloads need `@ethereumjs/mpt`, which comes with the optional dependency `@ethereumjs/client`.', {
      install: 'npm i @ethereumjs/client',
      context: { Error: (error as Error).message.split('\n')[0] },
    })
  })
  return mpt
}
