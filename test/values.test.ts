import { loadText, refusal } from './scenario-text.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { latestTimestamp } from '../src/chain/views.js'
import { readUint } from '../src/checks/read.js'
import { createForkProbe } from '../src/probes/fork.js'
import { createResolver, type RunContext } from '../src/scenario/context.js'
import { referenceProtocol } from '../src/scenario/protocol.js'
import { runScenario } from '../src/scenario/runner.js'
import type { Scenario, Step } from '../src/scenario/types.js'
import type { StepEnv } from '../src/Step.js'
import { runStep } from '../src/steps/registry.js'
import { type Fork, startFork } from '../src/targets/fork.js'
import { createPrng } from '../src/util/prng.js'

/**
 * Issue 10, item 2: values from the chain wherever a step or check takes one (nested views,
 * evaluated when the step runs or at the window's end), view checks relative to the baseline
 * (`atLeastBaselineBps`, `band`) and with a ceiling (`max`), and `warp: { to: <view>, offsetS }`.
 */
const load = (yaml: string, file = 'test/values.yaml'): Scenario => loadText(yaml, file)
const errorOf = (yaml: string): string => refusal(yaml, 'test/values.yaml').shortMessage
const scenario = (checks: string, steps: string) => `name: values
hypothesis: h
protocol: reference
checks:
${checks}
inject:
  faults: []
  steps:
${steps}
`

describe('values from the chain, checked at load', () => {
  it('a view value with the wrong arity, a wrong return type, and nesting deeper than 3 are exit 2 naming the field', () => {
    expect(errorOf(scenario('  - { name: c, kind: liveness, cyclesSucceed: true }', '    - call: { to: perp, fn: "closeTrade(uint256)", args: [{ view: "tradeCollateral(uint256)", on: perp }] }'))).toBe(
      'test/values.yaml:9: `inject.steps[0].call.args[0].view` calls `tradeCollateral(uint256)`, which takes 1 argument (uint256); got 0.',
    )
    expect(errorOf(scenario('  - { name: c, kind: liveness, cyclesSucceed: true }', '    - call: { to: perp, fn: "closeTrade(uint256)", args: [{ view: "owner() returns (address)", on: vault }] }'))).toBe(
      'test/values.yaml:9: `inject.steps[0].call.args[0]` reads `owner() returns (address)`, which returns address; an argument of type uint256 is expected here.',
    )
    const deep = '{ view: "f(uint256)", on: vault, args: [{ view: "f(uint256)", on: vault, args: [{ view: "f(uint256)", on: vault, args: [{ view: "f()", on: vault }] }] }] }'
    expect(errorOf(scenario('  - { name: c, kind: liveness, cyclesSucceed: true }', `    - call: { to: perp, fn: "closeTrade(uint256)", args: [${deep}] }`))).toBe(
      'test/values.yaml:9: `inject.steps[0].call.args[0].args[0].args[0].args[0]` nests views more than 3 deep, the limit for a value.',
    )
    expect(errorOf(scenario('  - { name: v, kind: safety, view: { to: perp, fn: "tradeCollateral(uint256)" , equals: 0 } }', '    - cycle: {}'))).toBe(
      'test/values.yaml:5: `checks[0].view.fn` calls `tradeCollateral(uint256)`, which takes 1 argument (uint256); got 0.',
    )
    expect(errorOf(scenario('  - { name: c, kind: liveness, cyclesSucceed: true }', '    - warp: { to: { view: "cooldownEnd(address)", on: perp } }'))).toBe(
      'test/values.yaml:9: `inject.steps[0].warp.to.view` calls `cooldownEnd(address)`, which takes 1 argument (address); got 0.',
    )
  })
})

