import { maxValidators } from '../targets/devnet-size.js'

// A module of its own: `devnet up` reads it, and `cli/options.ts` loads the fork target (and viem's root).

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

