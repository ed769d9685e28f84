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

export type Cell = { name: string; fault: FaultKind; dependency: Dependency; yaml: string }

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
        `protocol: ${entry === referenceProtocol.entry ? 'reference' : JSON.stringify({ ...referenceProtocol, entry })}`,
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
      cells.push({ name, fault, dependency: dep, yaml })
    }
  return cells
}
