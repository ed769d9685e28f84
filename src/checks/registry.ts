import { bountyCapped } from './bounty-capped.js'
import { cycleAtomic } from './cycle-atomic.js'
import { cyclesSucceed } from './cycles-succeed.js'
import { flashRepaid } from './flash-repaid.js'
import { keeperLoad } from './keeper-load.js'
import { module } from './module.js'
import { reverts } from './reverts.js'
import { riskMode } from './risk-mode.js'
import { sharePriceFloor } from './share-price-floor.js'
import type { CheckFn } from './types.js'
import { view } from './view.js'

/** Every check kind a scenario can name, by its key in the file. */
export const checks = {
  sharePriceFloor,
  cycleAtomic,
  bountyCapped,
  flashRepaid,
  cyclesSucceed,
  riskMode,
  view,
  reverts,
  keeperLoad,
  module,
} satisfies { [K in keyof typeof checkDocs]: CheckFn<K> }

/** One line each, for `forkchaos list` and the README. */
export const checkDocs = {
  sharePriceFloor: 'sharePrice() ≥ minBps of its value before the baseline (no funds lost)',
  cycleAtomic: 'no dependency call fails inside a successful cycle() that changed state (no partial state)',
  bountyCapped: 'every keeper bounty event ≤ bountyCap()',
  flashRepaid: 'the flash lender\'s token balance never falls across a cycle()',
  cyclesSucceed: 'every cycle() in the phase succeeded',
  riskMode: 'riskMode() equals a value (e.g. 1 = ONLY_UNWIND)',
  view: 'any view equals / is at least / at most a value, or equals another view',
  reverts: 'a call reverts (simulated), optionally with a reason',
  keeperLoad: 'a keeper step\'s amplification (requests per offered cycle) and success rate within bounds',
  module: 'a TypeScript/JavaScript check: default export returns { ok, observed, expected }',
} as const
