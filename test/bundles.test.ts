import { loadText, refusal } from './scenario-text.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startReads } from '../src/checks/registry.js'
import { createForkProbe } from '../src/probes/fork.js'
import { createResolver, type RunContext } from '../src/scenario/context.js'
import { loadScenario } from '../src/scenario/loader.js'
import { referenceProtocol } from '../src/scenario/protocol.js'
import { runSuite } from '../src/scenario/suite.js'
import type { Scenario, Step } from '../src/scenario/types.js'
import type { StepEnv } from '../src/Step.js'
import { runStep } from '../src/steps/registry.js'
import { type Fork, startFork } from '../src/targets/fork.js'
import { createPrng } from '../src/util/prng.js'

/**
 * Issue 10, item 5: a `bundle` step mines its calls in one block, in order — a sandwich can be
 * written — and a relative share-price check (`view.atLeastBaselineBps`) catches what it costs.
 */
const load = (yaml: string, file = 'test/bundles.yaml'): Scenario => loadText(yaml, file)
const errorOf = (yaml: string): string => refusal(yaml, 'test/bundles.yaml').shortMessage
const withSteps = (steps: string) => `name: t\nhypothesis: h\nprotocol: reference\ninject:\n  faults: []\n  steps:\n${steps}\n`

describe('a sandwich in one block, judged by a share price relative to the baseline (real Anvil, embedded chain)', () => {
  const run = async (file: string, vaultBuild?: string) => {
    const report = await runSuite({ paths: [file], seed: 7, source: { kind: 'embedded', ...(vaultBuild ? { vaultBuild } : {}) }, replay: 'test' })
    return report.scenarios[0]
  }

  it('fails when the sandwich runs against a vault without its oracle guard (the vault rebalances into the pushed price)', async () => {
    const s = await run('test/fixtures/bundles/sandwich.yaml', 'ReferenceVault.no-oracle-guard')
    expect(s?.verdict).toBe('failed')
    const loss = s?.checks.find((c) => c.name === 'no-sandwich-loss' && c.phase === 'inject')
    expect(loss?.ok).toBe(false)
    expect(loss?.observed).toMatch(/^vault\.sharePrice\(\) = \d+$/)
    expect(loss?.expected).toMatch(/^≥ \d+ \(9990 bps of \d+ before the baseline\)$/)
    // Every call of the bundle succeeded: the loss is the sandwich's, not a failed call's.
    expect(s?.checks.filter((c) => c.name.startsWith('step ')).map((c) => [c.name, c.ok])).toEqual([
      ['step front-run-pay', true],
      ['step front-run-swap', true],
      ['step victim-deposit', true],
      ['step back-run-pay', true],
      ['step back-run-swap', true],
    ])
  }, 300_000)

  it('holds on the same build without the sandwich (the deposit and cycle alone), and with it on the reference vault (its oracle guard refuses to trade)', async () => {
    const control = await run('test/fixtures/bundles/no-sandwich.yaml', 'ReferenceVault.no-oracle-guard')
    expect([control?.verdict, control?.reason]).toEqual(['held', 'all 5 checks held through baseline, inject and recover'])
    const guarded = await run('test/fixtures/bundles/sandwich.yaml')
    expect([guarded?.verdict, guarded?.reason]).toEqual(['held', 'all 9 checks held through baseline, inject and recover'])
  }, 300_000)
})

