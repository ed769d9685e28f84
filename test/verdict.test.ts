import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { describe, expect, it } from 'vitest'
import { InfraError, PrerequisiteMissingError } from '../src/errors.js'
import type { CheckResult, RunReport, Verdict } from '../src/report/types.js'
import { summaryLine, toJunit, toMarkdown } from '../src/report/write.js'
import { regressions } from '../src/scenario/suite.js'
import { baselineVerdict, decideVerdict, verdictOfError } from '../src/experiment/verdict.js'
import { createPrng } from '../src/util/prng.js'

const r = (name: string, kind: 'safety' | 'liveness', phase: CheckResult['phase'], ok: boolean): CheckResult => ({ name, kind, phase, ok, observed: 'o', expected: 'e' })

describe('verdict rules', () => {
  it('a baseline that did not hold says what its check observed (a cycle check in a phase with no cycle)', () => {
    const noCycle: CheckResult = { name: 'cycles-run', kind: 'liveness', phase: 'baseline', ok: false, observed: 'no cycle ran in this phase', expected: 'every cycle succeeds' }
    expect(baselineVerdict([noCycle])).toEqual({
      verdict: 'aborted',
      reason: 'steady state did not hold at baseline, so no fault was injected: `cycles-run` observed no cycle ran in this phase (expected every cycle succeeds)',
    })
  })
  it('held when everything held', () => {
    expect(decideVerdict([r('a', 'safety', 'inject', true)], { recovered: true, aborted: undefined }).verdict).toBe('held')
  })
  it('degraded when only liveness broke during inject and it recovered', () => {
    expect(decideVerdict([r('a', 'liveness', 'inject', false), r('a', 'liveness', 'recover', true)], { recovered: true, aborted: undefined }).verdict).toBe('degraded')
  })
  it('failed when a safety check broke at any time', () => {
    expect(decideVerdict([r('a', 'liveness', 'inject', false), r('b', 'safety', 'recover', false)], { recovered: false, aborted: undefined }).verdict).toBe('failed')
  })
  it('failed when it did not recover', () => {
    const v = decideVerdict([r('a', 'liveness', 'inject', false), r('a', 'liveness', 'recover', false)], { recovered: false, aborted: undefined })
    expect(v.verdict).toBe('failed')
    expect(v.reason).toMatch(/did not recover/)
  })
  it('aborted wins: the stop condition tripped', () => {
    expect(decideVerdict([r('b', 'safety', 'inject', false)], { recovered: true, aborted: 'stop' }).verdict).toBe('aborted')
  })
})

describe('seeded PRNG', () => {
  it('replays the same sequence for the same seed, another for another seed', () => {
    const a = createPrng(42)
    const b = createPrng(42)
    const c = createPrng(43)
    const seq = (p: ReturnType<typeof createPrng>) => Array.from({ length: 5 }, () => p.int(0, 1_000_000))
    const first = seq(a)
    expect(seq(b)).toEqual(first)
    expect(seq(c)).not.toEqual(first)
    expect(createPrng(42).fork('x').next()).toBe(createPrng(42).fork('x').next())
  })
})

describe('report writers', () => {
  const report = {
    tool: 'forkchaos' as const,
    version: '0.1.0',
    seed: 7,
    replay: 'npx forkchaos run --seed 7',
    startedAt: '2026-11-21T00:00:00.000Z',
    durationMs: 10,
    target: { kind: 'fork' as const, source: 'embedded', forkBlock: '1' },
    scenarios: [
      { name: 'a<b', file: 'x.yaml', target: 'fork' as const, hypothesis: 'h', verdict: 'failed' as const, reason: 'bounty 6 > 1', faults: [], checks: [r('bounty', 'safety', 'inject', false)], mttrMs: null, durationMs: 5, cycles: { baseline: { total: 1, reverted: 0 }, inject: { total: 1, reverted: 0 }, recover: { total: 0, reverted: 0 } }, seed: 7, replay: 'x' },
    ],
  }
  it('junit marks a failed verdict as a failure and escapes XML', () => {
    const xml = toJunit(report)
    expect(xml).toContain('failures="1"')
    expect(xml).toContain('name="a&lt;b"')
    expect(xml).toContain('<property name="seed" value="7"/>')
  })
  it('markdown names the seed, the replay command and the broken check', () => {
    const md = toMarkdown(report)
    expect(md).toContain('Seed `7`')
    expect(md).toContain('npx forkchaos run --seed 7')
    expect(md).toContain('`bounty` (safety, inject)')
  })
})

