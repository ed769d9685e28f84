import type { Address } from 'viem'
import { parse } from 'yaml'
import { checkProblem } from '../checks/registry.js'
import { referenceProtocol } from '../scenario/protocol.js'
import type { CheckSpec, Guards, Protocol } from '../scenario/types.js'
import type { Axis, Discovery, FoundGuard } from './guards.js'
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

/**
 * The checks of the reference vault itself, not of a protocol block: they read functions of
 * forkchaos's own contracts (the vault's `alpShares()` and `tradeCollateral()`, the perp beside
 * it), so on a user's protocol they are left out.
 */
const referenceOnly: Record<string, string> = {
  'books-match-perp': "it compares the reference vault's alpShares() with its perp's alpBalanceOf(vault): a check of forkchaos's own vault, which a protocol block does not describe",
  'trade-books-match': "it compares the reference vault's tradeCollateral() with its perp's: a check of forkchaos's own vault, which a protocol block does not describe",
  'holder-exits': "it deposits and withdraws through the reference vault's deposit(uint256)/withdraw(uint256): functions a protocol block does not describe",
}

/**
 * What every cell is judged with, and the lines naming the system that each cell's scenario
 * carries (so a written file stands alone): on the embedded chain `protocol: reference` and all
 * the checks; on a user's fork their protocol block and address book inline, and only the checks
 * that block provides for (`omitted` says which were left out and why).
 */
export type CellFrame = {
  /** `protocol: …` (and `contracts:`, `accounts:`), after the hypothesis. */
  header: string[]
  /** The dependency cells' checks, as YAML list items. */
  checks: string[]
  names: string[]
  omitted: { check: string; why: string }[]
  /** The reference vault's own guard-row checks and steps (trade books, a holder's exit, the 400k deposit). */
  reference: boolean
  /** `protocol.riskMode` is given: the risk-mode check of the feed rows. */
  riskMode: boolean
  /** `protocol.lender`: the lender's name and its token's, for the lender shortfall rows and flash-repaid. */
  lender: { address: string; token: string } | undefined
  /** The V2 pool a shortfall row cuts (`pair` on the reference; on a fork the dependency that answers getReserves()). */
  pair: string | undefined
}

/** The reference protocol's frame (the embedded chain), with another entry than its own when asked. */
export function referenceFrame(entry: string): CellFrame {
  return { header: [protocolLine(entry)], checks: cellChecks, names: [...checkNames], omitted: [], reference: true, riskMode: true, lender: { address: 'lender', token: 'asset' }, pair: 'pair' }
}

/**
 * A user's protocol's frame: its block (with `entry`) and address book inline, the checks whose
 * protocol fields it gives (the loader's own `checkProblem` decides: a check it would refuse in a
 * scenario file is left out, with its message), none of the reference vault's own.
 */
