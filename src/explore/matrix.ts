import { referenceProtocol } from '../scenario/protocol.js'
import type { Dependency } from './trace.js'

/** The dependency faults each external selector gets, with the params each cell uses. */
export const faultKinds = ['dependency.revert', 'dependency.garbage', 'dependency.gas'] as const
export type FaultKind = (typeof faultKinds)[number]

/** Gas a `dependency.gas` cell burns before each faulted call (the keeper's limit is 3,000,000). */
export const gasBurn = 200_000

/**
 * The checks every cell is judged by: the set the reference protocol's shipped drills use
 * (scenarios/defi/blocked-close-trade.yaml's four, and gas-spike-bounty's bounty cap). Safety
 * checks hold at all times; cycles must succeed before the fault and after it is reverted.
 */
export const cellChecks = [
  '  - { name: no-funds-lost, kind: safety, sharePriceFloor: { minBps: 9950 } }',
  '  - { name: no-partial-state, kind: safety, cycleAtomic: true }',
  '  - name: books-match-perp',
  '    kind: safety',
  '    view: { to: vault, fn: "alpShares() returns (uint256)", equalsView: { to: perp, fn: "alpBalanceOf(address) returns (uint256)", args: [vault] } }',
  '  - { name: bounty-capped, kind: safety, bountyCapped: true }',
  '  - { name: cycles-run, kind: liveness, phases: [baseline, recover], cyclesSucceed: true }',
]
export const checkNames = ['no-funds-lost', 'no-partial-state', 'books-match-perp', 'bounty-capped', 'cycles-run'] as const

/** One cell of the matrix: a scenario as YAML, with what it faults (`contract` and `signature`: the column the matrix prints). */
export type Cell = { name: string; fault: string; contract: string; signature: string; yaml: string }

/** `dependency.revert` on perp `closeTrade(uint256)` → `explore-revert-perp-closetrade`. */
function cellName(fault: FaultKind, dep: Dependency): string {
  const fn = (dep.signature ?? dep.selector).split('(')[0] ?? dep.selector
  return `explore-${fault.split('.')[1]}-${dep.contract ?? dep.address.slice(2, 10)}-${fn}`.toLowerCase().replace(/[^a-z0-9-]/g, '-').slice(0, 128)
}

function faultParams(fault: FaultKind, fn: string): string {
  if (fault === 'dependency.revert') return `{ selectors: ["${fn}"], reason: "forkchaos explore" }`
  if (fault === 'dependency.garbage') return `{ selectors: ["${fn}"], words: 1 }`
  return `{ selectors: ["${fn}"], gas: ${gasBurn} }`
}

/**
 * One standalone scenario per fault × external selector, as YAML text the normal loader reads:
 * a healthy cycle, the fault on that selector alone with one cycle under it (expected to do
 * anything but break a check), the fault reverted and two cycles that must succeed.
 */
export function buildMatrix(dependencies: readonly Dependency[], entry: string, kinds: readonly FaultKind[] = faultKinds): Cell[] {
  const cells: Cell[] = []
  for (const dep of dependencies)
    for (const fault of kinds) {
      const base = cellName(fault, dep)
      const name = cells.some((c) => c.name === base) ? `${base.slice(0, 119)}-${dep.selector.slice(2)}` : base
      const fn = dep.signature ?? dep.selector
      const who = dep.contract ?? dep.address
      const yaml = [
        '# Written by `forkchaos explore`: one cell of its fault matrix, a scenario like any other.',
        `name: ${name}`,
        `description: ${fault} on ${who} ${fn}, which ${entry} calls ${dep.calls} time${dep.calls === 1 ? '' : 's'} (its revert ${dep.failure === 'caught' ? 'is caught' : 'propagates'}).`,
        'hypothesis: >',
        `  While ${who}'s ${fn} is faulted (${fault}), ${entry} either reverts whole or runs correctly: no funds`,
        '  lost, no partial state, books match the perp, the bounty within its cap; cycles succeed once it is reverted.',
        // Another entry than the reference's: the reference protocol block with that entry.
        protocolLine(entry),
        'checks:',
        ...cellChecks,
        'baseline:',
        '  steps:',
        '    - cycle: {}',
        'inject:',
        '  faults:',
        `    - { type: ${fault}, target: ${dep.contract ?? `"${dep.address}"`}, params: ${faultParams(fault, fn)} }`,
        '  steps:',
        '    - cycle: {}',
        'recover:',
        '  steps:',
        '    - cycle: { count: 2 }',
        '',
      ].join('\n')
      cells.push({ name, fault, contract: who, signature: fn, yaml })
    }
  return cells
}

/** The reference protocol block, with another entry than its own when asked. */
const protocolLine = (entry: string) => `protocol: ${entry === referenceProtocol.entry ? 'reference' : JSON.stringify({ ...referenceProtocol, entry })}`

/**
 * The reference vault's guards and the levels each guard row tries, just under and just over the
 * threshold (and one far over): `maxDeviationBps` 200 between the feed and the TWAP, `heartbeat`
 * 1 day of feed age, `maxGasPrice` 100 gwei for the bounty, and the flash loan sized to what the
 * lender and the pool can bear. The values are the vault's own defaults (contracts/ReferenceVault.sol).
 */
