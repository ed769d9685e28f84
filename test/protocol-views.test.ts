import { spawnSync } from 'node:child_process'
import * as path from 'node:path'
import { loadText, refusal } from './scenario-text.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { InputError } from '../src/errors.js'
import { loadScenario } from '../src/scenario/loader.js'
import { runScenario } from '../src/scenario/runner.js'
import { createForkProbe } from '../src/probes/fork.js'
import { createResolver } from '../src/scenario/context.js'
import type { Protocol, Scenario } from '../src/scenario/types.js'
import { type Fork, startFork } from '../src/targets/fork.js'

/**
 * Issue 10, item 1: protocol views take arguments, and a protocol block is checked at load — a
 * view's arity and argument types against its signature, the bounty event's fields, and the
 * protocol fields each check reads. Bad input is exit 2 naming the file, line and field.
 */
const load = (yaml: string, file = 'test/protocol.yaml'): Scenario => loadText(yaml, file)
const errorOf = (yaml: string): string => refusal(yaml, 'test/protocol.yaml').shortMessage
const withProtocol = (protocol: string, checks = '  - { name: floor, kind: safety, sharePriceFloor: { minBps: 9950 } }') => `name: t
hypothesis: h
contracts: { vault: "0x1000000000000000000000000000000000000001" }
protocol:
${protocol}
checks:
${checks}
inject:
  faults: []
  steps:
    - cycle: {}
`
const cli = path.join(import.meta.dirname, '..', 'bin', 'forkchaos.js')

