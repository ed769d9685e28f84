import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { type Abi, type Address, getAddress, isAddress } from 'viem'
import * as Experiment from '../experiment/experiment.js'
import { forkTarget } from '../experiment/targets/fork.js'
import { rereadPrefix, unreadPrefix } from '../checks/registry.js'
import { InfraError, InputError } from '../errors.js'
import { onTeardown } from '../lifecycle.js'
import type { Verdict } from '../report/types.js'
import { loadScenario } from '../scenario/loader.js'
import { KEEPER_GAS } from '../steps/tx.js'
import { devAccounts } from '../targets/embedded.js'
import { type ForkSource, pinForkBlock } from '../targets/fork.js'
import { referenceProtocol } from '../scenario/protocol.js'
import type { Guards, Protocol } from '../scenario/types.js'
import { type Discovery, discoverGuards } from './guards.js'
import { buildMatrix, type CellFrame, declaredOf, type FaultKind, guardCells, guardTolerance, protocolFrame, referenceFrame } from './matrix.js'
import { type Trace, traceEntry } from './trace.js'

export type CellResult = {
  name: string
  fault: string
  contract: string
  signature: string
  verdict: Verdict
  reason: string
  /** Per check of the cell: held (true) or broke (false) in any phase; a check the cell does not have is absent. */
  checks: Record<string, boolean>
  /** The checks among those that broke because their own view could not be read, under the fault and again once it was reverted. */
  unread: string[]
  /**
   * The checks whose view could not be read under the fault (sharePrice() calls the TWAP and the
   * token balances itself) and were judged on a read right after the fault's revert, before any
   * recover step (`Session.rereadsUnread`): `checks` holds that judgement.
   */
  reread: string[]
  /** The standalone scenario file of a cell that did not hold, and the command that replays it. */
  file?: string
  replay?: string
  durationMs: number
}

export type ExploreReport = {
  seed: number
  entry: string
  source: string
  trace: Trace
  /** The guards found by perturbing the entry's inputs (src/explore/guards.ts), with the declared ones they were compared with. */
  guards: Discovery & { declared: Guards }
  checks: readonly string[]
  /** The checks left out of the matrix because the protocol gives nothing they could judge (a user's protocol), and why. */
  omitted: CellFrame['omitted']
  cells: CellResult[]
  durationMs: number
}

/** A user's system on a fork (`--protocol FILE`): its protocol block, address book and accounts, as the loader read them. */
export type UserSystem = { file: string; protocol: Protocol; contracts: Record<string, Address>; abis?: Record<string, Abi>; accounts: Record<string, Address> }

/**
 * A name of the user's system as an address: an address itself, or a name under `contracts:` or
 * `accounts:` of the protocol file (exit 2 naming the field otherwise, before anything boots).
 */
export function resolveUserName(user: UserSystem, name: string, field: string): Address {
  if (isAddress(name)) return getAddress(name)
  const found = user.contracts[name] ?? user.accounts[name]
  if (found) return getAddress(found)
  throw new InputError(`${user.file}: \`${field}\` names \`${name}\`, which is neither an address nor a contract under \`contracts:\` of this file.`, {
    context: { File: user.file, Field: field, Known: Object.keys(user.contracts).join(', ') || 'none' },
    hint: 'Name the address under `contracts:` (e.g. `contracts: { vault: "0x…" }`).',
  })
}

/**
 * `forkchaos explore`: boots the fork target once, traces one healthy call of the entry, builds
 * the fault matrix from its external calls and runs every cell as a scenario (loaded from its
 * YAML by the normal loader, run by the experiment engine, the fork reset by snapshot between
 * cells), one at a time. A cell that does not hold is written under `out` with its replay.
 */
