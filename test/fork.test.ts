import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import type { Hex } from 'viem'
import { afterAll, describe, expect, it } from 'vitest'
import { runSuite } from '../src/scenario/suite.js'
import { startAnvil } from '../src/targets/anvil.js'
import { startFork } from '../src/targets/fork.js'
import { startUpstream } from '../src/targets/embedded.js'
import { calldata } from '../src/chain/views.js'
import { sendTransaction } from '../src/targets/chain.js'
import { RpcError } from '../src/targets/rpc.js'

const stops: (() => Promise<void>)[] = []
afterAll(async () => {
  for (const stop of stops.reverse()) await stop()
})

describe('fork targets', () => {
  it('parallel forks of one upstream never collide: distinct ports, independent state', async () => {
    const upstream = await startUpstream()
    stops.push(() => upstream.instance.stop())
    const forks = await Promise.all(
      [1, 2, 3].map((i) => startAnvil({ label: `parallel-${i}`, forkUrl: upstream.instance.url, forkBlockNumber: upstream.headBlock })),
    )
    for (const f of forks) stops.push(() => f.stop())
    expect(new Set(forks.map((f) => f.port)).size).toBe(3)
    await forks[0]?.rpc.request('anvil_mine', ['0x5'])
    const heights = await Promise.all(forks.map((f) => f.rpc.request<Hex>('eth_blockNumber')))
    expect(BigInt(heights[0] as Hex)).toBe(upstream.headBlock + 5n)
    expect(BigInt(heights[1] as Hex)).toBe(upstream.headBlock)
  })

  it('warm: the fork holds the upstream state before its snapshot, so after a reset its reads need no upstream; unwarmed they do', async () => {
    const fns = ['sharePrice()', 'totalAssets()', 'alpShares()', 'bountyCap()']
    const views = async (fork: Awaited<ReturnType<typeof startFork>>) => {
      await fork.reset()
      return fork.anvil.rpc.batch(fns.map((fn) => ({ method: 'eth_call', params: [{ to: fork.book.vault, data: calldata(fn) }, 'latest'] })))
    }
    const warm = await startFork({ kind: 'embedded' }, { warm: true })
    stops.push(() => warm.stop())
    const cold = await startFork({ kind: 'embedded' })
    stops.push(() => cold.stop())
    // A cycle after the snapshot: what it fetched goes with the reset.
    const cycle = (fork: typeof warm) => sendTransaction(fork.anvil.rpc, { from: fork.accounts.keeper as Hex, to: fork.book.vault as Hex, data: calldata('cycle()') })
    expect((await cycle(warm)).status).toBe('0x1')
    expect((await cycle(cold)).status).toBe('0x1')
    const before = await views(warm)
    expect(before.every((v) => typeof v === 'string' && v.length === 66)).toBe(true)
    // (Each fork has an upstream of its own, deployed at another second: other values.)
    const coldBefore = await views(cold)
    expect(coldBefore.every((v) => typeof v === 'string' && v.length === 66)).toBe(true)
    // Each fork's upstream gone: what a reset fork must still fetch now fails.
    await warm.upstream?.instance.stop()
    await cold.upstream?.instance.stop()
    expect(await views(warm)).toEqual(before)
    const unwarmed = await views(cold)
    expect(unwarmed.some((v) => v instanceof RpcError && /Fork Error|connect/i.test(v.message))).toBe(true)
  }, 60_000)

  it("reset puts back the next block's base fee: a gas spike and the blocks after it do not carry into the next scenario", async () => {
    const fork = await startFork({ kind: 'embedded' })
    stops.push(() => fork.stop())
    const rpc = fork.anvil.rpc
    const nextFee = async () => {
      await rpc.request('anvil_mine', ['0x1'])
      return BigInt((await rpc.request<{ baseFeePerGas: Hex }>('eth_getBlockByNumber', ['latest', false])).baseFeePerGas)
    }
    const clean = await nextFee()
    await fork.reset()
    expect(await nextFee()).toBe(clean)
    await fork.reset()
    // A 300 gwei spike, mined three times: Anvil's own revert leaves the fee near 200 gwei.
    await rpc.request('anvil_setNextBlockBaseFeePerGas', [`0x${(300n * 10n ** 9n).toString(16)}`])
    await rpc.request('anvil_mine', ['0x3'])
    await fork.reset()
    expect(clean).toBeLessThan(10n ** 9n)
    expect(await nextFee()).toBe(clean)
  }, 60_000)

  it('a fork of a running upstream (search --workers) leaves it running when stopped', async () => {
    const first = await startFork({ kind: 'embedded' })
    stops.push(() => first.stop())
    const second = await startFork({ kind: 'embedded' }, { upstream: first.upstream })
    expect(second.upstream).toBe(first.upstream)
    expect(second.book.vault).toBe(first.book.vault)
    await second.stop()
    expect(second.anvil.exitInfo()).not.toBeNull()
    expect(first.upstream?.instance.exitInfo()).toBeNull()
    expect(BigInt(await first.anvil.rpc.request<Hex>('eth_blockNumber'))).toBe(first.upstream?.headBlock)
  }, 60_000)

  it('forks a state dump: the reference vault is there with its code and storage', async () => {
    const upstream = await startUpstream()
    stops.push(() => upstream.instance.stop())
    const dump = await upstream.instance.rpc.request<Hex>('anvil_dumpState')
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'forkchaos-state-')), 'state.json')
    // anvil_dumpState answers hex-encoded gzip JSON; --load-state reads the same JSON.
    const { gunzipSync } = await import('node:zlib')
    fs.writeFileSync(file, gunzipSync(Buffer.from(dump.slice(2), 'hex')))
    const fork = await startFork({ kind: 'state', path: file })
    stops.push(() => fork.stop())
    const code = await fork.anvil.rpc.request<Hex>('eth_getCode', [upstream.book.vault, 'latest'])
    expect(code.length).toBeGreaterThan(1_000)
    const supply = await fork.anvil.rpc.request<Hex>('eth_call', [{ to: upstream.book.vault, data: '0x18160ddd' }, 'latest'])
    expect(BigInt(supply)).toBeGreaterThan(10n ** 24n)
  })
})

describe('TypeScript steps and checks', () => {
  it('a TS step (viem) and a TS check (ethers) run; the check holds when the step did its work', async () => {
    const report = await runSuite({ paths: ['test/fixtures/ts-modules.yaml'], seed: 1, source: { kind: 'embedded' }, replay: 'test' })
    expect(report.scenarios[0]?.verdict).toBe('held')
    expect(report.scenarios[0]?.checks.find((c) => c.name === 'balance-set')?.observed).toBe('trader balance 12345 in inject')
  })

  it('…and fails when the step did not', async () => {
    process.env.FIXTURE_BALANCE = '1'
    try {
      const report = await runSuite({ paths: ['test/fixtures/ts-modules.yaml'], seed: 1, source: { kind: 'embedded' }, replay: 'test' })
      expect(report.scenarios[0]?.verdict).toBe('failed')
      expect(report.scenarios[0]?.reason).toMatch(/balance-set/)
    } finally {
      delete process.env.FIXTURE_BALANCE
    }
  })
})
