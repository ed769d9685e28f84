import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import type { Address } from 'viem'
import * as Experiment from '../experiment/experiment.js'
import { forkTarget } from '../experiment/targets/fork.js'
import { rereadPrefix, unreadPrefix } from '../checks/registry.js'
import { InfraError } from '../errors.js'
import { onTeardown } from '../lifecycle.js'
import type { Verdict } from '../report/types.js'
import { loadScenario } from '../scenario/loader.js'
import { KEEPER_GAS } from '../steps/tx.js'
import { devAccounts } from '../targets/embedded.js'
import type { ForkSource } from '../targets/fork.js'
import { buildMatrix, checkNames, type FaultKind, guardCells } from './matrix.js'
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

export type ExploreReport = { seed: number; entry: string; source: string; trace: Trace; checks: readonly string[]; cells: CellResult[]; durationMs: number }

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
  onCell?: (cell: CellResult) => void
  /** A fork target to use (and leave running) instead of one booted and stopped here (tests, benches). */
  target?: ReturnType<typeof forkTarget>
  onTrace?: (trace: Trace) => void
}): Promise<ExploreReport> {
  const t0 = performance.now()
  const target = options.target ?? forkTarget({ source: options.source })
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'forkchaos-explore-'))
  // Ctrl-C or an error before the finally: the teardown removes the cells' directory too.
  const forget = onTeardown('explore cells directory', () => fs.rmSync(tmp, { recursive: true, force: true }))
  const cells: CellResult[] = []
  // The matrix's columns: the dependency cells' checks first, then each check a guard row adds (and a step's `expect`).
  const columns: string[] = [...checkNames]
  const info = { seed: options.seed, replay: '', emit: () => {} }
  try {
    await target.boot(info)
    const fork = target.current()
    if (!fork) throw new InfraError('The fork target did not boot.')
    const vault = fork.book.vault
    if (!vault) throw new InfraError('The fork has no `vault` in its address book.')
    const trace = await traceEntry(fork.anvil.rpc, { from: devAccounts.keeper as Address, to: vault, entry: options.entry, book: fork.book as Record<string, Address>, gas: KEEPER_GAS })
    await fork.reset()
    options.onTrace?.(trace)
    if (!trace.ok) throw new InfraError(`The healthy call of \`${options.entry}\` reverts on this fork before any fault: nothing to explore.`)
    const chosen = trace.dependencies.filter((d) => !options.only || options.only.includes(d.signature ?? d.selector))
    const guards = options.guards ?? (!options.only && !options.faults)
    for (const cell of [...buildMatrix(chosen, options.entry, options.faults), ...(guards ? guardCells(options.entry) : [])]) {
      const file = path.join(tmp, `${cell.name}.yaml`)
      fs.writeFileSync(file, cell.yaml)
      const scenario = loadScenario(file)
      const started = performance.now()
      const replayFor = (f: string) => `npx forkchaos run ${f} --seed ${options.seed}${options.replayFlags}`
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
    return { seed: options.seed, entry: options.entry, source: options.source.kind, trace, checks: columns, cells, durationMs: Math.round(performance.now() - t0) }
  } finally {
    if (!options.target) await target.stop()
    fs.rmSync(tmp, { recursive: true, force: true })
    forget()
  }
}
