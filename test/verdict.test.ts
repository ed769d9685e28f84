import { describe, expect, it } from 'vitest'
import type { CheckResult } from '../src/report/types.js'
import { toJunit, toMarkdown } from '../src/report/write.js'
import { decideVerdict } from '../src/scenario/verdict.js'
import { createPrng } from '../src/util/prng.js'

const r = (name: string, kind: 'safety' | 'liveness', phase: CheckResult['phase'], ok: boolean): CheckResult => ({ name, kind, phase, ok, observed: 'o', expected: 'e' })

describe('verdict rules', () => {
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
