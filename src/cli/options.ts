import { InputError } from '../errors.js'
import { parseBlockNumber, type ForkSource } from '../targets/fork.js'

export { parseEngine } from '../targets/engine.js'

export function parseSeed(value: string | undefined): number {
  if (value === undefined) return Date.now() % 2_147_483_647
  if (!/^\d+$/.test(value) || Number(value) > 4_294_967_295) throw new InputError(`\`--seed\` must be a whole number from 0 to 4294967295. Got \`${value}\`.`)
  return Number(value)
}

export type SourceFlags = { forkUrl?: string; forkBlock?: string; state?: string; vaultBuild?: string }

export function sourceFrom(flags: SourceFlags): ForkSource {
  if (flags.forkBlock !== undefined && !flags.forkUrl) throw new InputError('`--fork-block` needs `--fork-url`.')
  if (flags.forkUrl && flags.state) throw new InputError('`--fork-url` and `--state` cannot be used together: pick one source.')
  if (flags.forkUrl) {
    let url: URL
    try {
      url = new URL(flags.forkUrl)
    } catch {
      throw new InputError('`--fork-url` must be an http(s) or ws(s) URL.')
    }
    if (!/^(https?|wss?):$/.test(url.protocol)) throw new InputError(`\`--fork-url\` must be an http(s) or ws(s) URL. Got a \`${url.protocol}\` URL.`)
    return { kind: 'url', url: flags.forkUrl, ...(flags.forkBlock !== undefined ? { blockNumber: parseBlockNumber(flags.forkBlock, '--fork-block') } : {}) }
  }
  if (flags.state) return { kind: 'state', path: flags.state }
  return { kind: 'embedded', ...(flags.vaultBuild ? { vaultBuild: flags.vaultBuild } : {}) }
}

export { devnetBuilds } from './devnet-builds.js'
