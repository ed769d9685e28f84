import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { type AbiEvent, decodeEventLog, type Hex, parseAbiItem } from 'viem'
import { loadText, refusal } from './scenario-text.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { checkDocs, checkNames, checks, checkSchema, evaluateCheck, sampleForkChecks } from '../src/checks/registry.js'
import { InputError } from '../src/errors.js'
import { createForkProbe, maxWindowEnds } from '../src/probes/fork.js'
import { createResolver, type RunContext } from '../src/scenario/context.js'
import { bountyEventOf, referenceProtocol } from '../src/scenario/protocol.js'
import { runScenario } from '../src/scenario/runner.js'
import { scenarioSchema } from '../src/scenario/schema.js'
import type { BountyEvent, Scenario } from '../src/scenario/types.js'
import type { StepEnv } from '../src/Step.js'
import { runStep, stepKinds, stepSchema, steps } from '../src/steps/registry.js'
import { type Fork, startFork } from '../src/targets/fork.js'
import { createPrng } from '../src/util/prng.js'

/**
 * Steps and checks as units (issue 8): the scenario schema, the types and `forkchaos list` come
 * from the two registries; a check names the target kind it applies to, and the loader refuses
 * one on the wrong target (exit 2, file, line and field); fork checks read the fork probe's typed
 * series, and one that cannot be judged says why.
 */
const load = (yaml: string, file = 'test/steps-checks.yaml'): Scenario => loadText(yaml, file)
const errorOf = (yaml: string): string => refusal(yaml, 'test/steps-checks.yaml').message

const fork = (checksYaml: string, stepsYaml = '    - cycle: {}') => `name: t
hypothesis: h
protocol: reference
checks:
${checksYaml}
inject:
  faults: []
  steps:
${stepsYaml}
`
const devnet = (checksYaml: string, stepsYaml = '') => `name: t
hypothesis: h
target: { kind: devnet }
checks:
${checksYaml}
inject:
  faults: []
${stepsYaml}
`

describe('the registries are the one declaration', () => {
  it('the scenario schema takes its step and check forms from the registries, in their order', () => {
    expect(stepKinds).toEqual(Object.keys(steps))
    expect(stepSchema.oneOf.map((s) => s.required[0])).toEqual(stepKinds)
    // Every list of steps or checks references the one definition, which is the registry's.
    expect(scenarioSchema.definitions.step).toBe(stepSchema)
    expect(scenarioSchema.definitions.check).toBe(checkSchema)
    for (const phase of [scenarioSchema.properties.baseline, scenarioSchema.properties.inject, scenarioSchema.properties.recover]) expect(phase.properties.steps.items).toEqual({ $ref: '#/definitions/step' })
    expect(scenarioSchema.properties.checks.items).toEqual({ $ref: '#/definitions/check' })
    expect(scenarioSchema.properties.stop.items).toEqual({ $ref: '#/definitions/check' })
    expect(checkSchema.oneOf.map((o) => o.required[0])).toEqual(checkNames)
    for (const name of checkNames) expect((checkSchema.properties as Record<string, unknown>)[name]).toBe(checks[name].params)
  })

  it('every check names its target kind and has a one-line doc; fork and devnet share the one registry', () => {
    const byTarget = (t: string) => checkNames.filter((n) => checks[n].target === t)
    expect(byTarget('fork')).toEqual(['sharePriceFloor', 'cycleAtomic', 'bountyCapped', 'flashRepaid', 'cyclesSucceed', 'riskMode', 'view', 'reverts', 'keeperLoad', 'module'])
    expect(byTarget('devnet')).toEqual(expect.arrayContaining(['progress', 'noFork', 'mustStall', 'catchUp', 'rejects', 'driftRejected', 'evidence', 'memory', 'inclusion']))
    expect(byTarget('fork').length + byTarget('devnet').length).toBe(checkNames.length)
    for (const name of checkNames) expect(checkDocs[name]).toMatch(/^\S.{10,200}$/)
  })

  it('`forkchaos list` shows every check with its one-line doc (built CLI)', () => {
    const cli = path.join(import.meta.dirname, '..', 'bin', 'forkchaos.js')
    // Generous timeouts: the built CLI loads slowly with both cores busy.
    const text = spawnSync(process.execPath, [cli, 'list', 'scenarios/defi'], { encoding: 'utf8', timeout: 120_000 })
    expect(text.status).toBe(0)
    const section = text.stdout.split('\nChecks\n')[1] ?? ''
    for (const name of checkNames) expect(section).toContain(`  ${name.padEnd(22)} ${checkDocs[name]}\n`)
    const json = spawnSync(process.execPath, [cli, 'list', 'scenarios/defi', '--json'], { encoding: 'utf8', timeout: 120_000 })
    expect(JSON.parse(json.stdout).checks).toEqual(checkDocs)
  }, 300_000)
})