export const guardLevels = {
  deviationBps: { guard: 200, levels: [150, 300] },
  staleS: { guard: 86_400, levels: [82_800, 90_000] },
  gasGwei: { guard: 100, levels: [90, 150, 2000] },
  shortfallBps: { levels: [5000, 9000] },
} as const

/** A holder deposits in the baseline and must be able to exit in full under the fault (exits stay open in ONLY_UNWIND). */
const exitSteps = {
  baseline: '    - call: { to: vault, fn: "deposit(uint256)", args: ["1000e18"], from: trader }',
  inject: '    - call: { to: vault, fn: "withdraw(uint256)", args: [{ view: "balanceOf(address) returns (uint256)", on: vault, args: [trader] }], from: trader, expect: success, kind: safety }',
}
/** The trade the vault books is the one the perp holds (after ONLY_UNWIND closes it, both are empty). */
const tradeBooks =
  '  - { name: trade-books-match, kind: safety, view: { to: vault, fn: "tradeCollateral() returns (uint256)", equalsView: { to: perp, fn: "tradeCollateral(uint256) returns (uint256)", args: [{ view: "tradeId() returns (uint256)", on: vault }] } } }'

/**
 * The guard rows: a feed move up and down around the deviation guard, feed ages around the
 * heartbeat, gas prices around the bounty's gas cap, and a liquidity shortfall of the lender's and
 * the pool's balance under a large rebalance. Over a risk guard the vault must switch to
 * ONLY_UNWIND during the fault (`risk-mode` equals 1, safety); under it, stay NORMAL (equals 0,
 * liveness: a needless unwind is not a loss). Every row is judged by the dependency cells' checks too.
 */
export function guardCells(entry: string): Cell[] {
  const cells: Cell[] = []
  const add = (name: string, fault: string, contract: string, signature: string, spec: string, o: { checks: string[]; baseline?: string[]; inject: string[] }) => {
    const yaml = [
      '# Written by `forkchaos explore`: one guard row of its matrix, a scenario like any other.',
      `name: ${name}`,
      `description: ${JSON.stringify(`${fault} on ${contract}: ${signature}.`)}`,
      'hypothesis: >',
      `  With ${contract} at ${signature}, ${entry} keeps the vault's guards: no funds lost, no partial state, books match`,
      '  the perp, the bounty within its cap, ONLY_UNWIND exactly past a risk guard; cycles succeed once it is reverted.',
      protocolLine(entry),
      'checks:',
      ...cellChecks,
      ...o.checks,
      'baseline:',
      '  steps:',
      ...(o.baseline ?? []),
      '    - cycle: {}',
      'inject:',
      '  faults:',
      `    - ${spec}`,
      '  steps:',
      ...o.inject,
      'recover:',
      '  steps:',
      '    - cycle: { count: 2 }',
      '',
    ].join('\n')
    cells.push({ name, fault, contract, signature, yaml })
  }
  const riskMode = (over: boolean) => (over ? '  - { name: risk-mode, kind: safety, phases: [inject], riskMode: { equals: 1 } }' : '  - { name: risk-mode, kind: liveness, phases: [inject], riskMode: { equals: 0 } }')
  const { deviationBps, staleS, gasGwei, shortfallBps } = guardLevels
  for (const direction of ['down', 'up'] as const)
    for (const bps of deviationBps.levels) {
      const over = bps > deviationBps.guard
      add(`explore-price-feed-${direction}-${bps}`, 'oracle.divergence', 'feed', `${direction} ${bps} bps (guard ${deviationBps.guard})`, `{ type: oracle.divergence, target: feed, params: { bps: ${bps}, direction: ${direction} } }`, {
        checks: [riskMode(over), tradeBooks],
        baseline: [exitSteps.baseline],
        inject: ['    - cycle: {}', exitSteps.inject],
      })
    }
  for (const age of staleS.levels) {
    const over = age > staleS.guard
    add(`explore-stale-feed-${age}`, 'oracle.divergence', 'feed', `${age} s old (heartbeat ${staleS.guard} s)`, `{ type: oracle.divergence, target: feed, params: { bps: 0, staleS: ${age} } }`, {
      checks: [riskMode(over), tradeBooks],
      baseline: [exitSteps.baseline],
      inject: ['    - cycle: {}', exitSteps.inject],
    })
  }
  for (const gwei of gasGwei.levels)
    add(`explore-gas-${gwei}`, 'gas.spike', 'chain', `base fee ${gwei} gwei (cap ${gasGwei.guard})`, `{ type: gas.spike, params: { baseFeeGwei: ${gwei} } }`, { checks: [], inject: ['    - cycle: { count: 2 }'] })
  for (const [who, token] of [['lender', ', token: asset'], ['pair', '']] as const)
    for (const cut of shortfallBps.levels)
      add(`explore-shortfall-${who}-${cut}`, 'liquidity.shortfall', who, `${cut / 100} % ${who === 'pair' ? 'reserves' : 'asset'} cut, 400k deposit`, `{ type: liquidity.shortfall, target: ${who}, params: { cutBps: ${cut}${token} } }`, {
        checks: ['  - { name: flash-repaid, kind: safety, flashRepaid: true }'],
        inject: ['    - call: { to: vault, fn: "deposit(uint256)", args: ["400000e18"], from: depositor }', '    - cycle: {}'],
      })
  return cells
}
