import * as fs from 'node:fs'
import * as path from 'node:path'
import { toHtml } from './html.js'
import type { RunReport, ScenarioReport, Verdict } from './types.js'

/** Writes report.json, junit.xml, summary.md and report.html (self-contained, src/report/html.ts) into `dir`; returns their paths. */
export function writeReports(report: RunReport, dir: string): string[] {
  fs.mkdirSync(dir, { recursive: true })
  const files: [string, string][] = [
    ['report.json', `${JSON.stringify(report, null, 2)}\n`],
    ['junit.xml', toJunit(report)],
    ['summary.md', toMarkdown(report)],
    ['report.html', toHtml(report)],
  ]
  return files.map(([name, text]) => {
    const file = path.join(dir, name)
    fs.writeFileSync(file, text)
    return file
  })
}

const icon: Record<Verdict, string> = { held: '✅', degraded: '⚠️', failed: '❌', aborted: '⏹️', error: '💥', skipped: '⏭️' }

export function toMarkdown(report: RunReport): string {
  const lines = [
    `## forkchaos: ${summaryLine(report.scenarios)}`,
    '',
    `Seed \`${report.seed}\` · target \`${report.target.source}\`${report.target.forkBlock ? ` @ ${report.target.forkBlock}` : ''} · ${(report.durationMs / 1000).toFixed(1)} s · replay: \`${report.replay}\``,
    '',
    '| scenario | verdict | faults | checks | MTTR | time |',
    '| --- | --- | --- | --- | --- | --- |',
    ...report.scenarios.map(
      (s) =>
        `| ${s.name} | ${icon[s.verdict]} ${s.verdict} | ${s.faults.map((f) => `\`${f.type}\``).join(', ') || '—'} | ${s.checks.filter((c) => c.ok).length}/${s.checks.length} | ${s.mttrMs === null ? '—' : `${s.mttrMs} ms`} | ${s.durationMs} ms |`,
    ),
    '',
  ]
  for (const s of report.scenarios.filter((x) => x.verdict !== 'held')) {
    lines.push(`### ${icon[s.verdict]} ${s.name}: ${s.verdict}`, '', `${s.reason}`, '')
    for (const c of s.checks.filter((x) => !x.ok)) lines.push(`- \`${c.name}\` (${c.kind}, ${c.phase}): observed ${c.observed}; expected ${c.expected}`)
    // A sweep cell replays alone (`--cell`), so its own command is worth a line.
    if (s.replay !== report.replay) lines.push('', `replay: \`${s.replay}\``)
    lines.push('')
  }
  return `${lines.join('\n')}\n`
}

/** Counts by verdict, best first: `22 held, 1 skipped`. */
export function summaryLine(scenarios: ScenarioReport[]): string {
  const order: Verdict[] = ['held', 'skipped', 'degraded', 'aborted', 'failed', 'error']
  const counts = new Map<Verdict, number>()
  for (const s of scenarios) counts.set(s.verdict, (counts.get(s.verdict) ?? 0) + 1)
  return order.flatMap((v) => (counts.has(v) ? [`${counts.get(v)} ${v}`] : [])).join(', ') || 'no scenarios'
}

const esc = (s: string) => s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c] as string)

export function toJunit(report: RunReport): string {
  const failures = report.scenarios.filter((s) => s.verdict === 'failed' || s.verdict === 'degraded').length
  const errors = report.scenarios.filter((s) => s.verdict === 'error' || s.verdict === 'aborted').length
  const skipped = report.scenarios.filter((s) => s.verdict === 'skipped').length
  const cases = report.scenarios.map((s) => {
    const body =
      s.verdict === 'held'
        ? ''
        : s.verdict === 'skipped'
          ? `<skipped message="${esc(s.reason)}"/>`
          : s.verdict === 'failed' || s.verdict === 'degraded'
            ? `<failure message="${esc(`${s.verdict}: ${s.reason}`)}" type="${s.verdict}">${esc(s.checks.filter((c) => !c.ok).map((c) => `${c.name} (${c.kind}, ${c.phase}): ${c.observed}`).join('\n'))}</failure>`
            : `<error message="${esc(`${s.verdict}: ${s.reason}`)}" type="${s.verdict}"/>`
    // A sweep cell's own replay command (it runs that cell alone), where CI shows the test case.
    const replay = s.replay !== report.replay ? `<properties><property name="replay" value="${esc(s.replay)}"/></properties>` : ''
    const inner = [replay, body].filter(Boolean).map((line) => `\n      ${line}`).join('')
    return `    <testcase classname="forkchaos.${esc(s.file)}" name="${esc(s.name)}" time="${(s.durationMs / 1000).toFixed(3)}">${inner}${inner ? '\n    ' : ''}</testcase>`
  })
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="forkchaos" tests="${report.scenarios.length}" failures="${failures}" errors="${errors}" skipped="${skipped}" time="${(report.durationMs / 1000).toFixed(3)}">`,
    `  <testsuite name="forkchaos seed ${report.seed}" tests="${report.scenarios.length}" failures="${failures}" errors="${errors}" skipped="${skipped}" timestamp="${report.startedAt}">`,
    `    <properties><property name="seed" value="${report.seed}"/><property name="replay" value="${esc(report.replay)}"/></properties>`,
    ...cases,
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n')
}
