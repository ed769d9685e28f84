import { type Address, type Hex, numberToHex, parseGwei } from 'viem'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { readUint, revertReason } from '../src/checks/read.js'
import { applyFault, type FaultContext } from '../src/Fault.js'
import { findStorageField, readField, writeField } from '../src/chain/slots.js'
import { faults } from '../src/faults/registry.js'
import { calldata } from '../src/chain/views.js'
import { blockNumber, getCode, getStorageAt, sendTransaction, setStorageAt } from '../src/targets/chain.js'
import { type Fork, startFork } from '../src/targets/fork.js'
import { createPrng } from '../src/util/prng.js'

let fork: Fork
let ctx: FaultContext
const none = { steps: [], viewsBefore: {}, viewsAfter: {} }

beforeAll(async () => {
  fork = await startFork({ kind: 'embedded' })
  const book = fork.book as Record<string, Address>
  ctx = { rpc: fork.anvil.rpc, prng: createPrng(1), resolve: (n) => book[n] ?? (n as Address), now: () => 0 }
})
afterAll(() => fork?.stop())
beforeEach(() => fork.reset())

const u = (to: string, fn: string, args: unknown[] = []) => readUint(fork.anvil.rpc, ctx.resolve(to, 'x'), fn, args)
const cycle = () => sendTransaction(fork.anvil.rpc, { from: fork.accounts.keeper as Address, to: ctx.resolve('vault', 'x'), data: calldata('cycle()') })

describe('slot discovery', () => {
  it('finds packed V2 reserves and a mapping balance without a hard-coded layout', async () => {
    const pair = ctx.resolve('pair', 'x')
    const r0 = await findStorageField(fork.anvil.rpc, { to: pair, data: calldata('getReserves()'), outputWord: 0, label: 'r0' })
    const r1 = await findStorageField(fork.anvil.rpc, { to: pair, data: calldata('getReserves()'), outputWord: 1, label: 'r1' })
    expect(r0.slot).toBe(r1.slot)
    expect(r0.offsetBits).toBe(0)
    expect(r1.offsetBits).toBe(112)
    const bal = await findStorageField(fork.anvil.rpc, { to: ctx.resolve('asset', 'x'), data: calldata('balanceOf(address)', [ctx.resolve('lender', 'x')]), outputWord: 0, label: 'bal' })
    expect(bal.offsetBits).toBe(0)
    expect(bal.widthBits).toBe(256)
  })

  it('derives packed widths by probing, not from zero bytes: reserve1 and the timestamp with zero low bytes', async () => {
    const pair = ctx.resolve('pair', 'x')
    const getReserves = calldata('getReserves()')
    const r0 = await findStorageField(fork.anvil.rpc, { to: pair, data: getReserves, outputWord: 0, label: 'r0' })
    const raw = BigInt(await getStorageAt(fork.anvil.rpc, pair, r0.slot))
    const mask = (bits: number) => (1n << BigInt(bits)) - 1n
    const reserve0 = raw & mask(112)
    // reserve1's low 16 bits and the timestamp's low 8 bits zero: the neighbours of each field
    // hold zeros exactly where a wider field would reach.
    const reserve1 = (((raw >> 112n) & mask(112)) >> 16n << 16n) | (1n << 100n)
    const timestamp = ((raw >> 224n) >> 8n << 8n) | (1n << 24n)
    await setStorageAt(fork.anvil.rpc, pair, r0.slot, numberToHex(reserve0 | (reserve1 << 112n) | (timestamp << 224n), { size: 32 }))
    const again0 = await findStorageField(fork.anvil.rpc, { to: pair, data: getReserves, outputWord: 0, label: 'r0' })
    const again1 = await findStorageField(fork.anvil.rpc, { to: pair, data: getReserves, outputWord: 1, label: 'r1' })
    const ts = await findStorageField(fork.anvil.rpc, { to: pair, data: getReserves, outputWord: 2, label: 'ts' })
    expect([again0.offsetBits, again0.widthBits]).toEqual([0, 112])
    expect([again1.offsetBits, again1.widthBits]).toEqual([112, 112])
    expect([ts.offsetBits, ts.widthBits]).toEqual([224, 32])
    // A write of the widest value reserve0 can hold leaves reserve1 and the timestamp as they were.
    await writeField(fork.anvil.rpc, again0, mask(112))
    const [a, b, c] = [await readField(fork.anvil.rpc, again0), await readField(fork.anvil.rpc, again1), await readField(fork.anvil.rpc, ts)]
    expect([a, b, c]).toEqual([mask(112), reserve1, timestamp])
  })
})