describe('the skipped verdict', () => {
  const scenario = (name: string, verdict: Verdict, reason: string) => ({
    name,
    file: `${name}.yaml`,
    target: 'devnet' as const,
    hypothesis: 'h',
    verdict,
    reason,
    faults: [],
    checks: [],
    mttrMs: null,
    durationMs: 5,
    cycles: { baseline: { total: 0, reverted: 0 }, inject: { total: 0, reverted: 0 }, recover: { total: 0, reverted: 0 } },
    load: [],
    proxies: {},
    seed: 7,
    replay: 'x',
  })
  const why = 'libfaketime is not installed (/nope.so). Install it: apt-get install -y faketime'
  const report = (scenarios: ReturnType<typeof scenario>[]): RunReport => ({
    tool: 'forkchaos',
    version: '0.1.0',
    seed: 7,
    replay: 'npx forkchaos run --seed 7',
    startedAt: '2026-11-21T00:00:00.000Z',
    durationMs: 10,
    target: { kind: 'devnet', source: 'embedded', forkBlock: null },
    scenarios,
  })

  it('a missing prerequisite is skipped, with the reason and the install command; anything else is an error', () => {
    const missing = new PrerequisiteMissingError('libfaketime is not installed (/nope.so).', { install: 'apt-get install -y faketime' })
    expect(verdictOfError(missing)).toEqual({ verdict: 'skipped', reason: why })
    expect(verdictOfError(new InfraError('Port 8545 is in use.'))).toEqual({ verdict: 'error', reason: 'the experiment could not run: Port 8545 is in use.' })
    expect(verdictOfError(new Error('boom'))).toEqual({ verdict: 'error', reason: 'the experiment could not run: boom' })
  })

  it('every writer shows it: junit <skipped/> with the message, markdown with the reason, the summary line', () => {
    const r = report([scenario('a', 'held', 'ok'), scenario('b', 'skipped', why), scenario('c', 'held', 'ok')])
    const xml = toJunit(r)
    expect(xml).toContain(`<testcase classname="forkchaos.b.yaml" name="b" time="0.005">\n      <properties><property name="replay" value="x"/></properties>\n      <skipped message="${why}"/>\n    </testcase>`)
    expect(xml).toContain('<testsuites name="forkchaos" tests="3" failures="0" errors="0" skipped="1"')
    expect(xml).not.toMatch(/<failure|<error/)
    expect(summaryLine(r.scenarios)).toBe('2 held, 1 skipped')
    const md = toMarkdown(r)
    expect(md).toContain('## forkchaos: 2 held, 1 skipped')
    expect(md).toContain('| b | ⏭️ skipped |')
    expect(md).toContain(`### ⏭️ b: skipped\n\n${why}`)
  })

  it('--compare: skipped is neither worse nor better than any verdict', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forkchaos-compare-'))
    const previous = path.join(dir, 'report.json')
    fs.writeFileSync(previous, JSON.stringify(report([scenario('a', 'held', 'ok'), scenario('b', 'skipped', why), scenario('c', 'held', 'ok')])))
    const now = report([scenario('a', 'skipped', why), scenario('b', 'failed', 'broke'), scenario('c', 'degraded', 'slow')])
    // a: held → skipped is no regression; b: skipped → failed is none either; c: held → degraded is one.
    expect(regressions(now, previous)).toEqual([{ name: 'c', was: 'held', now: 'degraded' }])
  })
})