describe('protocol views with arguments, checked at load', () => {
  it('previewRedeem(uint256) without its argument is exit 2 naming the file, line, field and what is expected (it was a run-time "ABI encoding" error)', () => {
    const file = 'test/fixtures/protocol/preview-redeem-no-args.yaml'
    const error = (() => {
      try {
        loadScenario(file)
      } catch (e) {
        return e as InputError
      }
      throw new Error('expected an InputError')
    })()
    expect(error).toBeInstanceOf(InputError)
    expect(error.shortMessage).toMatchInlineSnapshot(
      `"test/fixtures/protocol/preview-redeem-no-args.yaml:7: \`protocol.sharePrice\` calls \`previewRedeem(uint256)\`, which takes 1 argument (uint256); got 0. Give them as \`{ fn: "previewRedeem(uint256) returns (uint256)", args: ["1e18"] }\`."`,
    )
    expect(error.context.Field).toBe('protocol.sharePrice')
  })

  it('`forkchaos validate` refuses it too (exit 2, no stack trace)', () => {
    const out = spawnSync(process.execPath, [cli, 'validate', 'test/fixtures/protocol/preview-redeem-no-args.yaml'], { encoding: 'utf8', timeout: 60_000 })
    expect(out.status).toBe(2)
    expect(out.stderr).toContain('preview-redeem-no-args.yaml:7: `protocol.sharePrice` calls `previewRedeem(uint256)`, which takes 1 argument (uint256); got 0.')
    expect(out.stderr).not.toMatch(/\n\s+at /)
  })

  it('`{ fn, args }` loads; wrong arity and wrong types are refused with the argument named', () => {
    const ok = load(withProtocol('  vault: vault\n  entry: "harvest()"\n  sharePrice: { fn: "previewRedeem(uint256) returns (uint256)", args: ["1e18"] }'))
    expect(ok.protocol).toMatchObject({ sharePrice: { fn: 'previewRedeem(uint256) returns (uint256)', args: ['1e18'] } })
    expect(errorOf(withProtocol('  vault: vault\n  entry: "harvest()"\n  sharePrice: { fn: "previewRedeem(uint256) returns (uint256)", args: ["1e18", 2] }'))).toBe(
      'test/protocol.yaml:7: `protocol.sharePrice.fn` calls `previewRedeem(uint256)`, which takes 1 argument (uint256); got 2.',
    )
    expect(errorOf(withProtocol('  vault: vault\n  entry: "harvest()"\n  sharePrice: { fn: "previewRedeem(uint256)", args: [true] }'))).toBe(
      'test/protocol.yaml:7: `protocol.sharePrice.args[0]` must be a whole number (decimal, hex, or like "1e18") (the argument\'s type is uint256). Got `true`.',
    )
    expect(errorOf(withProtocol('  vault: vault\n  entry: "harvest()"\n  sharePrice: "sharePrice()"\n  state: ["totalAssets()", { fn: "balanceOf(address)", args: ["1.5e0x"] }]'))).toBe(
      'test/protocol.yaml:8: `protocol.state[1].args[0]` must be an address or a contract/account name (the argument\'s type is address). Got `"1.5e0x"`.',
    )
    expect(errorOf(withProtocol('  vault: vault\n  entry: "harvest()"\n  riskMode: "mode() returns (address)"', '  - { name: m, kind: safety, riskMode: { equals: 1 } }'))).toBe(
      'test/protocol.yaml:7: `protocol.riskMode` must return a number (uint or int); `mode() returns (address)` returns address.',
    )
    // A state view is a fingerprint word: an address will do, a string will not.
    load(withProtocol('  vault: vault\n  entry: "harvest()"\n  sharePrice: "sharePrice()"\n  state: ["owner() returns (address)"]'))
    expect(errorOf(withProtocol('  vault: vault\n  entry: "harvest()"\n  sharePrice: "sharePrice()"\n  state: ["name() returns (string)"]'))).toBe(
      'test/protocol.yaml:8: `protocol.state[0]` must return one word (a number, an address, a bool or bytesN); `name() returns (string)` returns string.',
    )
    expect(errorOf(withProtocol('  vault: vault\n  entry: "harvest(uint256)"\n  sharePrice: "sharePrice()"'))).toMatch(/^test\/protocol.yaml:6: `protocol.entry` calls `harvest\(uint256\)`, which takes 1 argument \(uint256\); got 0\. .*The keeper entry point is called without arguments\.$/)
  })

  it('the limits: at most 8 arguments, each at most 200 characters', () => {
    const nine = Array.from({ length: 9 }, () => '1').join(', ')
    expect(errorOf(withProtocol(`  vault: vault\n  entry: "harvest()"\n  sharePrice: { fn: "f(uint256)", args: [${nine}] }`))).toBe('test/protocol.yaml:7: `protocol.sharePrice.args` must have at most 8 items. Got 9.')
    expect(errorOf(withProtocol(`  vault: vault\n  entry: "harvest()"\n  sharePrice: { fn: "f(uint256)", args: ["${'1'.repeat(201)}"] }`))).toBe('test/protocol.yaml:7: `protocol.sharePrice.args[0]` must be at most 200 characters long. Got 201.')
  })

  it('a check that needs a protocol field the block lacks is refused at load, naming the check and the field (it was a failed check at run time)', () => {
    expect(errorOf(withProtocol('  vault: vault\n  entry: "harvest()"'))).toBe("test/protocol.yaml:8: `checks[0].sharePriceFloor` (check `floor`) needs `protocol.sharePrice`, which this scenario's `protocol` block does not give.")
    expect(errorOf(withProtocol('  vault: vault\n  entry: "harvest()"', '  - { name: m, kind: safety, riskMode: { equals: 1 } }'))).toBe("test/protocol.yaml:8: `checks[0].riskMode` (check `m`) needs `protocol.riskMode`, which this scenario's `protocol` block does not give.")
    expect(errorOf(withProtocol('  vault: vault\n  entry: "harvest()"', '  - { name: r, kind: safety, flashRepaid: true }'))).toBe("test/protocol.yaml:8: `checks[0].flashRepaid` (check `r`) needs `protocol.lender`, which this scenario's `protocol` block does not give.")
    expect(errorOf(withProtocol('  vault: vault\n  entry: "harvest()"', '  - { name: capped, kind: safety, bountyCapped: true }'))).toBe("test/protocol.yaml:8: `checks[0].bountyCapped` (check `capped`) needs `protocol.bountyEvent`, which this scenario's `protocol` block does not give.")
    // A stop condition too.
    expect(errorOf(withProtocol('  vault: vault\n  entry: "harvest()"\n  sharePrice: "pps()"', '  - { name: c, kind: liveness, cyclesSucceed: true }\nstop:\n  - { name: s, kind: safety, riskMode: { equals: 0 } }'))).toBe("test/protocol.yaml:11: `stop[0].riskMode` (check `s`) needs `protocol.riskMode`, which this scenario's `protocol` block does not give.")
  })

  it('bountyCapped with no cap to read (no bountyCap view, no cap in the event) is refused at load (it was exit 1 at run time)', () => {
    let error: InputError | undefined
    try {
      loadScenario('test/fixtures/protocol/no-bounty-cap.yaml')
    } catch (e) {
      error = e as InputError
    }
    expect(error?.exitCode).toBe(2)
    expect(error?.shortMessage).toBe(
      'test/fixtures/protocol/no-bounty-cap.yaml:10: `checks[0].bountyCapped` (check `bounty-capped`) needs a `cap` field in `protocol.bountyEvent` (`bountyEvent: { event: …, cap: "<field>" }`) or `protocol.bountyCap`, which this scenario\'s `protocol` block does not give.',
    )
    // With a cap field in the event, or an independent bound only, it loads.
    load(withProtocol('  vault: vault\n  entry: "harvest()"\n  bountyEvent: { event: "KeeperPaid(address indexed keeper, uint256 amount, uint256 max)", cap: max }', '  - { name: capped, kind: safety, bountyCapped: true }'))
    load(withProtocol('  vault: vault\n  entry: "harvest()"\n  bountyEvent: "KeeperPaid(address indexed keeper, uint256 amount)"', '  - { name: capped, kind: safety, bountyCapped: { protocolCap: false, maxAssetsBps: 10 } }'))
  })

  it('bountyEvent names its amount field; a missing field is exit 2 (the string form silently needed `amount`)', () => {
    expect(errorOf(withProtocol('  vault: vault\n  entry: "harvest()"\n  bountyCap: "cap()"\n  bountyEvent: "Paid(address indexed k, uint256 value)"', '  - { name: capped, kind: safety, bountyCapped: true }'))).toBe(
      'test/protocol.yaml:8: `protocol.bountyEvent`: the event `Paid` has no field named `amount` (the string form reads the bounty from a field named `amount`); its fields are address k, uint256 value. Name it: `bountyEvent: { event: "Paid(address indexed k, uint256 value)", amount: "<field>" }`.',
    )
    load(withProtocol('  vault: vault\n  entry: "harvest()"\n  bountyCap: "cap()"\n  bountyEvent: { event: "Paid(address indexed k, uint256 value)", amount: value }', '  - { name: capped, kind: safety, bountyCapped: true }'))
    expect(errorOf(withProtocol('  vault: vault\n  entry: "harvest()"\n  bountyCap: "cap()"\n  bountyEvent: { event: "Paid(address indexed k, uint256 value)", amount: value, cap: limit }', '  - { name: capped, kind: safety, bountyCapped: true }'))).toBe(
      'test/protocol.yaml:8: `protocol.bountyEvent.cap`: the event `Paid` has no field named `limit`; its fields are address k, uint256 value.',
    )
  })
})