export async function explore(options: {
  source: ForkSource
  entry: string
  seed: number
  out: string
  /** Appended to every replay command: the target flags (`--vault-build …`). */
  replayFlags: string
  /** Only the cells of these external functions (signatures, e.g. `closeTrade(uint256)`); all when absent. */
  only?: readonly string[]
  /** Only these fault kinds (all three when absent). */
  faults?: readonly FaultKind[]
  /** The guard rows (price, feed age, gas, shortfall: `guardCells`); default: when neither `only` nor `faults` narrows the matrix. */
  guards?: boolean
  /**
   * The guards the protocol declares (default: the reference protocol's, the vault's own
   * defaults); `{}` declares none, so the rows are around what was found only.
   */
  declared?: Guards
  onCell?: (cell: CellResult) => void
  /** A fork target to use (and leave running) instead of one booted and stopped here (tests, benches). */
  target?: ReturnType<typeof forkTarget>
  onTrace?: (trace: Trace) => void
  onGuards?: (guards: ExploreReport['guards']) => void
  /** After the trace: the checks the matrix left out (a user's protocol). */
  onOmitted?: (omitted: CellFrame['omitted']) => void
  /** The user's system on a fork (`--protocol`); absent: the reference protocol of the embedded chain. */
  user?: UserSystem
  /** Appended to the comparison rows' replay (`forkchaos explore …`): `--protocol FILE`. */
  exploreFlags?: string
}): Promise<ExploreReport> {
  const t0 = performance.now()
  const user = options.user
  const protocol: Protocol = user ? { ...user.protocol, entry: options.entry } : referenceProtocol
  // The user's names resolve before anything boots.
  const userVault = user ? resolveUserName(user, user.protocol.vault, 'protocol.vault') : undefined
  if (user?.protocol.lender) {
    resolveUserName(user, user.protocol.lender.address, 'protocol.lender.address')
    resolveUserName(user, user.protocol.lender.token, 'protocol.lender.token')
  }
  const target = options.target ?? forkTarget({ source: options.source })
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'forkchaos-explore-'))
  // Ctrl-C or an error before the finally: the teardown removes the cells' directory too.
  const forget = onTeardown('explore cells directory', () => fs.rmSync(tmp, { recursive: true, force: true }))
  const cells: CellResult[] = []
  // The matrix's columns: the dependency cells' checks first, then each check a guard row adds (and a step's `expect`).
  const columns: string[] = []
  const info = { seed: options.seed, replay: '', emit: () => {} }
  try {
    await target.boot(info)
    const fork = target.current()
    if (!fork) throw new InfraError('The fork target did not boot.')
    const replayFlags = await pinForkBlock(options.replayFlags, fork)
    // The address book: the embedded chain's deployment, or the user's `contracts:` (their names in the list and the matrix).
    const book: Record<string, Address> = user ? { ...user.contracts } : (fork.book as Record<string, Address>)
    const vault = userVault ?? fork.book.vault
    if (!vault) throw new InfraError('The fork has no `vault` in its address book.')
    if (user && (await fork.anvil.rpc.request<string>('eth_getCode', [vault, 'latest'])).length <= 2)
      throw new InputError(`${user.file}: \`protocol.vault\` (\`${user.protocol.vault}\`, ${vault}) has no code on this fork: the address is not a contract at the forked block.`, {
        context: { File: user.file, Field: 'protocol.vault' },
        hint: 'Check the address under `contracts:` and the fork (`--fork-url`, `--fork-block`, `--state`).',
      })
    const trace = await traceEntry(fork.anvil.rpc, { from: devAccounts.keeper as Address, to: vault, entry: options.entry, book, gas: KEEPER_GAS, abis: Object.values(user?.abis ?? {}) })
    options.onTrace?.(trace)
    if (!trace.ok) throw new InfraError(`The healthy call of \`${options.entry}\` reverts on this fork before any fault: nothing to explore.`)
    const quoted = (d: { contract: string | undefined; address: Address }) => d.contract ?? `"${d.address}"`
    const pairDep = trace.dependencies.find((d) => d.signature === 'getReserves()')
    const frame = user ? protocolFrame(user.protocol, user.contracts, user.accounts, options.entry, pairDep ? quoted(pairDep) : undefined) : referenceFrame(options.entry)
    columns.push(...frame.names)
    options.onOmitted?.(frame.omitted)
    const guards = options.guards ?? (!options.only && !options.faults)
    const declared = options.declared ?? protocol.guards ?? {}
    // On the healthy state, before any cell: every probe is a debug_traceCall, nothing is written.
    const discovery = {
      ...(guards
        ? await discoverGuards(fork.anvil.rpc, { from: devAccounts.keeper as Address, to: vault, entry: options.entry, gas: KEEPER_GAS, dependencies: trace.dependencies, bountyEvent: protocol.bountyEvent, declared, signals: protocol.signals ?? [] })
        : { guards: [], calls: 0, durationMs: 0, budget: 0 }),
      declared,
    }
    await fork.reset()
    if (guards) options.onGuards?.(discovery)
    const chosen = trace.dependencies.filter((d) => !options.only || options.only.includes(d.signature ?? d.selector))
    // The price source's name in the address book: the dependency that answers latestRoundData(), else the book's `feed` (an entry that reads no feed still gets its rows at the range's top).
    const feedDep = trace.dependencies.find((d) => d.signature === 'latestRoundData()')
    const feed = feedDep ? quoted(feedDep) : book.feed ? 'feed' : undefined
    for (const cell of [...buildMatrix(chosen, options.entry, options.faults, frame), ...(guards ? guardCells(options.entry, discovery, declared, feed, frame) : [])]) {
      const file = path.join(tmp, `${cell.name}.yaml`)
      fs.writeFileSync(file, cell.yaml)
      const scenario = loadScenario(file)
      const started = performance.now()
      const replayFor = (f: string) => `npx forkchaos run ${f} --seed ${options.seed}${replayFlags}`
      const report = await Experiment.run(scenario, target, { seed: options.seed, replay: replayFor(file) })
      const names = [...new Set(report.checks.map((c) => c.name))]
      for (const n of names) if (!columns.includes(n)) columns.push(n)
      const checks = Object.fromEntries(names.map((n) => [n, report.checks.filter((c) => c.name === n).every((c) => c.ok)]))
      const result: CellResult = {
        name: cell.name,
        fault: cell.fault,
        contract: cell.contract,
        signature: cell.signature,
        verdict: report.verdict,
        reason: report.reason,
        checks,
        unread: names.filter((n) => report.checks.some((c) => c.name === n && !c.ok && c.observed.includes(unreadPrefix))),
        reread: names.filter((n) => report.checks.some((c) => c.name === n && c.observed.startsWith(rereadPrefix))),
        durationMs: Math.round(performance.now() - started),
      }
      if (report.verdict !== 'held') {
        fs.mkdirSync(options.out, { recursive: true })
        const kept = path.join(options.out, `${cell.name}.yaml`)
        fs.writeFileSync(kept, `${cell.yaml.trimEnd()}\n# replay: ${replayFor(kept)}\n`)
        result.file = kept
        result.replay = replayFor(kept)
      }
      cells.push(result)
      options.onCell?.(result)
    }
    if (guards)
      for (const result of comparisonRows(discovery, declared, user?.protocol.vault ?? 'vault', `npx forkchaos explore --seed ${options.seed}${replayFlags}${options.exploreFlags ?? ''}`)) {
        if (!columns.includes(comparisonCheck)) columns.push(comparisonCheck)
        cells.push(result)
        options.onCell?.(result)
      }
    return { seed: options.seed, entry: options.entry, source: options.source.kind, trace, guards: discovery, checks: columns, omitted: frame.omitted, cells, durationMs: Math.round(performance.now() - t0) }
  } finally {
    if (!options.target) await target.stop()
    fs.rmSync(tmp, { recursive: true, force: true })
    forget()
  }
}

