import * as fs from 'node:fs'
import * as path from 'node:path'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { limitViolations, sampleOutcomes, scenarioFuzz } from '../fuzz/scenario.js'

// `npm run fuzz -- --count 10000 scenario` runs the same target with large counts.
describe('scenario loader fuzz (fixed seed)', () => {
  it('300 mutated shipped scenarios: no crash, no hang, nothing accepted beyond a stated limit', async () => {
    const tally = await scenarioFuzz.run({ count: 300, seed: 1 })
    expect(tally.examples).toEqual([])
    expect(tally).toMatchObject({ inputs: 300, crashes: 0, hangs: 0, acceptedInvalid: 0 })
  }, 120_000)

  it('the inputs exercise both sides: some files are accepted, most are refused for many reasons', () => {
    const outcomes = sampleOutcomes(120, 1)
    const accepted = outcomes.filter((o) => o.outcome.kind === 'accepted').length
    const reasons = new Set(outcomes.filter((o) => o.outcome.kind === 'rejected').map((o) => o.outcome.detail.replace(/^fuzz\.yaml(:\d+)?: /, '').replace(/`[^`]*`/g, '')))
    expect(accepted).toBeGreaterThanOrEqual(5)
    expect(reasons.size).toBeGreaterThanOrEqual(15)
  }, 60_000)

  it('the oracle finds nothing in the shipped scenarios', () => {
    const files = fs.readdirSync('scenarios', { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.yaml'))
    expect(files.length).toBeGreaterThanOrEqual(20)
    for (const f of files) expect([f, limitViolations(parse(fs.readFileSync(path.join('scenarios', f), 'utf8')))]).toEqual([f, []])
  })

  it('the oracle flags a number beyond its maximum, a number where none is stated, and a duration string beyond its bound', () => {
    const ok = { name: 'x', hypothesis: 'h', inject: { faults: [], duration: '1h', steps: [{ warp: { seconds: 10 } }] } }
    expect(limitViolations(ok)).toEqual([])
    expect(limitViolations({ ...ok, inject: { ...ok.inject, steps: [{ warp: { seconds: 1e300 } }] } })).toEqual(['inject.steps[0].warp.seconds: 1e+300 > maximum 315360000'])
    expect(limitViolations({ ...ok, inject: { ...ok.inject, duration: '99999999999999999999999d' } })).toEqual([
      'inject.duration: "99999999999999999999999d" beyond maxDurationMs 86400000',
      'inject.duration: "99999999999999999999999d" beyond maxDurationMs 3600000',
    ])
    expect(limitViolations({ ...ok, inject: { ...ok.inject, duration: '2h' } })).toEqual(['inject.duration: "2h" beyond maxDurationMs 3600000'])
    // Inside a step (a `oneOf` branch), even when the value matches no branch any more.
    expect(limitViolations({ ...ok, inject: { ...ok.inject, steps: [{ keeper: { mode: 'naive', duration: '2h' } }] } })).toEqual([
      'inject.steps[0].keeper.duration: "2h" beyond maxDurationMs 3600000',
    ])
    // A fault's params are described by its own schema (`allOf` / `if` on the type).
    expect(limitViolations({ ...ok, inject: { faults: [{ type: 'time.warp', params: { seconds: 1e12 } }] } })).toEqual(['inject.faults[0].params.seconds: 1000000000000 > maximum 315360000'])
    expect(limitViolations({ ...ok, surprise: 1 })).toEqual(['surprise: a key the schema does not describe'])
    // With `random` (a soak) the inject window may be a day.
    expect(limitViolations({ ...ok, inject: { ...ok.inject, duration: '24h', random: { every: '1m', faults: [{ type: 'node.kill' }] } } })).toEqual([])
    const unbounded = { type: 'object', properties: { n: { type: 'number' }, l: { type: 'array' } } }
    expect(limitViolations({ n: 1, l: [] }, unbounded)).toEqual(['n: 1 where no maximum is stated', 'l: a list of 0 where no maxItems is stated'])
  })
})
