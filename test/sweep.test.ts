import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { InputError } from '../src/errors.js'
import { toJunit, toMarkdown } from '../src/report/write.js'
import type { RunReport, ScenarioReport } from '../src/report/types.js'
import { loadScenarios } from '../src/scenario/loader.js'
import { loadAll } from '../src/scenario/suite.js'
import { sweepLimits } from '../src/scenario/sweep.js'

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forkchaos-sweep-'))
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

/** A fork scenario whose feed move is swept (`sweep: ''`: not swept); `params` replace the fault's. */
function file(name: string, { sweep = '{ bps: [300, 2000], direction: [down, up] }', params = '{ bps: "${bps}", direction: "${direction}" }', description = 'the feed moves ${direction}' } = {}): string {
  const f = path.join(dir, `${name}.yaml`)
  fs.writeFileSync(
    f,
    [
      `name: ${name}`,
      `description: "${description}"`,
      'hypothesis: holds',
      ...(sweep ? [`sweep: ${sweep}`] : []),
      'inject:',
      '  faults:',
      `    - { type: oracle.divergence, target: feed, params: ${params} }`,
      '',
    ].join('\n'),
  )
  return f
}

function refusal(load: () => unknown): string {
  try {
    load()
  } catch (error) {
    expect(error).toBeInstanceOf(InputError)
    expect((error as InputError).exitCode).toBe(2)
    return (error as InputError).shortMessage
  }
  throw new Error('expected an InputError')
}