describe('a check or step on the wrong target is a load error', () => {
  it('a devnet check in a fork scenario names the file, line and field', () => {
    expect(errorOf(fork('  - { name: no-fork, kind: safety, noFork: true }'))).toMatchInlineSnapshot(`
      "test/steps-checks.yaml:5: \`checks[0].noFork\` is a devnet check; this scenario's target is a fork (the default).

      File: test/steps-checks.yaml
      Field: checks[0].noFork"
    `)
  })

  it('…and in its stop conditions', () => {
    const yaml = fork('  - { name: floor, kind: safety, sharePriceFloor: { minBps: 9950 } }').replace('inject:', 'stop:\n  - { name: moves, kind: liveness, progress: {} }\ninject:')
    expect(errorOf(yaml)).toMatchInlineSnapshot(`
      "test/steps-checks.yaml:7: \`stop[0].progress\` is a devnet check; this scenario's target is a fork (the default).

      File: test/steps-checks.yaml
      Field: stop[0].progress"
    `)
  })

  it('a fork check in a devnet scenario', () => {
    expect(errorOf(devnet('  - { name: no-fork, kind: safety, noFork: true }\n  - { name: floor, kind: safety, sharePriceFloor: { minBps: 9950 } }'))).toMatchInlineSnapshot(`
      "test/steps-checks.yaml:6: \`checks[1].sharePriceFloor\` is a fork check; this scenario's target is a devnet.

      File: test/steps-checks.yaml
      Field: checks[1].sharePriceFloor"
    `)
  })

  it('a fork step in a devnet scenario', () => {
    expect(errorOf(devnet('  - { name: no-fork, kind: safety, noFork: true }', '  steps:\n    - mine: { blocks: 2 }'))).toMatchInlineSnapshot(`
      "test/steps-checks.yaml:9: \`inject.steps[0].mine\` is a fork step; this scenario's target is a devnet.

      File: test/steps-checks.yaml
      Field: inject.steps[0].mine"
    `)
  })

  it("a step's own requirement of the target: a keeper step needs the fault proxy", () => {
    expect(errorOf(fork('  - { name: load, kind: liveness, keeperLoad: {} }', '    - keeper: { mode: naive, duration: 1s }'))).toMatchInlineSnapshot(`
      "test/steps-checks.yaml:9: \`inject.steps[0].keeper\` needs \`target: { rpcProxy: true }\`: the keeper talks to the fork through the fault proxy.

      File: test/steps-checks.yaml
      Field: target.rpcProxy"
    `)
  })

  it('the right target loads: fork checks and steps on a fork, devnet checks on a devnet', () => {
    expect(load(fork('  - { name: floor, kind: safety, sharePriceFloor: { minBps: 9950 } }')).checks[0]?.sharePriceFloor).toEqual({ minBps: 9950 })
    expect(load(devnet('  - { name: no-fork, kind: safety, noFork: true }')).checks[0]?.noFork).toBe(true)
  })

  it('`forkchaos validate`: exit 2, the file and line, no stack (built CLI)', () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'forkchaos-steps-checks-')), 'wrong-target.yaml')
    fs.writeFileSync(file, fork('  - { name: no-fork, kind: safety, noFork: true }'))
    const r = spawnSync(process.execPath, [path.join(import.meta.dirname, '..', 'bin', 'forkchaos.js'), 'validate', file], { encoding: 'utf8', timeout: 120_000 })
    expect(r.status).toBe(2)
    expect(r.stderr.split('\n')[0]).toBe(`forkchaos: ${file}:5: \`checks[0].noFork\` is a devnet check; this scenario's target is a fork (the default).`)
    expect(r.stderr).not.toMatch(/\n\s+at /)
  }, 150_000)
})

