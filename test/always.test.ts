import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { InputError } from '../src/errors.js'
import { parseScenario } from '../src/scenario/loader.js'
import { runScenario } from '../src/scenario/runner.js'
import type { Scenario } from '../src/scenario/types.js'
import { type Fork, startFork } from '../src/targets/fork.js'

/**
 * Issue 10, item 4: a check marked `always: true` is judged after every step, not only at the
 * phase's end, so an invariant that breaks mid-phase and is restored is seen; the report names
 * the first step after which it broke.
 */
const load = (yaml: string, file = 'test/always.yaml'): Scenario => parseScenario(new TextEncoder().encode(yaml), file)
const scenario = (always: boolean) => `name: always
hypothesis: The depositor keeps at least 1 USDX through the whole phase.
protocol: reference
checks:
  - { name: depositor-solvent, kind: safety, phases: [inject], always: ${always}, view: { to: asset, fn: "balanceOf(address)", args: [depositor], atLeast: "1e18" } }
inject:
  faults: []
  steps:
    - call: { label: drain, from: depositor, to: asset, fn: "transfer(address,uint256)", args: [trader, { view: "balanceOf(address)", on: asset, args: [depositor] }] }
    - cycle: {}
    - call: { label: refill, from: trader, to: asset, fn: "transfer(address,uint256)", args: [depositor, "2e18"] }
`

describe('`always` checks', () => {
  let fork: Fork
  beforeAll(async () => {
    fork = await startFork({ kind: 'embedded' })
  }, 120_000)
  afterAll(async () => {
    await fork?.stop()
  })

  it('an invariant broken after step 0 and restored by step 2 fails, naming the step; without `always` the end-of-phase check misses it', async () => {
    await fork.reset()
    const report = await runScenario(load(scenario(true)), fork, { seed: 1, replay: 'test' })
    const check = report.checks.find((c) => c.name === 'depositor-solvent')
    expect(report.verdict).toBe('failed')
    expect(check?.ok).toBe(false)
    expect(check?.observed).toBe("first broke after inject.steps[0] (drain): asset.balanceOf(address) = 0; at the phase's end: asset.balanceOf(address) = 2000000000000000000")
    await fork.reset()
    const missed = await runScenario(load(scenario(false)), fork, { seed: 1, replay: 'test' })
    expect(missed.checks.find((c) => c.name === 'depositor-solvent')).toMatchObject({ ok: true, observed: 'asset.balanceOf(address) = 2000000000000000000' })
    expect(missed.verdict).toBe('held')
  }, 120_000)

  it('`always` on a devnet check or a stop condition is exit 2', () => {
    let message = ''
    try {
      load('name: d\nhypothesis: h\ntarget: { kind: devnet }\nchecks:\n  - { name: p, kind: liveness, always: true, progress: { minCommitsPerSlot: 0.5 } }\ninject:\n  faults: []\n')
    } catch (error) {
      expect(error).toBeInstanceOf(InputError)
      message = (error as InputError).shortMessage
    }
    expect(message).toBe('test/always.yaml:5: `checks[0].always` is for fork checks under `checks`; `progress` is a devnet check.')
    try {
      load(scenario(false).replace('checks:\n', 'stop:\n  - { name: s, kind: safety, always: true, cyclesSucceed: true }\nchecks:\n'))
      message = ''
    } catch (error) {
      message = (error as InputError).shortMessage
    }
    expect(message).toBe('test/always.yaml:5: `stop[0].always` is for fork checks under `checks` (a stop condition is already looked at after every step).')
  })
})