describe('sweep: one experiment per cell of the grid', () => {
  it('expands the cartesian product in the file\'s order, values typed, text interpolated, each cell named', () => {
    const f = file('grid')
    const cells = loadScenarios(f)
    expect(cells.map((s) => s.name)).toEqual(['grid[bps=300,direction=down]', 'grid[bps=300,direction=up]', 'grid[bps=2000,direction=down]', 'grid[bps=2000,direction=up]'])
    expect(cells.map((s) => s.inject.faults[0]?.params)).toEqual([
      { bps: 300, direction: 'down' },
      { bps: 300, direction: 'up' },
      { bps: 2000, direction: 'down' },
      { bps: 2000, direction: 'up' },
    ])
    // The fault's own parser saw a number, not the text "${bps}".
    expect(cells[3]?.inject.faults[0]?.parsed).toMatchObject({ bps: 2000, direction: 'up' })
    expect(cells[1]?.description).toBe('the feed moves up')
    expect(cells[2]?.cell).toEqual({ label: 'bps=2000,direction=down', values: { bps: 2000, direction: 'down' }, index: 2, of: 4 })
    // Without a sweep a file is one experiment, named as written.
    const plain = file('plain', { sweep: '', params: '{ bps: 500, direction: down }', description: 'one move' })
    expect(loadScenarios(plain).map((s) => [s.name, s.cell])).toEqual([['plain', undefined]])
  })

  it('--cell selects cells by their values; scenarios without a sweep do not run; no match is bad input', () => {
    const f = file('pick')
    const plain = file('alone', { sweep: '', params: '{ bps: 500, direction: down }', description: 'one move' })
    expect(loadAll([f, plain], 'direction=up').map((s) => s.name)).toEqual(['pick[bps=300,direction=up]', 'pick[bps=2000,direction=up]'])
    expect(loadAll([f, plain], 'bps=2000,direction=down').map((s) => s.name)).toEqual(['pick[bps=2000,direction=down]'])
    expect(loadAll([f, plain]).length).toBe(5)
    expect(refusal(() => loadAll([f, plain], 'bps=777'))).toBe(`No sweep cell matches \`--cell bps=777\` under ${f}, ${plain}.`)
    expect(refusal(() => loadAll([f], 'bps'))).toBe('`--cell` must be key=value pairs separated by commas, as in a swept scenario\'s name (`bps=300,direction=up`). Got `bps`.')
  })

  it('a sweep key used nowhere, or a placeholder with no sweep key, is refused naming the file, line and field', () => {
    const unused = file('unused', { sweep: '{ bps: [300], direction: [up], level: [1, 2] }' })
    expect(refusal(() => loadScenarios(unused))).toBe(`${unused}:4: \`sweep.level\` is used nowhere: no value in the file is \`"\${level}"\` or holds it.`)
    const noSweep = file('nosweep', { sweep: '' })
    expect(refusal(() => loadScenarios(noSweep))).toBe(`${noSweep}:2: \`description\` uses the placeholder \`\${direction}\`, but the file has no \`sweep\`: add \`sweep: { direction: [ … ] }\`.`)
    const unknown = file('unknown', { sweep: '{ bps: [300], direction: [up] }', params: '{ bps: "${bps}", direction: "${direction}", staleS: "${age}" }' })
    expect(refusal(() => loadScenarios(unknown))).toBe(`${unknown}:7: \`inject.faults[0].params.staleS\` uses the placeholder \`\${age}\`, which \`sweep\` does not name (it has \`bps\`, \`direction\`).`)
    const malformed = file('malformed', { params: '{ bps: "${bps}", direction: "${direction}", staleS: "${ 1 }" }' })
    expect(refusal(() => loadScenarios(malformed))).toBe(`${malformed}:7: \`inject.faults[0].params.staleS\` holds \`\${ 1 }\`, which is not a sweep placeholder: write \`\${key}\` with a key of letters, digits and \`_\` named in \`sweep\`.`)
  })

  it('the grid, its keys and its values have limits, stated in the error', () => {
    const values = (n: number, from = 0) => `[${Array.from({ length: n }, (_, i) => i + from).join(', ')}]`
    const big = file('big', { sweep: `{ bps: ${values(9, 100)}, direction: [down], staleS: ${values(8)} }`, params: '{ bps: "${bps}", direction: "${direction}", staleS: "${staleS}" }' })
    expect(refusal(() => loadScenarios(big))).toBe(`${big}:4: \`sweep\` makes 72 cells (9 × 1 × 8), more than ${sweepLimits.cells}, the limit of a sweep.`)
    const long = file('long', { sweep: `{ bps: ${values(17, 100)}, direction: [up] }` })
    expect(refusal(() => loadScenarios(long))).toBe(`${long}:4: \`sweep.bps\` must have at most 16 values. Got 17.`)
    const comma = file('comma', { sweep: '{ bps: [300], direction: ["up,down"] }' })
    expect(refusal(() => loadScenarios(comma))).toBe(`${comma}:4: \`sweep.direction[0]\` must be a number of magnitude at most 2^53 − 1, a boolean or a string of at most 64 letters, digits, \`_\`, \`.\`, \`:\`, \`+\` or \`-\`. Got \`"up,down"\`.`)
    const repeated = file('repeated', { sweep: '{ bps: [300, 300], direction: [up] }' })
    expect(refusal(() => loadScenarios(repeated))).toBe(`${repeated}:4: \`sweep.bps\` repeats the value \`300\`.`)
  })

  it('every cell is validated as if written out: a bad value is refused naming its line, field and cell', () => {
    const f = file('levels', { sweep: '{ bps: [300, 20000], direction: [down] }' })
    expect(refusal(() => loadScenarios(f))).toBe(`${f}:7: \`inject.faults[0].params.bps\` must be at most 9999. Got \`20000\`. (sweep cell \`bps=20000,direction=down\`)`)
    const wrongType = file('sideways', { sweep: '{ bps: [300], direction: [sideways] }' })
    expect(refusal(() => loadScenarios(wrongType))).toMatch(new RegExp(`^${wrongType}:7: \`inject\\.faults\\[0\\]\\.params\\.direction\` must be one of "up", "down"\\. Got \`"sideways"\`\\. \\(sweep cell \`bps=300,direction=sideways\`\\)$`))
  })

  it('each cell is its own row in JUnit and Markdown, a failed cell with the command that replays it alone', () => {
    const cells = loadScenarios(file('report'))
    const runReplay = 'npx forkchaos run scenarios/x --seed 3'
    const row = (name: string, verdict: ScenarioReport['verdict'], replay: string): ScenarioReport => ({
      name,
      file: 'scenarios/x/report.yaml',
      target: 'fork',
      hypothesis: 'holds',
      verdict,
      reason: verdict === 'held' ? 'all held' : 'safety check `only-unwind-engaged` broke in inject',
      faults: [],
      checks: verdict === 'held' ? [] : [{ name: 'only-unwind-engaged', kind: 'safety', phase: 'inject', ok: false, observed: 'riskMode 0', expected: 'riskMode 1' }],
      mttrMs: null,
      durationMs: 500,
      cycles: { baseline: { total: 0, reverted: 0 }, inject: { total: 0, reverted: 0 }, recover: { total: 0, reverted: 0 } },
      load: [],
      proxies: {},
      seed: 3,
      replay,
    })
    const replayOf = (label: string) => `npx forkchaos run scenarios/x/report.yaml --cell ${label} --seed 3`
    const report: RunReport = {
      tool: 'forkchaos',
      version: '0',
      seed: 3,
      replay: runReplay,
      startedAt: new Date(0).toISOString(),
      durationMs: 2000,
      target: { kind: 'fork', source: 'embedded', forkBlock: null },
      scenarios: cells.map((c, i) => row(c.name, i === 1 ? 'failed' : 'held', replayOf(c.cell?.label ?? ''))),
    }
    const junit = toJunit(report)
    for (const c of cells) expect(junit).toContain(`name="${c.name}"`)
    expect(junit).toContain('<property name="replay" value="npx forkchaos run scenarios/x/report.yaml --cell bps=300,direction=up --seed 3"/>')
    const md = toMarkdown(report)
    expect(md).toContain('| report[bps=2000,direction=up] | ✅ held |')
    expect(md).toContain('### ❌ report[bps=300,direction=up]: failed')
    expect(md).toContain('replay: `npx forkchaos run scenarios/x/report.yaml --cell bps=300,direction=up --seed 3`')
  })
})