describe('protocol views with arguments, read on the embedded chain (real Anvil)', () => {
  let fork: Fork
  beforeAll(async () => {
    fork = await startFork({ kind: 'embedded' })
  }, 120_000)
  afterAll(async () => {
    await fork?.stop()
  })

  it('a share price and a state view read with an address argument (the probe passes the args; it used to send none)', async () => {
    await fork.reset()
    const scenario = load(`name: views-with-args
hypothesis: The depositor's share balance, read as a protocol view with an argument, does not fall.
protocol:
  vault: vault
  entry: "cycle()"
  sharePrice: { fn: "balanceOf(address) returns (uint256)", args: [depositor] }
  state: [{ fn: "balanceOf(address)", args: [depositor] }, "totalSupply()"]
checks:
  - { name: depositor-keeps-shares, kind: safety, sharePriceFloor: { minBps: 10000 } }
inject:
  faults: []
  steps:
    - cycle: {}
`)
    const report = await runScenario(scenario, fork, { seed: 1, replay: 'test' })
    expect(report.verdict).toBe('held')
    const floor = report.checks.find((c) => c.name === 'depositor-keeps-shares' && c.phase === 'inject')
    // The depositor's shares (tens of thousands and more, in 18 decimals), not 0 or a revert.
    expect(floor?.observed).toMatch(/^sharePrice \d{5,}(\.\d+)?$/)
    // The state views around a cycle, keyed by their arguments.
    const resolve = createResolver(scenario, fork)
    const probe = createForkProbe({ rpc: fork.anvil.rpc, protocol: scenario.protocol as Protocol, vault: resolve('vault', 'protocol.vault'), resolve })
    const { views } = await probe.around()
    expect(Object.keys(views.state)).toEqual(['balanceOf(depositor)', 'totalSupply()'])
    expect(views.state['balanceOf(depositor)']).toBeGreaterThan(10n ** 22n)
  }, 120_000)
})