describe('the bundle step (real Anvil, embedded chain)', () => {
  let fork: Fork
  beforeAll(async () => {
    fork = await startFork({ kind: 'embedded' })
  }, 120_000)
  afterAll(async () => {
    await fork?.stop()
  })

  const contextOn = (f: Fork, scenario: Scenario): RunContext => {
    const resolve = createResolver(scenario, f)
    const probe = createForkProbe({ rpc: f.anvil.rpc, protocol: referenceProtocol, vault: resolve('vault', 'protocol.vault'), resolve })
    return { scenario, protocol: referenceProtocol, fork: f, rpc: f.anvil.rpc, prng: createPrng(1), now: () => 0, resolve, steps: probe.series.steps, probe, proxies: new Map() }
  }
  const envOf = (ctx: RunContext): StepEnv => ({ phase: 'inject', where: 'inject.steps[0]', record: (r) => ctx.probe.record(r), beforeStep: async () => {}, stopCheck: async () => {}, progress: () => {} })

  it('mines every call in ONE block, in the order given, each recorded with its receipt; automine is back on after', async () => {
    await fork.reset()
    const scenario = load(withSteps('    - cycle: {}'))
    const ctx = contextOn(fork, scenario)
    const head = BigInt(await fork.anvil.rpc.request<string>('eth_blockNumber'))
    const step = loadScenario('test/fixtures/bundles/sandwich.yaml').inject.steps[0] as Step
    await runStep(ctx, step, envOf(ctx))
    const records = ctx.probe.series.steps
    expect(records.map((r) => [r.label, r.type, r.ok])).toEqual([
      ['front-run-pay', 'call', true],
      ['front-run-swap', 'call', true],
      ['victim-deposit', 'call', true],
      ['victim-cycle#1', 'cycle', true],
      ['back-run-pay', 'call', true],
      ['back-run-swap', 'call', true],
    ])
    const blocks = new Set(records.map((r) => r.receipt?.blockNumber))
    expect(blocks.size).toBe(1)
    expect(BigInt([...blocks][0] as string)).toBe(head + 1n)
    expect(records.map((r) => r.bundle)).toEqual(records.map((_, i) => ({ block: head + 1n, index: i, of: 6 })))
    // The victim's cycle paid its bounty and its cap is the event's.
    expect(records[3]?.bounties?.length).toBe(1)
    expect(records[3]?.bountyCaps?.length).toBe(1)
    expect(await fork.anvil.rpc.request('anvil_getAutomine')).toBe(true)
  }, 120_000)

  it('a call that reverts inside the bundle is recorded with its reason (from the trace), the others still land in the block', async () => {
    await fork.reset()
    const scenario = load(
      withSteps(`    - bundle:
        - call: { label: pay, from: trader, to: asset, fn: "transfer(address,uint256)", args: [pair, "1000e18"] }
        - call: { label: greedy-swap, from: trader, to: pair, fn: "swap(uint256,uint256,address)", args: ["100e18", 0, trader] }
        - call: { label: fair-swap, from: trader, to: pair, fn: "swap(uint256,uint256,address)", args: ["1e17", 0, trader] }`),
    )
    const ctx = contextOn(fork, scenario)
    await runStep(ctx, scenario.inject.steps[0] as Step, envOf(ctx))
    const records = ctx.probe.series.steps
    expect(records.map((r) => [r.label, r.ok, r.reason])).toEqual([
      ['pay', true, undefined],
      ['greedy-swap', false, 'V2Pair: K'],
      ['fair-swap', true, undefined],
    ])
    expect(new Set(records.map((r) => r.receipt?.blockNumber)).size).toBe(1)
    expect(records.map((r) => r.expect)).toEqual(['success', 'success', 'success'])
    expect(await fork.anvil.rpc.request('anvil_getAutomine')).toBe(true)
  }, 120_000)

  it('a relative check reads its baseline value before the baseline (startReads), not at the window end', async () => {
    await fork.reset()
    const scenario = load(`name: t
hypothesis: h
protocol: reference
checks:
  - { name: pps, kind: safety, view: { to: vault, fn: "sharePrice()", band: { minBps: 9990, maxBps: 10010 } } }
inject:
  faults: []
`)
    const ctx = contextOn(fork, scenario)
    await ctx.probe.readStart(startReads(ctx, scenario.checks))
    const start = ctx.probe.series.startByCheck.pps?.[0]
    expect(start?.ok).toBe(true)
    expect(typeof (start as { value: unknown }).value).toBe('bigint')
  }, 120_000)
})

describe('bundles are checked at load', () => {
  it('a call of a bundle with the wrong arity, and more than 16 calls, are exit 2 naming the field', () => {
    expect(errorOf(withSteps('    - bundle:\n        - call: { to: vault, fn: "deposit(uint256)" }'))).toBe('test/bundles.yaml:7: `inject.steps[0].bundle[0].call.fn` calls `deposit(uint256)`, which takes 1 argument (uint256); got 0.')
    const many = Array.from({ length: 17 }, () => '        - cycle: {}').join('\n')
    expect(errorOf(withSteps(`    - bundle:\n${many}`))).toBe('test/bundles.yaml:8: `inject.steps[0].bundle` must have at most 16 items. Got 17.')
    expect(errorOf(withSteps('    - bundle: []'))).toBe('test/bundles.yaml:7: `inject.steps[0].bundle` must have at least 1 item. Got `[]`.')
  })
})
