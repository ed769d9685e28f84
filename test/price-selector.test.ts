import { type Address, type Hex, numberToHex } from 'viem'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readUint } from '../src/checks/read.js'
import { wordAt } from '../src/chain/slots.js'
import { calldata } from '../src/chain/views.js'
import { applyFault, type FaultContext } from '../src/Fault.js'
import { faults } from '../src/faults/registry.js'
import { runScenario } from '../src/scenario/runner.js'
import { call, getBlock, getCode, getStorageAt, revertTo, sendTransaction, setCode, snapshot } from '../src/targets/chain.js'
import { type Fork, startFork } from '../src/targets/fork.js'
import { createPrng } from '../src/util/prng.js'
import { loadText, refusal } from './scenario-text.js'
import { compileSolidity } from './solc-compile.js'

/**
 * Issue 10, item 6: `oracle.divergence` on any view by selector (`fn`): the selector shim calls
 * the original code and scales (bps) or replaces one returned word; V2 cumulative-price moves
 * for TWAP manipulation; params that would do nothing are refused with the reason.
 */
const quoteSource = `// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;
contract Quote {
    uint256 public calls;
    function quote() external view returns (uint256 price, int256 delta, address source) {
        return (2000e18, -50, address(0xBEEF));
    }
    function label() external pure returns (string memory) { return "q"; }
}
`
const QUOTE = '0x00000000000000000000000000000000000q0001'.replace('q', 'a') as Address
const none = { steps: [], viewsBefore: {}, viewsAfter: {} }
const file = 'test/price-selector.yaml'

