import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { calldata } from '../src/chain/views.js'
import { wordAt } from '../src/chain/slots.js'
import { runScenario } from '../src/scenario/runner.js'
import { call } from '../src/targets/chain.js'
import { type Fork, startFork } from '../src/targets/fork.js'
import { loadText, refusal } from './scenario-text.js'

/**
 * Issue 10, item 3: a fault applied at step k (`fault: { apply, id }`) and reverted at step m
 * (`fault: { revert: id }`) is in effect only between them, is windowed in the report, and is
 * reverted on every way out (here: a step that throws between k and m).
 */
const file = 'test/fixtures/step-faults/window.yaml'
const reads = () => ((globalThis as { __feedReads?: bigint[] }).__feedReads ??= [])
// The vault's oracle guard switched off (maxDeviationBps 99.99 %, every other parameter as it is): a vault broken for the window.
const views = ['heartbeat', 'maxGasPrice', 'bountyGas', 'bountyShareMillionths', 'tradeBps', 'alpBps', 'maxImpactBps', 'rebalanceThresholdBps'].map((v) => `{ view: "${v}()", on: vault }`)
const noGuard = `\n    - call: { label: no-oracle-guard, from: deployer, to: vault, fn: "setParams(uint256,uint256,uint256,uint256,uint256,uint256,uint256,uint256,uint256)", args: [9999, ${views.join(', ')}] }`
const scenario = (between = '', baseline = '') => `name: step-window
hypothesis: The feed is 5 % down only from step 1 to step 4; the cycle in that window engages ONLY_UNWIND.
protocol: reference
checks:
  - { name: only-unwind-engaged, kind: safety, phases: [inject], riskMode: { equals: 1 } }
baseline:
  steps:
    - cycle: {}${baseline}
inject:
  faults: []
  steps:
    - module: { path: read-feed.mjs, label: read-0 }
    - fault: { id: feed-down, apply: { type: oracle.divergence, target: feed, params: { bps: 500, direction: down } } }
    - module: { path: read-feed.mjs, label: read-2 }
    - cycle: {}${between}
    - fault: { revert: feed-down }
    - module: { path: read-feed.mjs, label: read-5 }
recover: { steps: [ { cycle: {} } ] }
`
const answer = async (fork: Fork) => wordAt(await call(fork.anvil.rpc, { to: fork.book.feed as `0x${string}`, data: calldata('latestRoundData()') }), 1)

