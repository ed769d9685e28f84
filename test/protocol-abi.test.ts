import { describe, expect, it } from 'vitest'
import { protocolAbiProblem } from '../src/scenario/protocol-abi.js'
import { referenceProtocol } from '../src/scenario/protocol.js'
import { loadText, refusal } from './scenario-text.js'

/**
 * Issue 10, item 1: `validate` resolves every function and event of a protocol block against the
 * ABI it can reach (here: the embedded reference contracts'), arity and argument types; a missing
 * or ill-typed one is exit 2 naming file, line and field, before anything boots. `validate` and
 * `run` both load through parseScenario (test/protocol-views.test.ts runs the CLI on such a file).
 */
const file = 'test/protocol-abi.yaml'
const withProtocol = (protocol: string, contracts = '') => `name: t
hypothesis: h
${contracts}protocol:
  vault: vault
${protocol}
inject:
  faults: []
  steps:
    - cycle: {}
`
const errorOf = (protocol: string) => refusal(withProtocol(protocol), file)

describe('protocol functions resolved against the ABI', () => {
  it('a view the vault lacks, a view with other argument types, an entry point it lacks and an event of other types are refused, each naming its field', () => {
    const missing = errorOf('  entry: "cycle()"\n  sharePrice: "pricePerShare()"')
    expect(missing.shortMessage).toMatch(/^test\/protocol-abi\.yaml:6: `protocol\.sharePrice` calls `pricePerShare\(\)` on `vault`, and the embedded ReferenceVault has no function named `pricePerShare`; it has `NORMAL\(\)`, /)
    expect(missing.context.Field).toBe('protocol.sharePrice')
    const types = errorOf('  entry: "cycle()"\n  state: ["totalSupply()", { fn: "balanceOf(uint256)", args: [1] }]')
    expect(types.shortMessage).toBe(
      'test/protocol-abi.yaml:6: `protocol.state[1].fn` calls `balanceOf(uint256)` on `vault`, but the embedded ReferenceVault declares `balanceOf(address)`: other argument types.',
    )
    const arity = errorOf('  entry: "cycle()"\n  sharePrice: { fn: "balanceOf(address,uint256)", args: [depositor, 1] }')
    expect(arity.shortMessage).toBe(
      'test/protocol-abi.yaml:6: `protocol.sharePrice.fn` calls `balanceOf(address,uint256)` on `vault`, but the embedded ReferenceVault declares `balanceOf(address)`: 1 argument(s), not 2.',
    )
    expect(errorOf('  entry: "harvest()"').shortMessage).toMatch(/^test\/protocol-abi\.yaml:5: `protocol\.entry` calls `harvest\(\)` on `vault`, and the embedded ReferenceVault has no function named `harvest`/)
    expect(errorOf('  entry: "cycle()"\n  bountyEvent: { event: "BountyPaid(address indexed keeper, uint128 amount)", amount: amount }').shortMessage).toBe(
      'test/protocol-abi.yaml:6: `protocol.bountyEvent.event` names `BountyPaid(address,uint128)`, but the embedded ReferenceVault (`vault`) declares `BountyPaid(address,uint256,uint256)`: another topic, so its logs would never match.',
    )
  })

  it('what matches the ABI loads: the reference protocol itself, and a vault the scenario maps to its own address (no ABI reachable for it)', () => {
    expect(protocolAbiProblem(referenceProtocol, {})).toBeUndefined()
    const ok = loadText(withProtocol('  entry: "cycle()"\n  sharePrice: { fn: "balanceOf(address)", args: [depositor] }\n  signals: ["RiskModeChanged(uint8 from, uint8 to, string why)"]'), file)
    expect(ok.protocol).toMatchObject({ vault: 'vault', entry: 'cycle()' })
    const own = loadText(withProtocol('  entry: "harvest()"', 'contracts: { vault: "0x1000000000000000000000000000000000000001" }\n'), file)
    expect(own.protocol).toMatchObject({ entry: 'harvest()' })
  })
})
