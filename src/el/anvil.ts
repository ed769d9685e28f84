import { type AnvilInstance, startAnvil } from '../targets/anvil.js'
import type { DevnetGenesis } from './genesis.js'

/**
 * Anvil as a devnet execution client (the embedded default): started `--no-mining` at the
 * devnet's genesis time with devnet/genesis.json's chain, so every validator's Anvil mines the
 * same blocks from the same inputs. The consensus node drives it with Anvil's own methods
 * (`AnvilEngine`), not the Engine API.
 */
export function anvilDevnetArgs(g: DevnetGenesis, genesisTimestampS: number): string[] {
  return ['--no-mining', '--timestamp', String(genesisTimestampS), '--chain-id', String(g.chainId), '--accounts', String(g.accounts), '--balance', String(g.balanceEth), '--gas-limit', String(g.gasLimit), '--mnemonic', g.mnemonic]
}

/** Starts one validator's Anvil (the process owner's, like every Anvil: src/targets/anvil.ts). */
export function startDevnetAnvil(p: { label: string; logDir: string; genesis: DevnetGenesis; genesisTimestampS: number; env?: Record<string, string> }): Promise<AnvilInstance> {
  return startAnvil({ label: p.label, logDir: p.logDir, extraArgs: anvilDevnetArgs(p.genesis, p.genesisTimestampS), ...(p.env && Object.keys(p.env).length ? { env: p.env } : {}) })
}
