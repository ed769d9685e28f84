// A soak's own faults on the live view and in progress lines, as a scripted phase's are: a
// short soak of node.kill on the real 4-validator devnet tells each drawn fault applied and
// reverted (once each), the killed validator down while it is held and up after, and commits
// as the soak goes; the progress line shows the soak's elapsed of its total, faults fired,
// commits and who is down. Before the fix the soak told only its applies. Run under the heavy
// lock (a devnet).
import { describe, expect, it } from 'vitest'
import type { RunEvent } from '../src/experiment/events.js'
import { runDevnetScenario } from '../src/scenario/devnet-runner.js'
import { loadScenario } from '../src/scenario/loader.js'
import type { Scenario } from '../src/scenario/types.js'
import { createProgress } from '../src/ui/progress.js'

describe('soak events', () => {
  it('a soak tells its faults applied and reverted, node down and up, and commits; progress shows them', async () => {
    const s = loadScenario('scenarios/soak/devnet-soak.yaml')
    const scenario: Scenario = {
      ...s,
      baseline: { ...s.baseline, durationMs: 2_000 },
      // Two draws: kill at 0 s and 4 s, each held 3 s.
      inject: { ...s.inject, durationMs: 9_000, random: { faults: [{ type: 'node.kill' }], everyMs: 4_000, holdMs: 3_000, budget: 1, flakeBudget: 2 } },
      recover: { ...s.recover, durationMs: 10_000 },
    }
    const events: RunEvent[] = []
    const lines: string[] = []
    const progress = createProgress({ tty: false, write: (t) => lines.push(t), everyMs: 500 })
    progress.event({ type: 'scenario-start', scenario: s.name, target: 'devnet', plannedMs: { baseline: 2_000, inject: 9_000, recover: 10_000 }, steps: { baseline: 0, inject: 0, recover: 0 } })
    const r = await runDevnetScenario(scenario, {
      seed: 11,
      replay: 'test',
      onEvent: (e) => {
        events.push(e)
        progress.event(e)
      },
    }).finally(() => progress.stop())
    const applied = r.devnet.soak?.applied ?? 0
    expect(applied, `${r.verdict}: ${r.reason}`).toBeGreaterThanOrEqual(1)

    // The inject phase's events (the soak), up to the revert phase.
    const from = events.findIndex((e) => e.type === 'phase' && e.phase === 'inject')
    const to = events.findIndex((e) => e.type === 'phase' && e.phase === 'revert')
    const soak = events.slice(from, to)
    const faults = soak.filter((e): e is Extract<RunEvent, { type: 'fault' }> => e.type === 'fault').map((e) => `${e.action} ${e.fault}`)
    expect(faults).toEqual(Array.from({ length: applied }, () => ['apply node.kill', 'revert node.kill']).flat())
    // Nothing left to revert after the soak: no revert event outside it.
    expect(events.slice(to).filter((e) => e.type === 'fault')).toEqual([])

    // Each killed validator goes down while its fault is held, and up again after its revert.
    const killed = r.faults.map((f) => Number(String(f.target).replace('validator-', '')))
    expect(killed.length).toBe(applied)
    const told = events.filter((e) => e.type === 'fault' || e.type === 'node').map((e) => (e.type === 'node' ? `${e.state} ${e.node}` : e.action))
    for (const v of new Set(killed)) {
      expect(told, `validator ${v}`).toContain(`down ${v}`)
      expect(told.indexOf(`down ${v}`), 'down while the kill is held').toBeGreaterThan(told.indexOf('apply'))
      expect(told.lastIndexOf(`up ${v}`), 'up after a revert').toBeGreaterThan(told.indexOf('revert'))
    }
    expect(soak.filter((e) => e.type === 'commit').length, 'commits told during the soak').toBeGreaterThan(0)

    // Progress during the soak: elapsed of its total, faults fired, commits, who is down.
    const during = lines.filter((l) => / · inject \d+\.\d s of 9\.0 s · faults fired [12] · commits \d+ \(height \d+\)/.test(l))
    expect(during.length, lines.join('')).toBeGreaterThan(0)
    expect(during.some((l) => / · commits [1-9]\d* /.test(l)), lines.join('')).toBe(true)
    expect(during.some((l) => /· down validator-\d\n$/.test(l)), lines.join('')).toBe(true)
  }, 120_000)
})