describe('the fork probe and the checks that read it (real Anvil, embedded chain)', () => {
  let target: Fork
  beforeAll(async () => {
    target = await startFork({ kind: 'embedded' })
  })
  afterAll(async () => {
    await target?.stop()
  })

  const contextOn = (f: Fork, scenario: Scenario): RunContext => {
    const resolve = createResolver(scenario, f)
    const probe = createForkProbe({ rpc: f.anvil.rpc, protocol: referenceProtocol, vault: resolve('vault', 'protocol.vault'), resolve })
    return { scenario, protocol: referenceProtocol, fork: f, rpc: f.anvil.rpc, prng: createPrng(1), now: () => 0, resolve, steps: probe.series.steps, probe, proxies: new Map() }
  }

  it('a keeper cycle gets typed views read around it and its bounty event decoded; bountyCapped and flashRepaid judge them', async () => {
    await target.reset()
    const scenario = load(fork('  - { name: capped, kind: safety, bountyCapped: true }\n  - { name: repaid, kind: safety, flashRepaid: true }'))
    const ctx = contextOn(target, scenario)
    const from = ctx.probe.now()
    const env: StepEnv = { phase: 'inject', where: 'inject.steps[0]', record: (r) => ctx.probe.record(r), beforeStep: async () => {}, stopCheck: async () => {}, progress: () => {} }
    await runStep(ctx, { cycle: { count: 2 } }, env)
    const window = { phase: 'inject' as const, from, to: ctx.probe.now() }
    const cycles = ctx.probe.series.steps
    expect(cycles.map((s) => [s.label, s.type, s.ok])).toEqual([
      ['inject cycle#1', 'cycle', true],
      ['inject cycle#2', 'cycle', true],
    ])
    const [first] = cycles
    // Typed series, not keys: the cap, the lender's balance and every state view by name.
    expect(typeof first?.before?.bountyCap).toBe('bigint')
    expect(typeof first?.after?.lenderBalance).toBe('bigint')
    expect(Object.keys(first?.before?.state ?? {})).toEqual(['totalAssets()', 'totalSupply()', 'riskMode()', 'tradeId()', 'tradeCollateral()', 'alpShares()'])
    // The probe's bounty amounts are the receipt's BountyPaid events, decoded independently here.
    const event = parseAbiItem(`event ${bountyEventOf(referenceProtocol.bountyEvent as BountyEvent).event}`) as AbiEvent
    const paid = (first?.receipt?.logs ?? []).flatMap((log) => {
      try {
        return [(decodeEventLog({ abi: [event], data: log.data, topics: log.topics as [Hex, ...Hex[]] }).args as unknown as { amount: bigint }).amount]
      } catch {
        return []
      }
    })
    expect(paid.length).toBe(1)
    expect(first?.bounties).toEqual(paid)
    await sampleForkChecks(ctx, ctx.probe, scenario.checks, window)
    const [capped, repaid] = scenario.checks.map((spec) => evaluateCheck(spec, ctx.probe.series, window))
    expect(capped?.ok).toBe(true)
    expect(capped?.observed).toMatch(/^2 bounties; largest over cap: [\d.]+ vs cap [\d.]+$/)
    expect(repaid).toEqual({ ok: true, observed: '2 successful cycles, lender never poorer', expected: 'lender balance never falls across a cycle' })
    // A window without the cycles sees none of them.
    const empty = { phase: 'recover' as const, from: window.to, to: ctx.probe.now() }
    await sampleForkChecks(ctx, ctx.probe, scenario.checks, empty)
    expect(evaluateCheck(scenario.checks[0] as Scenario['checks'][number], ctx.probe.series, empty)).toEqual({ ok: true, observed: 'no bounty paid in this phase', expected: "every bounty ≤ its cap (the BountyPaid event's `cap`)" })
  })

  it('a check that cannot be judged fails and says why: a view that reverts (a protocol without the function a check needs is refused at load: test/protocol-views.test.ts)', async () => {
    await target.reset()
    const scenario = load(`name: unjudgeable
hypothesis: h
protocol: { vault: vault, entry: "cycle()" }
checks:
  - { name: bad-view, kind: safety, view: { to: vault, fn: "noSuchView() returns (uint256)", equals: 1 } }
  - { name: cycles, kind: liveness, cyclesSucceed: true }
inject:
  faults: []
  steps:
    - cycle: {}
`)
    const report = await runScenario(scenario, target, { seed: 1, replay: 'test' })
    const baseline = report.checks.filter((c) => c.phase === 'baseline')
    expect(baseline.map((c) => [c.name, c.ok, c.observed])).toMatchInlineSnapshot(`
      [
        [
          "bad-view",
          false,
          "the check could not be evaluated: eth_call: execution reverted (code 3)",
        ],
        [
          "cycles",
          false,
          "no cycle ran in this phase",
        ],
      ]
    `)
    expect(report.verdict).toBe('failed')
  })

  it('the probe keeps the latest 64 window ends, not one per stop-condition look for ever', async () => {
    const ctx = contextOn(target, load(fork('  - { name: cycles, kind: liveness, cyclesSucceed: true }')))
    const ask = [{ name: 'floor', prepare: () => ({ params: {}, reads: [] }) }]
    for (let i = 1; i <= 70; i++) await ctx.probe.sampleEnd({ phase: 'inject', from: 0, to: i }, ask)
    expect(maxWindowEnds).toBe(64)
    expect(ctx.probe.series.ends.map((e) => e.t)).toEqual(Array.from({ length: 64 }, (_, i) => i + 7))
  })

  it('a name in a check that does not resolve is bad input, not a failed check', async () => {
    await target.reset()
    const scenario = load(fork('  - { name: books, kind: safety, view: { to: nowhere, fn: "totalAssets()", atLeast: 1 } }'))
    const error = await runScenario(scenario, target, { seed: 1, replay: 'test' }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(InputError)
    expect((error as InputError).shortMessage).toMatchInlineSnapshot(`"test/steps-checks.yaml: \`view.to\` names \`nowhere\`, which is neither an address nor a known contract or account."`)
  })
})
