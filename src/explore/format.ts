import type { ExploreReport } from './run.js'
import type { Trace } from './trace.js'

const pad = (s: string, n: number) => (s.length >= n ? s : s + ' '.repeat(n - s.length))

/** The dependency list: one line per external selector, then the storage read per contract. */
export function formatDependencies(trace: Trace): string {
  const lines = [`  ${trace.entry} on ${trace.to}: ${trace.dependencies.length} external functions`]
  for (const d of trace.dependencies)
    lines.push(`    ${pad(d.contract ?? d.address, 8)} ${pad(d.signature ?? d.selector, 40)} ${d.selector} ×${pad(String(d.calls), 3)} ${d.view ? 'view' : 'call'}  revert ${d.failure}`)
  lines.push(`  read: ${trace.reads.map((r) => `${r.contract ?? r.address} ${r.slots} slot${r.slots === 1 ? '' : 's'}`).join(', ')}`)
  return lines.join('\n')
}

/** The matrix: one row per cell (fault × selector), one column per check, and the verdict. */
export function formatMatrix(report: ExploreReport): string {
  const short: Record<string, string> = { 'dependency.revert': 'revert', 'dependency.garbage': 'garbage', 'dependency.gas': 'gas', 'oracle.divergence': 'oracle', 'gas.spike': 'spike', 'liquidity.shortfall': 'shortfall' }
  const head = `  ${pad('fault', 9)} ${pad('dependency', 44)} ${report.checks.map((c) => pad(c, c.length)).join(' ')}  verdict`
  const rows = report.cells.map((c) => {
    const marks = report.checks.map((n) => pad(c.checks[n] === undefined ? '-' : c.checks[n] ? (c.reread.includes(n) ? 'ok*' : 'ok') : c.unread.includes(n) ? 'UNREAD' : 'FAIL', n.length)).join(' ')
    const row = `  ${pad(short[c.fault] ?? c.fault, 9)} ${pad(`${c.contract}${c.fault.startsWith('dependency.') ? '.' : ' '}${c.signature}`, 44)} ${marks}  ${c.verdict}`
    return c.file ? `${row}\n      ${c.reason}\n      written: ${c.file}\n      replay: ${c.replay}` : row
  })
  const held = report.cells.filter((c) => c.verdict === 'held').length
  const legend = [
    '  ok: held · FAIL: broke · -: not a check of that row · ok*: its view reverted under the fault (it calls that dependency itself), so it was judged on a read right after the',
    "  fault's revert, before any recover step · UNREAD: its view could not be read under the fault nor after its revert: a failure",
  ].join('\n')
  return [head, ...rows, legend, `${report.cells.length} cells: ${held} held, ${report.cells.length - held} not · ${(report.durationMs / 1000).toFixed(1)} s · seed ${report.seed}`].join('\n')
}
