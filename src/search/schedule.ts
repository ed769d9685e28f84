import type { Dependency } from '../explore/trace.js'
import type { Prng } from '../util/prng.js'

/**
 * One item of a schedule: a step (cycle, deposit, withdraw, warp) or a fault apply / revert.
 * `level` indexes the item's ladder of parameters, smallest first, so a shrink lowers it.
 */
export type Item =
  | { kind: 'cycle'; level: number }
  | { kind: 'deposit'; level: number }
  | { kind: 'withdraw'; level: number }
  | { kind: 'warp'; level: number }
  | { kind: 'apply'; id: string; fault: number; level: number }
  | { kind: 'revert'; id: string }

/** A fault of the pool: its type, target and one params text per level (smallest first). */
export type PoolFault = { type: string; target: string; levels: string[] }

/** Limits of a schedule: steps per episode, and faults applied at once. */
export const limits = { steps: 64, activeFaults: 2 } as const

/** The parameter ladders of the steps, smallest first. */
export const ladders = {
  cycle: [1, 2, 3],
  deposit: ['1000e18', '50000e18', '400000e18'],
  withdraw: ['1e18', '1000e18', '50000e18'],
  warp: [60, 3600, 86400],
} as const

/**
 * The fault pool: explore's matrix (`dependency.revert` / `garbage` / `gas` on every external
 * selector the entry calls), gas spikes either side of the vault's 100 gwei cap and far beyond
 * it, and feed moves up and down around the 2 % deviation guard.
 */
export function faultPool(dependencies: readonly Dependency[], feed: string | undefined = 'feed'): PoolFault[] {
  const pool: PoolFault[] = []
  for (const dep of dependencies) {
    const fn = dep.signature ?? dep.selector
    const target = dep.contract ?? `"${dep.address}"`
    pool.push({ type: 'dependency.revert', target, levels: [`{ selectors: ["${fn}"], reason: "forkchaos search" }`] })
    pool.push({ type: 'dependency.garbage', target, levels: [`{ selectors: ["${fn}"], words: 1 }`] })
    pool.push({ type: 'dependency.gas', target, levels: [50_000, 200_000].map((g) => `{ selectors: ["${fn}"], gas: ${g} }`) })
  }
  pool.push({ type: 'gas.spike', target: '', levels: [150, 300, 2000].map((g) => `{ baseFeeGwei: ${g} }`) })
  // The price feed by its name in the address book (on a user's fork: the dependency that answers latestRoundData(); none, no feed moves).
  if (feed)
    for (const direction of ['up', 'down'])
      pool.push({ type: 'oracle.divergence', target: feed, levels: [100, 190, 210, 500, 1000].map((b) => `{ bps: ${b}, direction: ${direction} }`) })
  return pool
}

/** The steps a schedule draws from (a cycle three times as often): the reference vault's deposits and withdrawals besides cycles and warps. */
export const referenceSteps = ['cycle', 'cycle', 'cycle', 'deposit', 'withdraw', 'warp'] as const
/** On a user's protocol: keeper cycles and warps only (a protocol block does not describe its deposit or withdraw functions). */
export const protocolSteps = ['cycle', 'cycle', 'cycle', 'warp'] as const

/** A seeded schedule of `steps` items: steps, and fault applies and reverts (at most 2 at once, on different contracts). */
export function drawSchedule(prng: Prng, pool: readonly PoolFault[], steps: number, kinds: readonly ('cycle' | 'deposit' | 'withdraw' | 'warp')[] = referenceSteps): Item[] {
  const items: Item[] = []
  const active: { id: string; target: string | undefined }[] = []
  let n = 0
  for (let i = 0; i < steps; i++) {
    const r = prng.next()
    if (r < 0.3 && active.length < limits.activeFaults) {
      // A family first (dependency, gas, oracle), then a fault of it: the few gas and oracle
      // faults are drawn as often as the many dependency cells.
      const families = [...new Set(pool.map((f) => f.type.split('.')[0]))]
      const family = families[prng.int(0, families.length - 1)]
      const of = pool.flatMap((f, k) => (f.type.startsWith(`${family}.`) ? [k] : []))
      const fault = of[prng.int(0, of.length - 1)] as number
      const level = prng.int(0, (pool[fault]?.levels.length ?? 1) - 1)
      // One fault per contract at a time: a feed move cannot find the answer of a feed whose
      // latestRoundData() a dependency fault already answers. A clash draws a cycle instead.
      const target = pool[fault]?.target
      if (target && active.some((a) => a.target === target)) {
        items.push({ kind: 'cycle', level: 0 })
        continue
      }
      const id = `f${n++}`
      active.push({ id, target })
      items.push({ kind: 'apply', id, fault, level })
    } else if (r < 0.4 && active.length > 0) {
      const { id } = active.splice(prng.int(0, active.length - 1), 1)[0] as { id: string }
      items.push({ kind: 'revert', id })
    } else {
      const kind = kinds[prng.int(0, kinds.length - 1)] as (typeof kinds)[number]
      items.push({ kind, level: prng.int(0, ladders[kind].length - 1) })
    }
  }
  return items
}