describe('fault primitives: apply takes effect, detect sees it, revert restores', () => {
  it('oracle.divergence on a feed moves the answer, ages updatedAt, and reverts', async () => {
    const feed = 'latestRoundData() returns (uint80,int256,uint256,uint256,uint80)'
    const before = await u('feed', feed)
    const answer = await readUint(fork.anvil.rpc, ctx.resolve('feed', 'x'), 'latestAnswer() returns (int256)')
    const f = await applyFault(faults['oracle.divergence'], ctx, { target: 'feed', params: { bps: 500, direction: 'down', staleS: 7200 } }, 't')
    expect(await readUint(fork.anvil.rpc, ctx.resolve('feed', 'x'), 'latestAnswer() returns (int256)')).toBe((answer * 9500n) / 10_000n)
    const receipt = await cycle()
    const evidence = await f.detect({ ...none, steps: [{ label: 'c', ok: receipt.status === '0x1', signals: ['RiskModeChanged'] }] })
    expect(evidence.took).toMatch(/answer .* → .*updatedAt aged/)
    expect(evidence.seen).toMatch(/RiskModeChanged/)
    expect(await u('vault', 'riskMode() returns (uint8)')).toBe(1n)
    await f.revert()
    expect(await readUint(fork.anvil.rpc, ctx.resolve('feed', 'x'), 'latestAnswer() returns (int256)')).toBe(answer)
    expect(before).toBeGreaterThan(0n)
  })

  it('oracle.divergence on a pair moves spot and keeps reserves and balances consistent', async () => {
    const pair = ctx.resolve('pair', 'x')
    const reserve1 = async () => BigInt(`0x${(await fork.anvil.rpc.request<Hex>('eth_call', [{ to: pair, data: calldata('getReserves()') }, 'latest'])).slice(66, 130)}`)
    const balance1 = () => u('asset', 'balanceOf(address) returns (uint256)', [pair])
    const [r1, b1] = [await reserve1(), await balance1()]
    const f = await applyFault(faults['oracle.divergence'], ctx, { target: 'pair', params: { bps: 300, direction: 'up' } }, 't')
    const r1Now = await reserve1()
    expect(r1Now).toBe((r1 * 10_300n) / 10_000n)
    expect((await balance1()) - b1).toBe(r1Now - r1)
    await f.revert()
    expect([await reserve1(), await balance1()]).toEqual([r1, b1])
  })

  it('liquidity.shortfall cuts a lender balance (read back through balanceOf) and puts it back', async () => {
    const lender = ctx.resolve('lender', 'x')
    const before = await u('lender', 'maxFlashLoan(address) returns (uint256)', [ctx.resolve('asset', 'x')])
    const f = await applyFault(faults['liquidity.shortfall'], ctx, { target: 'lender', params: { cutBps: 7500, token: 'asset' } }, 't')
    expect(await u('lender', 'maxFlashLoan(address) returns (uint256)', [ctx.resolve('asset', 'x')])).toBe(before - (before * 7500n) / 10_000n)
    expect((await f.detect(none)).took).toContain(lender)
    await f.revert()
    expect(await u('lender', 'maxFlashLoan(address) returns (uint256)', [ctx.resolve('asset', 'x')])).toBe(before)
  })

  it('liquidity.shortfall without a token thins a pair at the same price', async () => {
    const pair = ctx.resolve('pair', 'x')
    const read = async () => {
      const out = await fork.anvil.rpc.request<Hex>('eth_call', [{ to: pair, data: calldata('getReserves()') }, 'latest'])
      return [BigInt(`0x${out.slice(2, 66)}`), BigInt(`0x${out.slice(66, 130)}`)] as const
    }
    const [a, b] = await read()
    const f = await applyFault(faults['liquidity.shortfall'], ctx, { target: 'pair', params: { cutBps: 9000 } }, 't')
    const [c, d] = await read()
    expect(c).toBe(a - (a * 9000n) / 10_000n)
    expect(d).toBe(b - (b * 9000n) / 10_000n)
    // Same price within rounding.
    expect((d * 10n ** 18n) / c / 10n ** 12n).toBe((b * 10n ** 18n) / a / 10n ** 12n)
    await f.revert()
    expect(await read()).toEqual([a, b])
  })

  it('dependency.revert faults one selector; other functions and storage keep working; revert restores the code', async () => {
    const perp = ctx.resolve('perp', 'x')
    const code = await getCode(fork.anvil.rpc, perp)
    const tradeId = await u('vault', 'tradeId() returns (uint256)')
    const collateral = await u('perp', 'tradeCollateral(uint256) returns (uint256)', [tradeId])
    const f = await applyFault(faults['dependency.revert'], ctx, { target: 'perp', params: { selectors: ['closeTrade(uint256)'], reason: 'blocked by test' } }, 't')
    // A view through the shim delegates to the original code on the original storage.
    expect(await u('perp', 'tradeCollateral(uint256) returns (uint256)', [tradeId])).toBe(collateral)
    expect(await revertReason(fork.anvil.rpc, { from: ctx.resolve('vault', 'x'), to: perp, data: calldata('closeTrade(uint256)', [tradeId]) })).toBe('blocked by test')
    const receipt = await cycle()
    expect(receipt.status).toBe('0x0')
    expect((await f.detect({ ...none, steps: [{ label: 'cycle', ok: false, reason: 'blocked by test' }] })).took).toMatch(/shim in place/)
    await f.revert()
    expect(await getCode(fork.anvil.rpc, perp)).toBe(code)
    expect((await cycle()).status).toBe('0x1')
  })

  it('dependency.garbage returns seeded garbage and dependency.gas burns gas', async () => {
    const perp = ctx.resolve('perp', 'x')
    const g = await applyFault(faults['dependency.garbage'], ctx, { target: 'perp', params: { selectors: ['cooldownEnd(address)'], words: 1 } }, 't')
    const out = await fork.anvil.rpc.request<Hex>('eth_call', [{ to: perp, data: calldata('cooldownEnd(address)', [ctx.resolve('vault', 'x')]) }, 'latest'])
    expect(out.length).toBe(66)
    expect(BigInt(out)).toBeGreaterThan(10n ** 30n)
    await g.revert()
    const gasBefore = BigInt(await fork.anvil.rpc.request<Hex>('eth_estimateGas', [{ from: fork.accounts.keeper, to: ctx.resolve('vault', 'x'), data: calldata('cycle()') }]))
    const h = await applyFault(faults['dependency.gas'], ctx, { target: 'perp', params: { selectors: ['openTrade(uint256)'], gas: 500_000 } }, 't')
    const gasDuring = BigInt(await fork.anvil.rpc.request<Hex>('eth_estimateGas', [{ from: fork.accounts.keeper, to: ctx.resolve('vault', 'x'), data: calldata('cycle()') }]))
    expect(gasDuring - gasBefore).toBeGreaterThan(400_000n)
    await h.revert()
  })

  it('gas.spike holds the base fee across blocks while active and reverts it', async () => {
    const f = await applyFault(faults['gas.spike'], ctx, { params: { baseFeeGwei: 500 } }, 't')
    await f.beforeStep()
    await cycle()
    await f.beforeStep()
    const receipt = await cycle()
    expect(BigInt(receipt.effectiveGasPrice)).toBeGreaterThanOrEqual(parseGwei('500'))
    await f.revert()
    const after = await cycle()
    expect(BigInt(after.effectiveGasPrice)).toBeLessThan(parseGwei('10'))
  })

  it('time.warp moves block time forward', async () => {
    const t = async () => BigInt((await fork.anvil.rpc.request<{ timestamp: Hex }>('eth_getBlockByNumber', ['latest', false])).timestamp)
    const before = await t()
    const f = await applyFault(faults['time.warp'], ctx, { params: { seconds: 86_400 } }, 't')
    expect((await t()) - before).toBeGreaterThanOrEqual(86_400n)
    expect((await f.detect(none)).took).toMatch(/\+86400 s|\+8640\d s/)
  })

  it('chain.reorg replaces blocks and says what happened to the orphaned transactions', async () => {
    for (let i = 0; i < 4; i++) await cycle()
    const height = await blockNumber(fork.anvil.rpc)
    const oldHash = (await fork.anvil.rpc.request<{ hash: Hex }>('eth_getBlockByNumber', [`0x${height.toString(16)}`, false])).hash
    const tradeIdBefore = await u('vault', 'tradeId() returns (uint256)')
    const f = await applyFault(faults['chain.reorg'], ctx, { params: { depth: 2 } }, 't')
    const newHash = (await fork.anvil.rpc.request<{ hash: Hex }>('eth_getBlockByNumber', [`0x${height.toString(16)}`, false])).hash
    expect(newHash).not.toBe(oldHash)
    expect(await u('vault', 'tradeId() returns (uint256)')).toBeLessThan(tradeIdBefore)
    expect((await f.detect(none)).took).toMatch(/2 orphaned tx dropped/)
  })

  it('invalid params are refused before anything is applied', async () => {
    const perp = ctx.resolve('perp', 'x')
    const code = await getCode(fork.anvil.rpc, perp)
    await expect(applyFault(faults['dependency.revert'], ctx, { target: 'perp', params: { selectors: ['not a selector'] } }, 'file.yaml: inject.faults[0]')).rejects.toThrow(
      '`selectors[0]` must be a signature like "closeTrade(uint256)" or 4 bytes like "0x12345678". Got `"not a selector"`.\n\nWhere: file.yaml: inject.faults[0]',
    )
    await expect(applyFault(faults['liquidity.shortfall'], ctx, { target: 'lender', params: { cutBps: 20_000 } }, 'w')).rejects.toThrow('`cutBps` must be at most 10000. Got `20000`.')
    // A selector the pattern admits but no signature parser reads: refused the same way, not a crash.
    await expect(applyFault(faults['dependency.revert'], ctx, { target: 'perp', params: { selectors: ['f(()'] } }, 'w')).rejects.toThrow(
      '`selectors[0]` is not a function signature that can be read (unbalanced parentheses?). Got `"f(()"`.',
    )
    expect(await getCode(fork.anvil.rpc, perp)).toBe(code)
    // Params parsed at load are used as they are: `parsed` wins over the raw `params`.
    const parsed = faults['dependency.revert'].parse({ selectors: ['closeTrade(uint256)'], reason: 'from parsed' }, 'w')
    const f = await applyFault(faults['dependency.revert'], ctx, { target: 'perp', params: { selectors: ['not a selector'] }, parsed }, 'w')
    expect((await f.detect(none)).took).toMatch(/^shim in place at .* for 0x/)
    await f.revert()
  })
})