describe('oracle.divergence by selector', () => {
  let fork: Fork
  let ctx: FaultContext
  beforeAll(async () => {
    const [f, compiled] = await Promise.all([startFork({ kind: 'embedded' }), compileSolidity(quoteSource)])
    fork = f
    await setCode(fork.anvil.rpc, QUOTE, (compiled.Quote as { deployedBytecode: Hex }).deployedBytecode)
    const names: Record<string, Address> = { ...(fork.book as Record<string, Address>), quote: QUOTE }
    ctx = { rpc: fork.anvil.rpc, prng: createPrng(1), resolve: (n) => names[n] ?? (n as Address), now: () => 0 }
  }, 120_000)
  afterAll(async () => {
    await fork?.stop()
  })
  const quote = async () => {
    const out = await call(fork.anvil.rpc, { to: QUOTE, data: calldata('quote()') })
    return [wordAt(out, 0), BigInt.asIntN(256, wordAt(out, 1)), wordAt(out, 2)]
  }

  it('on a contract of the test: an int word scaled, a uint word replaced, the others untouched; revert puts the code back', async () => {
    const code = await getCode(fork.anvil.rpc, QUOTE)
    const scaled = await applyFault(faults['oracle.divergence'], ctx, { target: 'quote', params: { fn: 'quote() returns (uint256, int256, address)', word: 1, bps: 1000, direction: 'down' } }, 't')
    expect(await quote()).toEqual([2000n * 10n ** 18n, -45n, 0xbeefn])
    expect((await scaled.detect(none)).took).toBe('quote() returns (uint256, int256, address) word 1 rewritten through the selector shim: -50 → -45')
    await scaled.revert()
    const replaced = await applyFault(faults['oracle.divergence'], ctx, { target: 'quote', params: { fn: 'quote() returns (uint256, int256, address)', value: '7' } }, 't')
    expect(await quote()).toEqual([7n, -50n, 0xbeefn])
    // The rest of the contract still runs its own code on its own storage.
    expect(await readUint(fork.anvil.rpc, QUOTE, 'calls() returns (uint256)')).toBe(0n)
    await replaced.revert()
    expect(await quote()).toEqual([2000n * 10n ** 18n, -50n, 0xbeefn])
    expect(await getCode(fork.anvil.rpc, QUOTE)).toBe(code)
  })

  it('refused at load with the reason: a dynamic return, no return types, a word out of range, bps on an address, staleS with fn, word without fn', () => {
    const fault = (params: string, target = 'quote') => `name: t\nhypothesis: h\ncontracts: { quote: "${QUOTE}" }\ninject:\n  faults:\n    - { type: oracle.divergence, target: ${target}, params: ${params} }\n`
    const refused = (params: string) => refusal(fault(params), file).shortMessage
    expect(refused('{ fn: "label() returns (string)", value: "1" }')).toBe(
      'test/price-selector.yaml:6: `inject.faults[0].params.fn` is refused: it returns string, which is not one static word: only views whose every returned value is one word (uint, int, address, bool, bytes1–32) can be rewritten.',
    )
    expect(refused('{ fn: "quote()", bps: 100 }')).toBe('test/price-selector.yaml:6: `inject.faults[0].params.fn` is refused: it does not say what the view returns (`returns (uint256)`): the word to rewrite is found by its return types.')
    expect(refused('{ fn: "quote() returns (uint256, int256, address)", word: 3, bps: 100 }')).toBe(
      'test/price-selector.yaml:6: `inject.faults[0].params.word` is refused: it picks word 3, but `quote` returns 3 words (0 to 2).',
    )
    expect(refused('{ fn: "quote() returns (uint256, int256, address)", word: 2, bps: 100 }')).toBe(
      'test/price-selector.yaml:6: `inject.faults[0].params.word` is refused: it picks word 2, a address; scaling by `bps` needs a number (uint or int): give `value` to replace it instead.',
    )
    expect(refused('{ fn: "quote() returns (uint256, int256, address)", bps: 100, staleS: 60 }')).toMatch(/`inject\.faults\[0\]\.params\.staleS` is refused: it ages a Chainlink-style feed's `updatedAt`; with `fn`/)
    expect(refused('{ bps: 100, word: 1 }')).toBe('test/price-selector.yaml:6: `inject.faults[0].params.word` is refused: it picks the returned word of `fn`, which is not given.')
    expect(refused('{ bps: 100, value: "1" }')).toMatch(/must have exactly one of `bps`, `value`/)
  })

  it('staleS on a pair is refused before anything is written (it was a silent no-op)', async () => {
    const reserves = await getStorageAt(fork.anvil.rpc, ctx.resolve('pair', 'x'), '0x8')
    const error = await applyFault(faults['oracle.divergence'], ctx, { target: 'pair', params: { bps: 100, staleS: 60 } }, 't').catch((e: Error) => e)
    expect((error as Error).message).toMatch(/^`oracle\.divergence` `params\.staleS` is refused: the target 0x[0-9a-fA-F]{40} is a V2-style pair, which has no `updatedAt` to age/)
    expect(await getStorageAt(fork.anvil.rpc, ctx.resolve('pair', 'x'), '0x8')).toBe(reserves)
  })

  it("the reference vault's TWAP oracle moved 5 % by selector: cycle() engages ONLY_UNWIND; 1 % (under its 2 % guard) does not, and the check fails", async () => {
    const scenario = (bps: number) =>
      loadText(
        `name: twap-by-selector
hypothesis: When the TWAP oracle's consult() answers 5 % above the feed, cycle() switches to ONLY_UNWIND.
protocol: reference
checks:
  - { name: only-unwind-engaged, kind: safety, phases: [inject], riskMode: { equals: 1 } }
baseline: { steps: [ { cycle: {} } ] }
inject:
  faults:
    - { type: oracle.divergence, target: twap, params: { fn: "consult() returns (uint256)", bps: ${bps}, direction: up } }
  steps: [ { cycle: { intervalS: 0 } } ]
`,
        file,
      )
    const twap = ctx.resolve('twap', 'x')
    const code = await getCode(fork.anvil.rpc, twap)
    await fork.reset()
    const held = await runScenario(scenario(500), fork, { seed: 1, replay: 'test' })
    expect(held.verdict).toBe('held')
    expect(held.faults[0]?.evidence?.took).toMatch(/^consult\(\) returns \(uint256\) word 0 rewritten through the selector shim: (\d+) → (\d+)$/)
    expect(await getCode(fork.anvil.rpc, twap)).toBe(code)
    await fork.reset()
    const failed = await runScenario(scenario(100), fork, { seed: 1, replay: 'test' })
    expect(failed.checks.find((c) => c.name === 'only-unwind-engaged')).toMatchObject({ ok: false, observed: 'riskMode 0' })
  }, 120_000)

  it("V2 cumulative prices moved for TWAP manipulation: the oracle's next update averages the moved price; blockTimestampLast kept; revert restores exactly", async () => {
    await fork.reset()
    const pair = ctx.resolve('pair', 'x')
    const twap = ctx.resolve('twap', 'x')
    const reads = async () => [await readUint(fork.anvil.rpc, pair, 'price0CumulativeLast() returns (uint256)'), await readUint(fork.anvil.rpc, pair, 'price1CumulativeLast() returns (uint256)'), wordAt(await call(fork.anvil.rpc, { to: pair, data: calldata('getReserves()') }), 2)]
    // The oracle's next update at one fixed time past its 30 min period, without and with the move: only the cumulative differs.
    const at = numberToHex(BigInt((await getBlock(fork.anvil.rpc)).timestamp) + 1_860n)
    const update = async () => {
      await fork.anvil.rpc.request('evm_setNextBlockTimestamp', [at])
      await sendTransaction(fork.anvil.rpc, { from: fork.accounts.keeper as Address, to: twap, data: calldata('update()') })
      return readUint(fork.anvil.rpc, twap, 'consult() returns (uint256)')
    }
    const snap = await snapshot(fork.anvil.rpc)
    const plain = await update()
    await revertTo(fork.anvil.rpc, snap)
    const before = await reads()
    const moved = await applyFault(faults['oracle.divergence'], ctx, { target: 'pair', params: { bps: 1000, direction: 'up', cumulativeS: 3600 } }, 't')
    const after = await reads()
    expect(after[0]).toBeGreaterThan(before[0] as bigint)
    expect(after[1]).toBeLessThan(before[1] as bigint)
    expect(after[2]).toBe(before[2])
    expect((await moved.detect(none)).took).toMatch(/^price0CumulativeLast \d+ → \d+, price1CumulativeLast \d+ → \d+ \(as if spot token0→token1 were up 1000 bps for the last 3600 s; reserves and blockTimestampLast unchanged\)$/)
    const manipulated = await update()
    expect(manipulated).toBeGreaterThan(plain)
    await fork.anvil.rpc.request('evm_mine', [])
    const pre = await reads()
    await moved.revert()
    // Exactly the delta comes back out: what the pair accumulated since (none without a swap) is kept.
    const restored = await reads()
    expect(restored[0]).toBe((pre[0] as bigint) - ((after[0] as bigint) - (before[0] as bigint)))
    expect(restored[1]).toBe((pre[1] as bigint) - ((after[1] as bigint) - (before[1] as bigint)))
    expect(restored).toEqual(before)
  })
})