export function protocolFrame(protocol: Protocol, contracts: Record<string, Address>, accounts: Record<string, Address>, entry: string, pair: string | undefined): CellFrame {
  const own = { ...protocol, entry }
  const header = [`protocol: ${JSON.stringify(own)}`, `contracts: ${JSON.stringify(contracts)}`, ...(Object.keys(accounts).length > 0 ? [`accounts: ${JSON.stringify(accounts)}`] : [])]
  const items = splitItems(cellChecks)
  const checks: string[] = []
  const names: string[] = []
  const omitted: CellFrame['omitted'] = []
  for (const item of items) {
    const spec = (parse(`${item.join('\n')}\n`) as CheckSpec[])[0] as CheckSpec
    // cycleAtomic compares the state fingerprint around each cycle: without `protocol.state` there is none, and it would hold whatever happened.
    const noState = spec.cycleAtomic !== undefined && (protocol.state ?? []).length === 0 ? 'needs `protocol.state` (the views whose values make the state fingerprint), which the protocol file does not give: without it a partial state change cannot be seen' : undefined
    const why = referenceOnly[spec.name] ?? noState ?? checkProblem(spec, own, 'checks')?.message.replace(/^`checks\.\w+` \(check `[^`]+`\) /, '').replace("this scenario's `protocol` block", 'the protocol file')
    if (why) omitted.push({ check: spec.name, why })
    else {
      checks.push(...item)
      names.push(spec.name)
    }
  }
  if (!protocol.riskMode) omitted.push({ check: 'risk-mode', why: 'needs `protocol.riskMode`, which the protocol file does not give (the feed rows then keep the other checks)' })
  for (const c of ['trade-books-match', 'holder-exits']) omitted.push({ check: c, why: referenceOnly[c] ?? '' })
  if (!protocol.lender) omitted.push({ check: 'flash-repaid', why: 'needs `protocol.lender`, which the protocol file does not give (no lender shortfall rows)' })
  return { header, checks, names, omitted, reference: false, riskMode: protocol.riskMode !== undefined, lender: protocol.lender, pair }
}

/** The list items of YAML lines (`  - …` starts one; deeper lines continue it). */
function splitItems(lines: readonly string[]): string[][] {
  const out: string[][] = []
  for (const line of lines) if (line.startsWith('  - ') || out.length === 0) out.push([line])
  else out.at(-1)?.push(line)
  return out
}

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
export function buildMatrix(dependencies: readonly Dependency[], entry: string, kinds: readonly FaultKind[] = faultKinds, frame: CellFrame = referenceFrame(entry)): Cell[] {
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
        ...(frame.reference
          ? [`  While ${who}'s ${fn} is faulted (${fault}), ${entry} either reverts whole or runs correctly: no funds`, '  lost, no partial state, books match the perp, the bounty within its cap; cycles succeed once it is reverted.']
          : [`  While ${who}'s ${fn} is faulted (${fault}), ${entry} either reverts whole or runs correctly (${frame.names.join(', ')}).`]),
        // The system: `protocol: reference` (another entry than its own: the block with that entry), or the user's block and address book.
        ...frame.header,
        'checks:',
        ...frame.checks,
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
 * The levels each guard row tries around a threshold: 10 % under and 10 % over it (at least one
 * unit: 180 and 220 bps around 200), and one far over it (10×; the gas cap 20×, so 2,000 gwei
 * around 100). A feed move is at most 9,999 bps. The liquidity shortfalls are not a threshold the
 * entry's inputs cross, so they stay at 50 % and 90 % of the lender's and the pool's balance.
 */
export const guardMargins = { under: 0.9, over: 1.1, far: { price: 10, age: 10, gas: 20 }, priceMaxBps: 9_999, shortfallBps: [5000, 9000] } as const

/** How far a found threshold may sit from the declared one before the row fails: 5 % of the declared value (at least the search's resolution). */
export const guardTolerance = 0.05

/** The declared guard each axis is compared with. */
export const declaredOf = (axis: Axis, declared: Guards | undefined) =>
  axis === 'feed-age' ? declared?.heartbeatS : axis === 'gas-price' ? declared?.maxGasPriceGwei : declared?.deviationBps

/** One level a guard row tries, and where it comes from. */
export type GuardLevel = { level: number; from: 'found' | 'declared' | 'bound'; over: boolean }

/**
 * The levels of one axis: just under, just over and far over the threshold found; the same around
 * the declared one; and, where nothing was found, the search range's top (a missing guard must
 * fail there). Whether a level is over the guard is judged against the declared value when there
 * is one (it is the intended guard), else against the one found; the range's top is over.
 */
export function levelsOf(found: FoundGuard, declared: Guards | undefined): GuardLevel[] {
  const intended = declaredOf(found.axis, declared)
  const far = found.axis === 'gas-price' ? guardMargins.far.gas : found.axis === 'feed-age' ? guardMargins.far.age : guardMargins.far.price
  const round = (x: number) => (found.unit === 'gwei' ? Number(x.toFixed(9)) : Math.round(x))
  const cap = (x: number) => (found.unit === 'bps' ? Math.min(x, guardMargins.priceMaxBps) : x)
  const around = (t: number, from: GuardLevel['from']) => {
    const step = Math.max(1, t * (guardMargins.over - 1))
    return [
      { level: round(Math.max(0, t - step)), from },
      { level: round(cap(t + step)), from },
      { level: round(cap(t * far)), from },
    ]
  }
  const raw: Omit<GuardLevel, 'over'>[] = [
    ...(found.threshold !== undefined ? around(found.threshold, 'found') : [{ level: found.range[1], from: 'bound' as const }]),
    ...(intended !== undefined ? around(intended, 'declared') : []),
  ]
  const guard = intended ?? found.threshold
  const out: GuardLevel[] = []
  for (const l of raw.sort((x, y) => x.level - y.level))
    if (!out.some((o) => o.level === l.level)) out.push({ ...l, over: l.from === 'bound' || (guard !== undefined && l.level > guard) })
  return out
}

/** A holder deposits in the baseline and must be able to exit in full under the fault (exits stay open in ONLY_UNWIND). */
const exitSteps = {
  baseline: '    - call: { to: vault, fn: "deposit(uint256)", args: ["1000e18"], from: trader }',
  inject: '    - call: { to: vault, fn: "withdraw(uint256)", args: [{ view: "balanceOf(address) returns (uint256)", on: vault, args: [trader] }], from: trader, expect: success, kind: safety }',
}
/** The trade the vault books is the one the perp holds (after ONLY_UNWIND closes it, both are empty). */
const tradeBooks =
  '  - { name: trade-books-match, kind: safety, view: { to: vault, fn: "tradeCollateral() returns (uint256)", equalsView: { to: perp, fn: "tradeCollateral(uint256) returns (uint256)", args: [{ view: "tradeId() returns (uint256)", on: vault }] } } }'

/**
 * The guard rows, from what discovery found (and the protocol declared): the feed moved under and
 * over the TWAP around the deviation guard, feed ages around the heartbeat, gas prices around the
 * bounty's gas cap (`levelsOf`), and a liquidity shortfall of the lender's and the pool's balance
 * under a large rebalance. Over a risk guard the vault must switch to ONLY_UNWIND during the fault
 * (`risk-mode` equals 1, safety); under it, stay NORMAL (equals 0, liveness: a needless unwind is
 * not a loss). Every row is judged by the dependency cells' checks too. `feed` is the price source's
 * name in the address book (no price or age rows without one).
 */
export function guardCells(entry: string, discovery: Discovery, declared: Guards | undefined, feed: string | undefined, frame: CellFrame = referenceFrame(entry)): Cell[] {
  const cells: Cell[] = []
  const add = (name: string, fault: string, target: string, signature: string, spec: string, o: { checks: string[]; baseline?: string[]; inject: string[] }) => {
    // A contract the address book does not name is targeted by its quoted address, and shown without the quotes.
    const contract = target.replace(/^"(.*)"$/, '$1')
    const yaml = [
      '# Written by `forkchaos explore`: one guard row of its matrix, a scenario like any other.',
      `name: ${name}`,
      `description: ${JSON.stringify(`${fault} on ${contract}: ${signature}.`)}`,
      'hypothesis: >',
      ...(frame.reference
        ? [`  With ${contract} at ${signature}, ${entry} keeps the vault's guards: no funds lost, no partial state, books match`, '  the perp, the bounty within its cap, ONLY_UNWIND exactly past a risk guard; cycles succeed once it is reverted.']
        : [`  With ${contract} at ${signature}, ${entry} keeps the vault's guards (${[...frame.names, ...o.checks.map((c) => /name: ([\w-]+)/.exec(c)?.[1])].join(', ')}); cycles succeed once it is reverted.`]),
      ...frame.header,
      'checks:',
      ...frame.checks,
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
  // A feed row: ONLY_UNWIND past the guard (protocol.riskMode), and on the reference vault its trade books and a holder's exit under the fault.
  const feedRow = (over: boolean) =>
    frame.reference
      ? { checks: [riskMode(over), tradeBooks], baseline: [exitSteps.baseline], inject: ['    - cycle: {}', exitSteps.inject] }
      : { checks: frame.riskMode ? [riskMode(over)] : [], inject: ['    - cycle: {}'] }
  const riskMode = (over: boolean) => (over ? '  - { name: risk-mode, kind: safety, phases: [inject], riskMode: { equals: 1 } }' : '  - { name: risk-mode, kind: liveness, phases: [inject], riskMode: { equals: 0 } }')
  const of = (axis: Axis) => discovery.guards.find((g) => g.axis === axis)
  /** `guard 200 bps` (found and declared agree), `found 2009 bps, declared 200 bps`, `none found within 5000 bps`. */
  const guardText = (g: FoundGuard) => {
    const d = declaredOf(g.axis, declared)
    const f = g.threshold === undefined ? `none found up to ${g.range[1]}` : `found ${g.threshold}`
    return d === undefined ? `${f} ${g.unit}` : d === g.threshold ? `guard ${d} ${g.unit}` : `${f}, declared ${d} ${g.unit}`
  }
  for (const direction of ['down', 'up'] as const) {
    const g = of(`price-${direction}`)
    if (!g || !feed) continue
    const offset = (g.offsetBps ?? 0) / 10_000
    for (const { level, over } of levelsOf(g, declared)) {
      // The fault moves the feed from its own answer; the level is from the TWAP, where the answer sits `offsetBps` away.
      const d = level / 10_000
      const move = Math.min(guardMargins.priceMaxBps, Math.max(0, Math.round((direction === 'up' ? (1 + d) / (1 + offset) - 1 : 1 - (1 - d) / (1 + offset)) * 10_000)))
      add(`explore-price-feed-${direction}-${level}`, 'oracle.divergence', feed, `${direction} ${move} bps, ${level} ${direction === 'up' ? 'over' : 'under'} TWAP (${guardText(g)})`, `{ type: oracle.divergence, target: ${feed}, params: { bps: ${move}, direction: ${direction} } }`, {
        ...feedRow(over),
      })
    }
  }
  const age = of('feed-age')
  if (age && feed)
    for (const { level, over } of levelsOf(age, declared)) {
      const staleS = Math.max(0, level - (age.baseAgeS ?? 0))
      add(`explore-stale-feed-${level}`, 'oracle.divergence', feed, `${level} s old (${guardText(age)})`, `{ type: oracle.divergence, target: ${feed}, params: { bps: 0, staleS: ${staleS} } }`, {
        ...feedRow(over),
      })
    }
  const gas = of('gas-price')
  if (gas)
    for (const { level } of levelsOf(gas, declared))
      add(`explore-gas-${String(level).replace('.', '-')}`, 'gas.spike', 'chain', `base fee ${level} gwei (${guardText(gas)})`, `{ type: gas.spike, params: { baseFeeGwei: ${level} } }`, { checks: [], inject: ['    - cycle: { count: 2 }'] })
  // The lender's token and the pool's reserves cut; on the reference vault under a 400k deposit (its rebalance then borrows), elsewhere under a cycle as it comes.
  const pools: [string, string, string][] = [
    ...(frame.lender ? [['lender', frame.lender.address, `, token: ${frame.lender.token}`] as [string, string, string]] : []),
    ...(frame.pair ? [['pair', frame.pair, ''] as [string, string, string]] : []),
  ]
  for (const [role, who, token] of pools)
    for (const cut of guardMargins.shortfallBps)
      add(`explore-shortfall-${role}-${cut}`, 'liquidity.shortfall', who, `${cut / 100} % ${role === 'pair' ? 'reserves' : frame.reference ? 'asset' : (frame.lender?.token ?? 'token')} cut${frame.reference ? ', 400k deposit' : ''}`, `{ type: liquidity.shortfall, target: ${who}, params: { cutBps: ${cut}${token} } }`, {
        checks: frame.lender ? ['  - { name: flash-repaid, kind: safety, flashRepaid: true }'] : [],
        inject: [...(frame.reference ? ['    - call: { to: vault, fn: "deposit(uint256)", args: ["400000e18"], from: depositor }'] : []), '    - cycle: {}'],
      })
  return cells
}
