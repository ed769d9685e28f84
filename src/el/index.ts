/**
 * Execution clients a devnet validator can run on, as pluggable specs. `anvil` is the embedded
 * default (the consensus node drives it with Anvil's own methods: src/devnet/node/execution.ts);
 * every other client is driven over the real Engine API with JWT (src/devnet/node/engine-api.ts).
 */
export const EL_NAMES = ['anvil', 'ethereumjs', 'reth'] as const
export type ElName = (typeof EL_NAMES)[number]

export type ElSpec = {
  name: ElName
  /** How the consensus node drives it. */
  driver: 'anvil' | 'engine-api'
  /** The slot length a devnet of 4 holds on a 2-core machine, in ms (`--slot` overrides). */
  defaultSlotMs: number
  /** Whether forkchaos can start it itself (reth: a command template for users with the binary). */
  startable: boolean
}

/** Every execution client, by name. */
export const elSpecs: { readonly [name in ElName]: ElSpec } = {
  anvil: { name: 'anvil', driver: 'anvil', defaultSlotMs: 1_000, startable: true },
  // ~640 ms of Engine API work per block for 4 instances on 2 cores (issue 9): a 2 s slot leaves room.
  ethereumjs: { name: 'ethereumjs', driver: 'engine-api', defaultSlotMs: 2_000, startable: true },
  reth: { name: 'reth', driver: 'engine-api', defaultSlotMs: 2_000, startable: false },
}

export function isElName(value: unknown): value is ElName {
  return typeof value === 'string' && (EL_NAMES as readonly string[]).includes(value)
}

export { ETHEREUMJS_INSTALL, ethereumjsBin, startEthereumjs, type EthereumjsInstance, type EthereumjsParameters } from './ethereumjs.js'
export { postMergeGenesis, readDevnetGenesis, writeJwtSecret, writePostMergeGenesis } from './genesis.js'
export { rethCommand } from './reth.js'