/** The safety checks every episode is judged by, after every step (`always: true`). */
export const searchChecks = ['no-funds-lost', 'no-partial-state', 'books-match-perp', 'bounty-capped'] as const

/** Each search check as YAML list lines, by name. */
const checkLines: Record<(typeof searchChecks)[number], string[]> = {
  'no-funds-lost': ['  - { name: no-funds-lost, kind: safety, always: true, sharePriceFloor: { minBps: 9950 } }'],
  'no-partial-state': ['  - { name: no-partial-state, kind: safety, always: true, cycleAtomic: true }'],
  'books-match-perp': [
    '  - name: books-match-perp',
    '    kind: safety',
    '    always: true',
    '    view: { to: vault, fn: "alpShares() returns (uint256)", equalsView: { to: perp, fn: "alpBalanceOf(address) returns (uint256)", args: [vault] } }',
  ],
  'bounty-capped': ['  - { name: bounty-capped, kind: safety, always: true, bountyCapped: true }'],
}

/**
 * The system a schedule runs on: `protocol: reference` and every search check, or a user's
 * protocol block and address book inline (`header`) with the checks it provides for (`checks`,
 * names of `searchChecks`).
 */
export type ScheduleFrame = { header: string[]; checks: readonly string[]; hypothesis: string[] }
export const referenceSchedule: ScheduleFrame = {
  header: ['protocol: reference'],
  checks: searchChecks,
  hypothesis: [
    '  Under any schedule of keeper cycles, deposits, withdrawals, warps and dependency, gas and oracle',
    '  faults, after every transaction: no funds lost, no partial state, books match the perp, the bounty within its cap.',
  ],
}

/** A user's protocol: its block and address book inline, the checks it provides for named in the hypothesis. */
export function userSchedule(header: string[], checks: readonly string[]): ScheduleFrame {
  return {
    header,
    checks,
    hypothesis: ['  Under any schedule of keeper cycles, warps and dependency, gas and oracle', `  faults, after every transaction: ${checks.join(', ')}.`],
  }
}

/** The schedule as a standalone scenario file the normal loader reads. */
export function scheduleYaml(name: string, items: readonly Item[], pool: readonly PoolFault[], note: string, frame: ScheduleFrame = referenceSchedule): string {
  const steps = items.map((it) => {
    if (it.kind === 'cycle') return `    - cycle: { count: ${ladders.cycle[it.level]}, expect: any }`
    if (it.kind === 'deposit') return `    - call: { to: vault, fn: "deposit(uint256)", args: ["${ladders.deposit[it.level]}"], from: depositor, expect: any }`
    if (it.kind === 'withdraw') return `    - call: { to: vault, fn: "withdraw(uint256)", args: ["${ladders.withdraw[it.level]}"], from: depositor, expect: any }`
    if (it.kind === 'warp') return `    - warp: { seconds: ${ladders.warp[it.level]} }`
    if (it.kind === 'revert') return `    - fault: { revert: ${it.id} }`
    const f = pool[it.fault] as PoolFault
    return `    - fault: { id: ${it.id}, apply: { type: ${f.type}, ${f.target ? `target: ${f.target}, ` : ''}params: ${f.levels[it.level]} } }`
  })
  return [
    `# Written by \`forkchaos search\`: ${note}`,
    `name: ${name}`,
    'hypothesis: >',
    ...frame.hypothesis,
    ...frame.header,
    'checks:',
    ...searchChecks.filter((c) => frame.checks.includes(c)).flatMap((c) => checkLines[c]),
    'baseline:',
    '  steps:',
    '    - cycle: {}',
    'inject:',
    '  faults: []',
    '  steps:',
    ...(steps.length ? steps : ['    - mine: {}']),
    '',
  ].join('\n')
}
