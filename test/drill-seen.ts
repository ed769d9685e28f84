import { expect } from 'vitest'
import type { ScenarioReport } from '../src/report/types.js'

/**
 * Every run of a drill on the reference devnet (no test build) must show its faults taking
 * effect and being seen: each fault record has `took` and a non-null `seen`. The drill tests
 * call this on every reference run, so each drill they run is also a detection test; the
 * drills no test file runs are run for it in test/experiment.test.ts.
 */
export function expectSeen<R extends Pick<ScenarioReport, 'verdict' | 'reason' | 'faults'>>(r: R): R {
  if (r.verdict === 'skipped') return r
  expect(r.faults.length, `no fault applied: ${r.verdict}: ${r.reason}`).toBeGreaterThan(0)
  for (const f of r.faults) {
    expect(f.evidence?.took, `${f.type}: ${r.reason}`).toBeTruthy()
    expect(f.evidence?.seen, `${f.type}: ${f.evidence?.took}`).toEqual(expect.any(String))
  }
  return r
}

/** The test files whose drill runs go through `expectSeen`. */
export const drillTestFiles = ['test/devnet-scenarios.test.ts', 'test/devnet-drills.test.ts', 'test/clock-skew.test.ts']
