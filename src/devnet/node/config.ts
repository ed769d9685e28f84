import { InputError } from '../../errors.js'
import { addressOf } from './crypto.js'
import type { Hex } from './types.js'

/**
 * One validator's configuration, parsed once at the boundary (`parseNodeConfig`). The JSON a
 * node is started with has exactly these fields; addresses are `host:port` on 127.0.0.1.
 */
export type NodeConfig = {
  /** This validator's id; must appear in `validators`. */
  id: number
  /** The validator's secp256k1 key; its address must match `validators[id].address`. */
  privateKey: Hex
  /** The whole set, in proposer order (proposer of (h, r) = `validators[(h + r) % n]`). */
  validators: { id: number; address: Hex }[]
  /** Where peers connect to (`127.0.0.1:0` picks a free port; READY prints the one bound). */
  p2pListen: string
  /** What to dial for each other validator (its p2p port, or a fault proxy in front of it). */
  peers: { id: number; address: string }[]
  /** Where the JSON-RPC server listens. */
  rpcListen: string
  /**
   * This node's own Anvil (started `--no-mining --timestamp <genesisTimestampS>`), maybe via a
   * proxy; with `execution` (Engine API), the engine URL.
   */
  executionUrl: string
  /**
   * Absent: the execution layer is the Anvil at `executionUrl`. `engine-api`: a real execution
   * client (ethereumjs, Reth) driven over its authenticated Engine API at `engineUrl` (maybe via
   * a proxy), with eth_* on its plain JSON-RPC `rpcUrl`, and the JWT secret in `jwtSecretFile`
   * (32 bytes of hex).
   */
  execution?: { kind: 'engine-api'; engineUrl: string; rpcUrl: string; jwtSecretFile: string }
  /** Holds `blocks.log` (the committed chain) and `node.log`. */
  dataDir: string
  /** Height h is proposed no earlier than `genesisTimestampS·1000 + h·slotMs`. */
  slotMs: number
  genesisTimestampS: number
  chainId: number
  /** A proposal's timestamp may be at most this far from the local clock. */
  maxDriftMs: number
  mempool: { maxTotal: number; maxPerSender: number; maxIngressPerS: number }
  /**
   * Test builds only: a broken validator, each flag breaking what one drill checks.
   * - `skipStateRootCheck`: accepts a payload whose only difference is the state root (state-root-flip).
   * - `voteForTwoProposals`: votes for every valid proposal of a round (equivocation).
   * - `ignoreClockOffset`: reports a clock offset but never applies it (clock-skew).
   * - `acceptInvalidTx`: accepts a proposal whose execution refused some of its transactions (invalid-tx).
   * - `noResyncAfterCorruption`: after finding its store corrupt, never syncs the lost blocks from peers (disk-corrupt).
   * - `volatileStore`: starts without its store every time, as if it kept blocks in memory only (restart).
   * - `forgetSignState`: starts without its sign state every time, so after a crash it may sign a
   *   second, different vote or proposal where it signed one before (burst-kill on 7).
   */
  /**
   * Which devnet this node belongs to: peers whose hello names another one are refused. Devnets
   * on one machine share keys and chain id, and a port one of them used can be reused by the next:
   * without this, a validator left over from another devnet could join (and look like an
   * equivocator). Optional: absent, only the chain id is compared.
   */
  networkId?: string
  unsafe?: {
    skipStateRootCheck?: boolean
    voteForTwoProposals?: boolean
    ignoreClockOffset?: boolean
    acceptInvalidTx?: boolean
    noResyncAfterCorruption?: boolean
    volatileStore?: boolean
    forgetSignState?: boolean
  }
  /** Test builds only: a lying proposer. */
  byzantine?: { equivocate?: boolean; staleParent?: boolean; invalidTx?: boolean }
}

const hexRe = /^0x[0-9a-fA-F]*$/
const addressRe = /^0x[0-9a-fA-F]{40}$/
const hostPortRe = /^[^:\s]+:\d{1,5}$/

