import type { ExploreReport } from './run.js'
import type { Trace } from './trace.js'

const pad = (s: string, n: number) => (s.length >= n ? s : s + ' '.repeat(n - s.length))

/** The dependency list: one line per external selector, then the storage read per contract. */
export function formatDependencies(trace: Trace): string {
  const lines = [`  ${trace.entry} on ${trace.to}: ${trace.dependencies.length} external functions`]
  // The contract column as wide as the longest name in the list (8 at least: the reference's names).
  const width = Math.max(8, ...trace.dependencies.map((d) => (d.contract ?? d.address).length))
  for (const d of trace.dependencies)
    lines.push(`    ${pad(d.contract ?? d.address, width)} ${pad(d.signature ?? d.selector, 40)} ${d.selector} ×${pad(String(d.calls), 3)} ${d.view ? 'view' : 'call'}  revert ${d.failure}`)
  lines.push(`  read: ${trace.reads.map((r) => `${r.contract ?? r.address} ${r.slots} slot${r.slots === 1 ? '' : 's'}`).join(', ')}`)
  return lines.join('\n')
}

/** The matrix: one row per cell (fault × selector), one column per check, and the verdict. */
export function formatMatrix(report: ExploreReport): string {
  const short: Record<string, string> = { 'guard.discovery': 'found', 'dependency.revert': 'revert', 'dependency.garbage': 'garbage', 'dependency.gas': 'gas', 'oracle.divergence': 'oracle', 'gas.spike': 'spike', 'liquidity.shortfall': 'shortfall' }
  const label = (c: ExploreReport['cells'][number]) => `${c.contract}${c.fault.startsWith('dependency.') ? '.' : ' '}${c.signature}`
  const width = Math.max(44, ...report.cells.map((c) => label(c).length))
  const head = `  ${pad('fault', 9)} ${pad('dependency', width)} ${report.checks.map((c) => pad(c, c.length)).join(' ')}  verdict`
  const rows = report.cells.map((c) => {
    const marks = report.checks.map((n) => pad(c.checks[n] === undefined ? '-' : c.checks[n] ? (c.reread.includes(n) ? 'ok*' : 'ok') : c.unread.includes(n) ? 'UNREAD' : 'FAIL', n.length)).join(' ')
    const row = `  ${pad(short[c.fault] ?? c.fault, 9)} ${pad(label(c), width)} ${marks}  ${c.verdict}`
    return c.file ? `${row}\n      ${c.reason}\n      written: ${c.file}\n      replay: ${c.replay}` : row
  })
  const held = report.cells.filter((c) => c.verdict === 'held').length
  const legend = [
    '  ok: held · FAIL: broke · -: not a check of that row · ok*: its view reverted under the fault (it calls that dependency itself), so it was judged on a read right after the',
    "  fault's revert, before any recover step · UNREAD: its view could not be read under the fault nor after its revert: a failure",
  ].join('\n')
  return [head, ...rows, legend, `${report.cells.length} cells: ${held} held, ${report.cells.length - held} not · ${(report.durationMs / 1000).toFixed(1)} s · seed ${report.seed}`].join('\n')
}

/** The guards found: one line per axis (threshold or none, the range searched, calls), the declared value beside it. */
export function formatGuards(guards: ExploreReport['guards']): string {
  const declared = (axis: string) => (axis === 'feed-age' ? guards.declared.heartbeatS : axis === 'gas-price' ? guards.declared.maxGasPriceGwei : guards.declared.deviationBps)
  const lines = [`  guards found by perturbing ${guards.guards.length} inputs: ${guards.calls} calls (budget ${guards.budget}), ${(guards.durationMs / 1000).toFixed(2)} s`]
  for (const g of guards.guards) {
    const d = declared(g.axis)
    const found = g.threshold === undefined ? 'none' : `${g.threshold} ${g.unit}`
    lines.push(`    ${pad(g.axis, 10)} ${pad(found, 13)} ${pad(d === undefined ? 'not declared' : `declared ${d} ${g.unit}`, 22)} ${pad(`[${g.range[0]}, ${g.range[1]}] ${g.unit}`, 24)} ${pad(`${g.calls} calls`, 9)} ${g.outcome}`)
  }
  return lines.join('\n')
}

/** The checks left out of the matrix (a user's protocol that gives nothing they could judge), one line each with why. */
export function formatOmitted(omitted: ExploreReport['omitted']): string {
  if (omitted.length === 0) return ''
  const lines = [`  checks left out (${omitted.length}): nothing in the protocol for them to judge`]
  for (const o of omitted) lines.push(`    ${pad(o.check, 18)} ${o.why}`)
  return lines.join('\n')
}
