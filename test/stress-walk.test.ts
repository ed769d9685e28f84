import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pairWalker } from '../src/chain/pairs.js'
import { wordAt, writeFields } from '../src/chain/slots.js'
import { calldata } from '../src/chain/views.js'
import { call } from '../src/targets/chain.js'
import { runScenario } from '../src/scenario/runner.js'
import { getStorageAt } from '../src/targets/chain.js'
import { type Fork, startFork } from '../src/targets/fork.js'
import { rpcRoundTrips } from '../src/targets/rpc.js'
import { loadText } from './scenario-text.js'

let fork: Fork
beforeAll(async () => {
  fork = await startFork({ kind: 'embedded' })
}, 60_000)
afterAll(async () => {
  await fork?.stop()
})

describe('stress: the feed walk written in two batches', () => {
  it('writeFields merges fields that share a slot and keeps the slot\'s other bits', async () => {
    const address = fork.book.feed as `0x${string}`
    const slot = '0x00000000000000000000000000000000000000000000000000000000000000ff' as const
    await fork.anvil.rpc.request('anvil_setStorageAt', [address, slot, `0x${'ab'.repeat(32)}`])
    const low = { address, slot, offsetBits: 0, widthBits: 64 }
    const high = { address, slot, offsetBits: 128, widthBits: 64 }
    await writeFields(fork.anvil.rpc, [low, high], ([n]) => [BigInt(n as string), 7n], [{ method: 'eth_chainId' }])
    const word = BigInt(await getStorageAt(fork.anvil.rpc, address, slot))
    expect(word & 0xffffffffffffffffn).toBe(BigInt(await fork.anvil.rpc.request<string>('eth_chainId')))
    expect((word >> 128n) & 0xffffffffffffffffn).toBe(7n)
    // Bits 64–127 and 192–255 are untouched.
    expect((word >> 64n) & 0xffffffffffffffffn).toBe(0xababababababababn)
    expect(word >> 192n).toBe(0xababababababababn)
    await expect(writeFields(fork.anvil.rpc, [low], () => [1n << 64n])).rejects.toThrow('does not fit the 64-bit storage field')
  })

  it('a pair walk moves getReserves()[1] and token1.balanceOf(pair) together, and undo takes the sum back out', async () => {
    await fork.reset()
    const pair = fork.book.pair as `0x${string}`
    const reserve1 = async () => wordAt(await call(fork.anvil.rpc, { to: pair, data: calldata('getReserves()') }), 1)
    const token1 = `0x${wordAt(await call(fork.anvil.rpc, { to: pair, data: calldata('token1()') }), 0).toString(16).padStart(40, '0')}` as `0x${string}`
    const balance1 = async () => wordAt(await call(fork.anvil.rpc, { to: token1, data: calldata('balanceOf(address)', [pair]) }), 0)
    const [r0, b0] = [await reserve1(), await balance1()]
    const walker = await pairWalker(fork.anvil.rpc, pair)
    await walker.shift(100, 'up')
    expect(await reserve1()).toBe((r0 * 10_100n) / 10_000n)
    expect((await balance1()) - b0).toBe((await reserve1()) - r0)
    await walker.shift(250, 'down')
    const r2 = ((r0 * 10_100n) / 10_000n * 9_750n) / 10_000n
    expect(await reserve1()).toBe(r2)
    expect((await balance1()) - b0).toBe(r2 - r0)
    await walker.undo()
    expect(await reserve1()).toBe(r0)
    expect(await balance1()).toBe(b0)
  })

  it('a feed walk past the vault\'s 2 % guard takes effect: ONLY_UNWIND engages and a normal-mode check fails', async () => {
    await fork.reset()
    const scenario = loadText(
      `name: wide-walk
hypothesis: a walk of the feed by up to 10 % per cycle moves the vault out of normal mode.
protocol: reference
checks:
  - { name: normal-mode, kind: safety, phases: [inject], riskMode: { equals: 0 } }
baseline: { steps: [ { cycle: {} } ] }
inject:
  faults: []
  steps:
    - stress: { cycles: 12, walk: { feed: { target: feed, stepBps: 1000, maxBps: 5000 } } }
recover: { steps: [ { cycle: {} } ] }
`,
      'wide-walk.yaml',
    )
    const report = await runScenario(scenario, fork, { seed: 3, replay: 'test' })
    expect(report.verdict).toBe('failed')
    expect(report.reason).toMatch(/normal-mode/)
  }, 60_000)

  it('a cycle of both walks costs 4 round trips and a few (the walk reads ride the views after the previous cycle), and both walks end where they started', async () => {
    await fork.reset()
    const rpc = fork.anvil.rpc
    const feed = fork.book.feed as `0x${string}`
    const pair = fork.book.pair as `0x${string}`
    const read = async () => [wordAt(await call(rpc, { to: feed, data: calldata('latestRoundData()') }), 1), wordAt(await call(rpc, { to: pair, data: calldata('getReserves()') }), 1)]
    const start = await read()
    const cycles = 100
    const scenario = loadText(
      `name: both-walks
hypothesis: every cycle succeeds while the pair and the feed walk.
protocol: reference
checks:
  - { name: cycles-run, kind: liveness, cyclesSucceed: true }
baseline: { steps: [ { cycle: {} } ] }
inject:
  faults: []
  steps:
    - stress: { cycles: ${cycles}, walk: { pair: { target: pair, stepBps: 15, maxBps: 60 }, feed: { target: feed, stepBps: 15, maxBps: 60 } } }
recover: { steps: [ { cycle: {} } ] }
`,
      'both-walks.yaml',
    )
    const trips0 = rpcRoundTrips.count
    const report = await runScenario(scenario, fork, { seed: 1, replay: 'test' })
    const perCycle = (rpcRoundTrips.count - trips0) / cycles
    expect(`${report.verdict}: ${report.reason}`).toMatch(/^held/)
    expect(report.cycles.inject.total).toBe(cycles)
    // Per cycle: the walk's writes with the clock, the views before with the read-back, the
    // transaction, the views after with the next walk's reads; plus a batch of its own on the first
    // cycle and after each stop check, and the scenario's own reads. One batch more a cycle was 5.3.
    expect(perCycle).toBeGreaterThanOrEqual(4)
    expect(perCycle).toBeLessThan(4.8)
    expect(await read()).toEqual(start)
  }, 120_000)

  it('a walk of something that is not a Chainlink-style feed is refused: at load where its ABI is reachable, else before anything moves', () => {
    const text = (target: string) => `name: walk-a-pair
hypothesis: refused.
protocol: reference
inject:
  faults: []
  steps:
    - stress: { cycles: 2, walk: { feed: { target: ${target}, stepBps: 100, maxBps: 500 } } }
`
    // The embedded pair's ABI is reachable: no latestRoundData(), exit 2 at load naming the field.
    expect(() => loadText(text('pair'), 'walk-a-pair.yaml')).toThrowError(
      /walk-a-pair\.yaml.*`inject\.steps\[0\]\.stress\.walk\.feed\.target` `pair` has no `latestRoundData\(\)` in its ABI \(the embedded .*\): a stress walk moves a Chainlink-style feed's answer\. For a V2 pair use `walk\.pair`/,
    )
    // The feed itself loads.
    expect(() => loadText(text('feed'), 'walk-a-feed.yaml')).not.toThrow()
  })

  it('…and a bare address that answers no latestRoundData() ends the run with that reason, the feed untouched', async () => {
    await fork.reset()
    const pair = fork.book.pair as string
    const scenario = loadText(
      `name: walk-an-address
hypothesis: refused at run time.
protocol: reference
inject:
  faults: []
  steps:
    - stress: { cycles: 2, walk: { feed: { target: "${pair}", stepBps: 100, maxBps: 500 } } }
`,
      'walk-an-address.yaml',
    )
    const report = await runScenario(scenario, fork, { seed: 3, replay: 'test' }).catch((e: unknown) => e)
    const message = report instanceof Error ? (report as { shortMessage?: string }).shortMessage ?? report.message : `${(report as { verdict: string }).verdict}: ${(report as { reason: string }).reason}`
    expect(message).toMatch(/`inject\.steps\[0\]\.stress\.walk\.feed\.target` `0x[0-9a-fA-F]{40}` \(0x[0-9a-fA-F]{40}\) does not answer `latestRoundData\(\)`/)
  }, 60_000)
})