/** The check of a comparison row: the guard found is the one declared. */
export const comparisonCheck = 'guard-as-declared'

/**
 * One row per declared guard and axis: held when the threshold found is within `guardTolerance`
 * of the declared one, failed otherwise (naming both), or when none was found within the range.
 * Not a scenario: its replay is the explore run itself.
 */
function comparisonRows(discovery: Discovery, declared: Guards, vault: string, replay: string): CellResult[] {
  const rows: CellResult[] = []
  for (const g of discovery.guards) {
    const d = declaredOf(g.axis, declared)
    if (d === undefined) continue
    const tolerance = Math.max(g.resolution, d * guardTolerance)
    const ok = g.threshold !== undefined && Math.abs(g.threshold - d) <= tolerance
    const found = g.threshold === undefined ? `none found within [${g.range[0]}, ${g.range[1]}] ${g.unit}` : `found ${g.threshold} ${g.unit}`
    const reason = ok
      ? `${g.axis}: ${found}, declared ${d} ${g.unit} (within ±${tolerance} ${g.unit})`
      : `guard \`${g.axis}\` is not as declared: ${found}, declared ${d} ${g.unit} (tolerance ±${tolerance} ${g.unit}; ${g.calls} call${g.calls === 1 ? "" : "s"})`
    rows.push({
      name: `explore-guard-${g.axis}`,
      fault: 'guard.discovery',
      contract: vault,
      signature: `${g.axis} ${found}, declared ${d} ${g.unit}`,
      verdict: ok ? 'held' : 'failed',
      reason,
      checks: { [comparisonCheck]: ok },
      unread: [],
      reread: [],
      ...(ok ? {} : { replay }),
      durationMs: 0,
    })
  }
  return rows
}