/** Validates a parsed config file; every error names the field and the value it got. */
export function parseNodeConfig(raw: unknown): NodeConfig {
  if (!isRecord(raw)) throw bad('The node config', 'must be a JSON object', raw)
  const int = (key: string, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    const v = raw[key]
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
      throw bad(`\`${key}\``, `must be an integer between ${min} and ${max}`, v)
    return v
  }
  const str = (key: string, re?: RegExp): string => {
    const v = raw[key]
    if (typeof v !== 'string' || (re && !re.test(v))) throw bad(`\`${key}\``, 'is missing or malformed', v)
    return v
  }
  const id = int('id', 0, 1_000)
  const privateKey = str('privateKey', /^0x[0-9a-fA-F]{64}$/).toLowerCase() as Hex
  if (!Array.isArray(raw.validators) || raw.validators.length < 1)
    throw bad('`validators`', 'must be a non-empty array', raw.validators)
  const validators = raw.validators.map((v, i) => {
    if (!isRecord(v) || typeof v.id !== 'number' || !Number.isInteger(v.id) || typeof v.address !== 'string' || !addressRe.test(v.address))
      throw bad(`\`validators[${i}]\``, 'must be { id: integer, address: 0x… (20 bytes) }', v)
    return { id: v.id, address: v.address.toLowerCase() as Hex }
  })
  if (new Set(validators.map((v) => v.id)).size !== validators.length)
    throw bad('`validators`', 'must have distinct ids', validators.map((v) => v.id))
  const me = validators.find((v) => v.id === id)
  if (!me) throw bad('`id`', 'must be one of the validators', id)
  if (addressOf(privateKey) !== me.address)
    throw new InputError('`privateKey` does not belong to this validator.', {
      context: { Id: id, 'Expected address': me.address, 'Key address': addressOf(privateKey) },
    })
  if (!Array.isArray(raw.peers)) throw bad('`peers`', 'must be an array', raw.peers)
  const peers = raw.peers.map((p, i) => {
    if (!isRecord(p) || typeof p.id !== 'number' || typeof p.address !== 'string' || !hostPortRe.test(p.address))
      throw bad(`\`peers[${i}]\``, 'must be { id, address: "host:port" }', p)
    if (p.id === id || !validators.some((v) => v.id === p.id))
      throw bad(`\`peers[${i}].id\``, 'must be another validator', p.id)
    return { id: p.id, address: p.address }
  })
  const mempoolRaw = raw.mempool ?? {}
  if (!isRecord(mempoolRaw)) throw bad('`mempool`', 'must be an object', mempoolRaw)
  const limit = (key: 'maxTotal' | 'maxPerSender' | 'maxIngressPerS', dflt: number) => {
    const v = mempoolRaw[key] ?? dflt
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 1_000_000)
      throw bad(`\`mempool.${key}\``, 'must be an integer between 1 and 1000000', v)
    return v
  }
  let execution: NodeConfig['execution']
  if (raw.execution !== undefined) {
    const e = raw.execution
    if (!isRecord(e) || e.kind !== 'engine-api') throw bad('`execution.kind`', 'must be "engine-api" (omit `execution` for Anvil)', isRecord(e) ? e.kind : e)
    const url = (key: 'engineUrl' | 'rpcUrl') => {
      if (typeof e[key] !== 'string' || !/^https?:\/\//.test(e[key] as string)) throw bad(`\`execution.${key}\``, 'must be an http(s) URL', e[key])
      return e[key] as string
    }
    if (typeof e.jwtSecretFile !== 'string' || e.jwtSecretFile.length === 0) throw bad('`execution.jwtSecretFile`', 'must be a file path', e.jwtSecretFile)
    execution = { kind: 'engine-api', engineUrl: url('engineUrl'), rpcUrl: url('rpcUrl'), jwtSecretFile: e.jwtSecretFile }
  }
  const executionUrl = execution && raw.executionUrl === undefined ? execution.engineUrl : str('executionUrl', /^https?:\/\//)
  const config: NodeConfig = {
    id,
    privateKey,
    validators,
    p2pListen: str('p2pListen', hostPortRe),
    peers,
    rpcListen: str('rpcListen', hostPortRe),
    executionUrl,
    ...(execution ? { execution } : {}),
    dataDir: str('dataDir'),
    slotMs: int('slotMs', 50, 600_000),
    genesisTimestampS: int('genesisTimestampS', 0),
    chainId: int('chainId', 1),
    ...(raw.networkId === undefined ? {} : { networkId: str('networkId', /^[A-Za-z0-9_-]{1,64}$/) }),
    maxDriftMs: raw.maxDriftMs === undefined ? 5_000 : int('maxDriftMs', 0),
    mempool: { maxTotal: limit('maxTotal', 20_000), maxPerSender: limit('maxPerSender', 256), maxIngressPerS: limit('maxIngressPerS', 100) },
  }
  const flags = <K extends string>(key: string, names: readonly K[]): Partial<Record<K, boolean>> | undefined => {
    const v = raw[key]
    if (v === undefined) return undefined
    if (!isRecord(v)) throw bad(`\`${key}\``, 'must be an object', v)
    const out: Partial<Record<K, boolean>> = {}
    for (const [k, b] of Object.entries(v)) {
      if (!(names as readonly string[]).includes(k)) throw bad(`\`${key}.${k}\``, `is not one of ${names.join(', ')}`, b)
      if (typeof b !== 'boolean') throw bad(`\`${key}.${k}\``, 'must be a boolean', b)
      out[k as K] = b
    }
    return out
  }
  const unsafe = flags('unsafe', ['skipStateRootCheck', 'voteForTwoProposals', 'ignoreClockOffset', 'acceptInvalidTx', 'noResyncAfterCorruption', 'volatileStore', 'forgetSignState'] as const)
  const byzantine = flags('byzantine', ['equivocate', 'staleParent', 'invalidTx'] as const)
  if (unsafe) config.unsafe = unsafe
  if (byzantine) config.byzantine = byzantine
  return config
}

/** Splits `host:port`. */
export function splitHostPort(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':')
  return { host: address.slice(0, i), port: Number(address.slice(i + 1)) }
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

export const isHex = (v: unknown): v is Hex => typeof v === 'string' && hexRe.test(v)

function bad(what: string, rule: string, got: unknown) {
  return new InputError(`${what} ${rule}. Got \`${JSON.stringify(got)?.slice(0, 200)}\`.`, {
    hint: 'See NodeConfig in src/devnet/node/config.ts for the config file format.',
  })
}
