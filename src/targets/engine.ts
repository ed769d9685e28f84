/**
 * The fork engine: the node a fork scenario's fork runs on. `anvil` (default) or `hardhat` (a
 * Hardhat node, EDR, from npm `hardhat`). Both serve the cheat methods the faults and steps use,
 * under their own names (src/targets/hardhat.ts translates `anvil_*` to `hardhat_*`); what a
 * Hardhat node cannot do at all is a capability it lacks, and a scenario whose faults, steps or
 * checks need one is refused at load, naming the field and the reason, before anything boots.
 *
 * Light (errors only): `forkchaos validate` loads it with the loader alone.
 */
import { InputError } from '../errors.js'

export type Engine = 'anvil' | 'hardhat'

export const ENGINES: readonly Engine[] = ['anvil', 'hardhat']

/** What a fault, step or check may need of the fork engine beyond the shared cheat methods. */
export type Capability = 'reorg' | 'sendTransactionSync'

/** What an engine cannot do, with the reason a user is shown. Anvil can do all of it. */
export const lacks: { readonly [E in Engine]: Partial<Record<Capability, string>> } = {
  anvil: {},
  hardhat: {
    reorg: 'a Hardhat node has no method that replaces mined blocks with other ones (Anvil\'s `anvil_reorg` / `anvil_rollback`); `evm_revert` drops state but mines no competing chain',
    sendTransactionSync: 'the keeper process sends `eth_sendTransactionSync` (EIP-7966) to the fork itself, which a Hardhat node does not serve (forkchaos\'s own client emulates it; a separate process cannot)',
  },
}

/** The first capability in `needs` that `engine` lacks, and why; undefined when it has them all. */
export function missingCapability(engine: Engine, needs: readonly Capability[] | undefined): { capability: Capability; reason: string } | undefined {
  for (const capability of needs ?? []) {
    const reason = lacks[engine][capability]
    if (reason) return { capability, reason }
  }
  return undefined
}

/** `engine hardhat cannot reorg: …`: what the loader says for a refused unit. */
export const cannot = (engine: Engine, what: string, reason: string) => `engine ${engine} cannot ${what}: ${reason}.`

/** The verb phrase each capability reads as in `engine hardhat cannot …`. */
export const capabilityVerb: Record<Capability, string> = {
  reorg: 'reorg',
  sendTransactionSync: 'serve eth_sendTransactionSync to a keeper process',
}

/** Parses `--engine` (the fork engine, src/targets/engine.ts). */
export function parseEngine(value: string | undefined): Engine | undefined {
  if (value === undefined) return undefined
  if (!(ENGINES as readonly string[]).includes(value)) throw new InputError(`\`--engine\` must be one of ${ENGINES.join(', ')}. Got \`${value}\`.`)
  return value as Engine
}