describe('per-step fault schedules', () => {
  let fork: Fork | undefined
  beforeAll(async () => {
    fork = await startFork({ kind: 'embedded' })
  }, 120_000)
  afterAll(async () => {
    await fork?.stop()
  })

  it('armed at step 1, reverted at step 4: only reads between them see the moved feed; the window is in the report; the vault with its oracle guard off fails the check', async () => {
    const f = fork as Fork
    const before = await answer(f)
    reads().length = 0
    const report = await runScenario(loadText(scenario(), file), f, { seed: 1, replay: 'test' })
    expect(reads()).toEqual([before, (before * 9_500n) / 10_000n, before])
    expect(report.verdict).toBe('held')
    expect(report.faults).toHaveLength(1)
    const record = report.faults[0]
    expect(record?.window).toMatchObject({ id: 'feed-down', applied: { phase: 'inject', step: 1 }, reverted: { phase: 'inject', step: 4, by: 'step' } })
    expect(record?.tStop).toBe(record?.window?.reverted?.t)
    expect(record?.evidence?.took).toBe(`latestRoundData().answer ${before} → ${(before * 9_500n) / 10_000n} (reads ${(before * 9_500n) / 10_000n} now)`)
    expect(report.checks.find((c) => c.name === 'only-unwind-engaged')).toMatchObject({ ok: true, observed: 'riskMode 1' })

    await f.reset()
    const failed = await runScenario(loadText(scenario('', noGuard), file), f, { seed: 1, replay: 'test' })
    expect(failed.verdict).toBe('failed')
    expect(failed.checks.find((c) => c.name === 'only-unwind-engaged')).toMatchObject({ ok: false, observed: 'riskMode 0' })
  }, 120_000)

  it('a step that throws between apply and revert still reverts the fault: the feed reads its own answer after the run, the window says why', async () => {
    const f = fork as Fork
    await f.reset()
    const before = await answer(f)
    const report = await runScenario(loadText(scenario('\n    - warp: { to: 1 }'), file), f, { seed: 1, replay: 'test' })
    expect(report.verdict).toBe('error')
    expect(report.reason).toContain('`inject.steps[4].warp.to` is 1 (unix s, offset included), not after the chain\'s latest block time')
    expect(await answer(f)).toBe(before)
    expect(report.faults[0]?.window).toMatchObject({ applied: { step: 1 }, reverted: { phase: 'inject', step: 4, by: 'error' } })
    expect(report.faults[0]?.tStop).toEqual(expect.any(Number))
  }, 120_000)

  it('a cooldown started at step 1 (dependency.cooldown): the perp reports its end a day ahead from that step (past the 12 h one the history left), and the old end after its revert', async () => {
    const f = fork as Fork
    await f.reset()
    const end = async () => wordAt(await call(f.anvil.rpc, { to: f.book.perp as `0x${string}`, data: calldata('cooldownEnd(address)', [f.book.vault]) }), 0)
    const before = await end()
    const report = await runScenario(
      loadText(
        `name: cooldown-started
hypothesis: A cooldown started mid-phase holds only until its revert.
protocol: reference
baseline: { steps: [] }
inject:
  faults: []
  steps:
    - mine: {}
    - fault: { id: alp-locked, apply: { type: dependency.cooldown, target: perp, params: { account: vault, seconds: 86400 } } }
    - warp: { seconds: 60 }
    - fault: { revert: alp-locked }
`,
        file,
      ),
      f,
      { seed: 1, replay: 'test' },
    )
    expect(report.verdict).toBe('held')
    expect(report.faults[0]?.evidence?.took).toMatch(new RegExp(`^cooldown end of ${f.book.vault} ${before} → (\\d+)$`))
    const started = BigInt(/→ (\d+)$/.exec(report.faults[0]?.evidence?.took ?? '')?.[1] ?? '0')
    expect(started).toBeGreaterThan(before)
    expect(report.faults[0]?.window).toMatchObject({ applied: { step: 1 }, reverted: { step: 3, by: 'step' } })
    expect(await end()).toBe(before)
  }, 60_000)

  it('bad schedules are exit 2 naming the file, line and step: unknown id, reverted twice, applied in an earlier phase, duplicate id, bad params', () => {
    const base = scenario()
    expect(refusal(base.replace('{ revert: feed-down }', '{ revert: feed-dwn }'), file).shortMessage).toBe(
      'test/fixtures/step-faults/window.yaml:16: `inject.steps[4].fault.revert` reverts `feed-dwn`, which no earlier step of inject applies; ids applied so far: `feed-down`.',
    )
    expect(refusal(base.replace('    - module: { path: read-feed.mjs, label: read-5 }', '    - fault: { revert: feed-down }'), file).shortMessage).toBe(
      'test/fixtures/step-faults/window.yaml:17: `inject.steps[5].fault.revert` reverts `feed-down`, which `inject.steps[4]` already reverted.',
    )
    expect(refusal(base.replace('recover: { steps: [ { cycle: {} } ] }', 'recover: { steps: [ { fault: { revert: feed-down } } ] }'), file).shortMessage).toBe(
      "test/fixtures/step-faults/window.yaml:18: `recover.steps[0].fault.revert` reverts `feed-down`, applied at `inject.steps[1]`, in an earlier phase: it was reverted at that phase's end.",
    )
    expect(refusal(base.replace('    - cycle: {}\ninject:', '    - fault: { id: feed-down, apply: { type: gas.spike, params: { baseFeeGwei: 100 } } }\ninject:'), file).shortMessage).toBe(
      'test/fixtures/step-faults/window.yaml:13: `inject.steps[1].fault.id` is `feed-down`, which `baseline.steps[0]` already uses; fault ids must be unique in a scenario.',
    )
    expect(refusal(base.replace('bps: 500', 'bps: 20000'), file).shortMessage).toBe('test/fixtures/step-faults/window.yaml:13: `inject.steps[1].fault.apply.params.bps` must be at most 9999. Got `20000`.')
    expect(refusal(base.replace('type: oracle.divergence', 'type: chain.reorg'), file).shortMessage).toMatch(/^test\/fixtures\/step-faults\/window\.yaml:13: `inject\.steps\[1\]\.fault\.apply\.type` must be one of/)
  })
})