describe('values from the chain, on the embedded chain (real Anvil)', () => {
  let fork: Fork
  beforeAll(async () => {
    fork = await startFork({ kind: 'embedded' })
  }, 120_000)
  afterAll(async () => {
    await fork?.stop()
  })
  const run = async (yaml: string) => {
    await fork.reset()
    return runScenario(load(yaml), fork, { seed: 1, replay: 'test' })
  }
  const injectOf = (report: Awaited<ReturnType<typeof run>>, name: string) => report.checks.find((c) => c.name === name && c.phase === 'inject')

  it('a view argument from another view: perp.tradeCollateral(vault.tradeId()) equals the vault\'s own books; a wrong trade id does not', async () => {
    const report = await run(
      scenario(
        `  - { name: books-match, kind: safety, view: { to: perp, fn: "tradeCollateral(uint256)", args: [{ view: "tradeId()", on: vault }], equalsView: { to: vault, fn: "tradeCollateral()" } } }
  - { name: wrong-trade, kind: safety, phases: [inject], view: { to: perp, fn: "tradeCollateral(uint256)", args: ["999"], equalsView: { to: vault, fn: "tradeCollateral()" } } }`,
        '    - cycle: {}',
      ),
    )
    const match = injectOf(report, 'books-match')
    expect(match?.ok).toBe(true)
    expect(match?.observed).toMatch(/^perp\.tradeCollateral\(uint256\) = [1-9]\d{18,}$/)
    const wrong = injectOf(report, 'wrong-trade')
    expect(wrong?.ok).toBe(false)
    expect(wrong?.observed).toBe('perp.tradeCollateral(uint256) = 0')
  }, 120_000)

  it('a call argument read when the step runs: the trader sends its whole balance (read by a view) away, leaving exactly 0', async () => {
    const report = await run(
      scenario(
        '  - { name: emptied, kind: safety, phases: [inject], view: { to: asset, fn: "balanceOf(address)", args: [trader], equals: 0 } }',
        '    - call: { from: trader, to: asset, fn: "transfer(address,uint256)", args: [deployer, { view: "balanceOf(address)", on: asset, args: [trader] }] }',
      ),
    )
    expect(injectOf(report, 'emptied')).toMatchObject({ ok: true, observed: 'asset.balanceOf(address) = 0' })
    // The same with a constant short of the balance leaves some: the check can fail.
    const short = await run(
      scenario(
        '  - { name: emptied, kind: safety, phases: [inject], view: { to: asset, fn: "balanceOf(address)", args: [trader], equals: 0 } }',
        '    - call: { from: trader, to: asset, fn: "transfer(address,uint256)", args: [deployer, "1e18"] }',
      ),
    )
    expect(injectOf(short, 'emptied')?.ok).toBe(false)
  }, 120_000)

  it('an inflated share price passes a floor but fails a band relative to the baseline; `max` takes a view', async () => {
    const checks = `  - { name: floor, kind: safety, view: { to: vault, fn: "sharePrice()", atLeastBaselineBps: 9990 } }
  - { name: band, kind: safety, view: { to: vault, fn: "sharePrice()", band: { minBps: 9990, maxBps: 10010 } } }
  - { name: under-cap, kind: safety, view: { to: vault, fn: "sharePrice()", max: { view: "bountyCap()", on: vault } } }`
    const donated = await run(scenario(checks, '    - call: { from: trader, to: asset, fn: "transfer(address,uint256)", args: [vault, "100000e18"] }'))
    expect(injectOf(donated, 'floor')?.ok).toBe(true)
    const band = injectOf(donated, 'band')
    expect(band?.ok).toBe(false)
    expect(band?.expected).toMatch(/^within \[\d+, \d+\] \(9990–10010 bps of \d+ before the baseline\)$/)
    // bountyCap() is ~62e18, far above a share price of ~1e18.
    expect(injectOf(donated, 'under-cap')).toMatchObject({ ok: true, expected: expect.stringMatching(/^≤ vault\.bountyCap\(\) = \d{20}$/) })
    const quiet = await run(scenario(checks, '    - cycle: {}'))
    expect(['floor', 'band', 'under-cap'].map((n) => injectOf(quiet, n)?.ok)).toEqual([true, true, true])
  }, 120_000)

  it('warp to a time read from a view: the cooldown end − 1 s, then exactly the end; a time in the past is an error that says so', async () => {
    await fork.reset()
    const s = load(scenario('  - { name: c, kind: liveness, cyclesSucceed: true }', '    - cycle: {}'))
    const resolve = createResolver(s, fork)
    const probe = createForkProbe({ rpc: fork.anvil.rpc, protocol: referenceProtocol, vault: resolve('vault', 'protocol.vault'), resolve })
    const ctx: RunContext = { scenario: s, protocol: referenceProtocol, fork, rpc: fork.anvil.rpc, prng: createPrng(1), now: () => 0, resolve, steps: probe.series.steps, probe, proxies: new Map() }
    const env: StepEnv = { phase: 'inject', where: 'inject.steps[0]', record: (r) => probe.record(r), beforeStep: async () => {}, stopCheck: async () => {}, progress: () => {} }
    const end = await readUint(fork.anvil.rpc, resolve('perp', 'perp'), 'cooldownEnd(address) returns (uint256)', [resolve('vault', 'vault')])
    const now = await latestTimestamp(fork.anvil.rpc)
    expect(end).toBeGreaterThan(now + 3600n)
    const to = { view: 'cooldownEnd(address)', on: 'perp', args: ['vault'] }
    await runStep(ctx, { warp: { to, offsetS: -1 } } as Step, env)
    expect(await latestTimestamp(fork.anvil.rpc)).toBe(end - 1n)
    await runStep(ctx, { warp: { to } } as Step, env)
    expect(await latestTimestamp(fork.anvil.rpc)).toBe(end)
    await expect(runStep(ctx, { warp: { to, offsetS: -60 } } as Step, env)).rejects.toThrow(`\`inject.steps[0].warp.to\` is ${end - 60n} (unix s, offset included), not after the chain's latest block time ${end}: a warp cannot go back.`)
  }, 120_000)
})
