import { InputError } from '../errors.js'
import { parseBlockNumber, type ForkSource } from '../targets/fork.js'
import { maxValidators } from '../targets/devnet-size.js'

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

/** The same override for every validator id a devnet of any size can have (ids past its size are unused). */
function everyValidator(override: Record<string, unknown>): Record<number, Record<string, unknown>> {
  return Object.fromEntries(Array.from({ length: maxValidators }, (_, id) => [id, override]))
}

/** Test builds of the devnet validators (`--devnet-build`): each breaks one check on purpose. */
export const devnetBuilds: Record<string, Record<number, Record<string, unknown>>> = {
  /** Honest validators accept a payload whose only difference is the state root. */
  'no-state-root-check': everyValidator({ unsafe: { skipStateRootCheck: true } }),
  /** Validator 2 votes for every valid proposal in a round, even a second one. */
  'double-vote': { 2: { unsafe: { voteForTwoProposals: true } } },
  /** Every validator's clock accepts an offset (`fc_setClockOffset`) and reports it, but never applies it. */
  'clock-ignores-offset': everyValidator({ unsafe: { ignoreClockOffset: true } }),
  /** Every validator accepts a proposal whose execution refused some of its transactions (breaks invalid-tx). */
  'accept-invalid-tx': everyValidator({ unsafe: { acceptInvalidTx: true } }),
  /** A validator that finds its store corrupt never syncs the lost blocks from its peers (breaks disk-corrupt). */
  'no-resync-after-corruption': everyValidator({ unsafe: { noResyncAfterCorruption: true } }),
  /** Every validator starts without its store, as if it kept blocks in memory only (breaks restart). */
  'volatile-store': everyValidator({ unsafe: { volatileStore: true } }),
  /** Every validator starts without what it signed before, so a restart can double-sign (breaks burst-kill on 7). */
  'forget-sign-state': everyValidator({ unsafe: { forgetSignState: true } }),
}

