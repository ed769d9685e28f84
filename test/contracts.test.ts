// End-to-end check of the reference protocol on a real Anvil: deploy, run keeper cycles, put the
// SelectorShim in front of PerpDex, and trip the vault's oracle guard.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import * as fs from 'node:fs'
import { createRequire } from 'node:module'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  type Abi,
  type Address,
  type Hex,
  type TransactionReceipt,
  BaseError,
  ContractFunctionRevertedError,
  createPublicClient,
  createTestClient,
  createWalletClient,
  encodeAbiParameters,
  http,
  keccak256,
  pad,
  parseEther,
  parseEventLogs,
  stringToHex,
  toFunctionSelector,
  toHex,
} from 'viem'
import { foundry } from 'viem/chains'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

type Artifact = { abi: Abi; bytecode: Hex; deployedBytecode: Hex }
type Artifacts = { solcVersion: string; contracts: Record<string, Artifact>; variants: Record<string, Artifact> }
type Name = 'MockERC20' | 'V2Pair' | 'ChainlinkFeed' | 'TwapOracle' | 'FlashLender' | 'PerpDex' | 'ReferenceVault'

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..')
const E18 = 10n ** 18n

// Slot formulas, mirrored from the NatSpec at the top of contracts/SelectorShim.sol.
const IMPL_SLOT = toHex(BigInt(keccak256(stringToHex('forkchaos.shim.impl'))) - 1n, { size: 32 })
const ruleSlot = (signature: string): bigint =>
  BigInt(
    keccak256(
      encodeAbiParameters([{ type: 'bytes4' }, { type: 'string' }], [toFunctionSelector(signature), 'forkchaos.shim.rule']),
    ),
  )
const word = (value: bigint): Hex => toHex(value, { size: 32 })

let artifacts: Artifacts
let anvil: ChildProcess | undefined
let url: string

/** Spawns the real Anvil binary on a kernel-chosen port and reads the port from its banner. */
async function startAnvil(): Promise<string> {
  const require = createRequire(import.meta.url)
  const dir = path.dirname(require.resolve('@foundry-rs/anvil-linux-amd64/package.json'))
  const proc = spawn(path.join(dir, 'bin', 'anvil'), ['--port', '0', '--host', '127.0.0.1'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  anvil = proc
  return new Promise((resolve, reject) => {
    let banner = ''
    const timer = setTimeout(() => reject(new Error(`Anvil did not start:\n${banner}`)), 10_000)
    const onData = (chunk: Buffer) => {
      if (!banner.includes('Listening on')) banner += chunk.toString()
      const match = /Listening on (127\.0\.0\.1:\d+)/.exec(banner)
      if (match) {
        clearTimeout(timer)
        resolve(`http://${match[1]}`)
      }
    }
    // Both pipes stay drained for the whole run, or Anvil would block on a full pipe.
    proc.stdout?.on('data', onData)
    proc.stderr?.on('data', onData)
    proc.on('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`Anvil exited with ${code}:\n${banner}`))
    })
  })
}

describe('reference protocol on Anvil', () => {
  let pub: ReturnType<typeof createPublicClient>
  let cheat: ReturnType<typeof createTestClient>
  let wallet: ReturnType<typeof createWalletClient>
  let deployer: Address
  let depositor: Address
  const at: Record<'usdx' | 'weth' | 'pair' | 'feed' | 'twap' | 'lender' | 'perp' | 'vault', Address> = {} as never

  const deploy = async (name: Name, args: readonly unknown[] = []): Promise<Address> => {
    const { abi, bytecode } = artifacts.contracts[name]!
    // An explicit gas limit, as in send(): a constructor that reads block.timestamp (TwapOracle)
    // can need more gas in the next second than its estimate took (seen with both cores busy).
    const hash = await wallet.deployContract({ abi, bytecode, args, account: deployer, chain: foundry, gas: 10_000_000n })
    const receipt = await pub.waitForTransactionReceipt({ hash })
    expect(receipt.status, `deploy ${name}`).toBe('success')
    expect((await pub.getCode({ address: receipt.contractAddress! }))?.length ?? 0, `code of ${name}`).toBeGreaterThan(2)
    return receipt.contractAddress!
  }
  const send = async (address: Address, name: Name, functionName: string, args: readonly unknown[] = [], account = deployer) => {
    const abi = artifacts.contracts[name]!.abi
    // An explicit gas limit: an estimate taken in one second can fall short in the next, when
    // the pair's first update of a new second also writes its price accumulators.
    const hash = await wallet.writeContract({ address, abi, functionName, args, account, chain: foundry, gas: 3_000_000n })
    const receipt = await pub.waitForTransactionReceipt({ hash })
    if (receipt.status !== 'success') {
      // Say why: replay the call on the state before its block (a panic code or a reason).
      const why = await pub
        .simulateContract({ address, abi, functionName, args, account, blockNumber: receipt.blockNumber - 1n })
        .then(() => 'no revert on replay')
        .catch((e: Error) => e.message.split('\n').slice(0, 3).join(' | '))
      expect.fail(`${name}.${functionName} reverted in block ${receipt.blockNumber} (gas used ${receipt.gasUsed}): ${why}`)
    }
    return receipt
  }
  const read = async <T = bigint>(address: Address, name: Name, functionName: string, args: readonly unknown[] = []) =>
    (await pub.readContract({ address, abi: artifacts.contracts[name]!.abi, functionName, args })) as T
  /** The revert reason of a call that must fail (simulated: a reverting tx would not be mined anyway). */
  const revertReason = async (address: Address, name: Name, functionName: string, account = deployer) => {
    try {
      await pub.simulateContract({ address, abi: artifacts.contracts[name]!.abi, functionName, args: [], account })
    } catch (err) {
      const reverted = err instanceof BaseError ? err.walk((e) => e instanceof ContractFunctionRevertedError) : null
      if (reverted instanceof ContractFunctionRevertedError) return reverted.reason
      throw err
    }
    throw new Error(`${name}.${functionName} did not revert`)
  }
  const vaultEvents = (receipt: TransactionReceipt) =>
    parseEventLogs({
      abi: artifacts.contracts.ReferenceVault!.abi,
      logs: receipt.logs.filter((l) => l.address.toLowerCase() === at.vault.toLowerCase()),
    }) as unknown as { eventName: string; args: Record<string, bigint | string | number> }[]
  const cycle = async () => {
    const receipt = await send(at.vault, 'ReferenceVault', 'cycle')
    const events = vaultEvents(receipt)
    const bounty = events.find((e) => e.eventName === 'BountyPaid')!
    expect(bounty.args.amount).toBeGreaterThan(0n)
    expect(bounty.args.amount).toBeLessThanOrEqual(bounty.args.cap as bigint)
    return events
  }
  /** Arbitrageurs pull the pool back to 3000 USDX/WETH; modelled as a WETH donation plus sync(). */
  const arbitrage = async () => {
    const [reserve0, reserve1] = await read<readonly [bigint, bigint, number]>(at.pair, 'V2Pair', 'getReserves')
    const wanted0 = reserve1 / 3000n
    if (wanted0 <= reserve0) return
    await send(at.weth, 'MockERC20', 'mint', [at.pair, wanted0 - reserve0])
    await send(at.pair, 'V2Pair', 'sync')
  }
  const expectSharePriceNearOne = async () => {
    const price = await read(at.vault, 'ReferenceVault', 'sharePrice')
    const drift = price > E18 ? price - E18 : E18 - price
    expect(drift, `sharePrice ${price}`).toBeLessThanOrEqual((E18 * 5n) / 1000n)
  }

  beforeAll(async () => {
    // The build skips itself when nothing changed, so this is cheap and the artifact is never stale.
    execFileSync(process.execPath, [path.join(root, 'scripts', 'build-contracts.mjs')], { stdio: 'pipe' })
    artifacts = JSON.parse(fs.readFileSync(path.join(root, 'dist', 'contracts', 'artifacts.json'), 'utf8'))
    url = await startAnvil()
    const transport = http(url)
    pub = createPublicClient({ chain: foundry, transport, pollingInterval: 25 })
    cheat = createTestClient({ chain: foundry, mode: 'anvil', transport })
    wallet = createWalletClient({ chain: foundry, transport })
    ;[deployer, depositor] = (await wallet.getAddresses()) as [Address, Address]

    at.usdx = await deploy('MockERC20', ['USD X', 'USDX'])
    at.weth = await deploy('MockERC20', ['Wrapped Ether', 'WETH'])
    // token0 = WETH, token1 = USDX, so price0 is WETH priced in USDX.
    at.pair = await deploy('V2Pair', [at.weth, at.usdx])
    await send(at.weth, 'MockERC20', 'mint', [at.pair, parseEther('1000')])
    await send(at.usdx, 'MockERC20', 'mint', [at.pair, parseEther('3000000')])
    await send(at.pair, 'V2Pair', 'mint', [deployer])
    at.feed = await deploy('ChainlinkFeed', ['WETH / USD', 3000n * 10n ** 8n])
    at.twap = await deploy('TwapOracle', [at.pair, 1800n])
    at.lender = await deploy('FlashLender')
    await send(at.usdx, 'MockERC20', 'mint', [at.lender, parseEther('500000')])
    at.perp = await deploy('PerpDex', [at.usdx, 12n * 3600n])
    at.vault = await deploy('ReferenceVault', [at.usdx, at.weth, at.pair, at.feed, at.twap, at.lender, at.perp])

    await send(at.usdx, 'MockERC20', 'mint', [depositor, parseEther('2000000')])
    await send(at.usdx, 'MockERC20', 'approve', [at.vault, parseEther('2000000')], depositor)
    await send(at.vault, 'ReferenceVault', 'deposit', [parseEther('1000000')], depositor)
  }, 60_000)

  afterAll(() => {
    anvil?.kill('SIGKILL')
  })

  it('builds one guard-removed variant per guard, and one per planted bug', () => {
    const base = artifacts.contracts.ReferenceVault!.deployedBytecode
    const variants = Object.keys(artifacts.variants).sort()
    const bugs = ['bounty-units', 'deviation-units', 'stale-units', 'impact-units', 'one-sided-feed-guard', 'spike-cap-threshold', 'bounty-rounding', 'books-not-cleared', 'withdraw-paused', 'full-exit-off-by-one', 'trusts-close-return', 'trusts-open-id', 'fixture-setup-reverts']
    const guards = ['bounty', 'close', 'cooldown', 'flash', 'oracle'].map((g) => `no-${g}-guard`)
    expect(variants).toEqual([...bugs, ...guards].map((v) => `ReferenceVault.${v}`).sort())
    // Every build is its own code, none the reference's.
    const codes = new Set(variants.map((v) => artifacts.variants[v]!.deployedBytecode))
    expect(codes.size).toBe(18)
    expect(codes.has(base)).toBe(false)
  })

  it('cycles: opens a trade, tops up ALP, flash-rebalances and pays a capped bounty', async () => {
    for (let i = 0; i < 3; i++) {
      const names = (await cycle()).map((e) => e.eventName)
      if (i === 0) expect(names).toContain('FlashRebalanced')
      expect(names).toContain('Cycled')
      await expectSharePriceNearOne()
      await arbitrage()
    }
    const tradeId = await read(at.vault, 'ReferenceVault', 'tradeId')
    const collateral = await read(at.vault, 'ReferenceVault', 'tradeCollateral')
    const alpShares = await read(at.vault, 'ReferenceVault', 'alpShares')
    expect(tradeId).toBeGreaterThan(0n)
    expect(collateral).toBeGreaterThan(parseEther('290000'))
    expect(await read(at.perp, 'PerpDex', 'tradeCollateral', [tradeId])).toBe(collateral)
    expect(alpShares).toBeGreaterThan(0n)
    expect(await read(at.perp, 'PerpDex', 'alpBalanceOf', [at.vault])).toBe(alpShares)
    expect(await read<number>(at.vault, 'ReferenceVault', 'riskMode')).toBe(0)
  })

  it('SelectorShim: fails closeTrade, passes views through, and comes off cleanly', async () => {
    const original = (await pub.getCode({ address: at.perp }))!
    const impl: Address = '0x00000000000000000000000000000000f0c0c0a5'
    const rule = ruleSlot('closeTrade(uint256)')
    const reasonSlot = word(rule + 1n)
    await cheat.setCode({ address: impl, bytecode: original })
    await cheat.setCode({ address: at.perp, bytecode: artifacts.contracts.SelectorShim!.deployedBytecode })
    await cheat.setStorageAt({ address: at.perp, index: IMPL_SLOT, value: pad(impl) })
    await cheat.setStorageAt({ address: at.perp, index: word(rule), value: word(1n) })
    await cheat.setStorageAt({ address: at.perp, index: reasonSlot, value: stringToHex('forkchaos: blocked', { size: 32 }) })

    // (a) the guarded vault refuses to write the trade off: the whole cycle reverts with the reason.
    expect(await revertReason(at.vault, 'ReferenceVault', 'cycle')).toBe('forkchaos: blocked')
    // (b) other selectors, views included (STATICCALL), reach the original code by delegatecall.
    const tradeId = await read(at.vault, 'ReferenceVault', 'tradeId')
    expect(await read(at.perp, 'PerpDex', 'tradeCollateral', [tradeId])).toBe(
      await read(at.vault, 'ReferenceVault', 'tradeCollateral'),
    )
    expect(await read(at.perp, 'PerpDex', 'alpBalanceOf', [at.vault])).toBe(
      await read(at.vault, 'ReferenceVault', 'alpShares'),
    )

    // (c) restore the code and clear the shim's slots: the next cycle rolls the trade again.
    await cheat.setCode({ address: at.perp, bytecode: original })
    await cheat.setCode({ address: impl, bytecode: '0x' })
    for (const index of [IMPL_SLOT, word(rule), reasonSlot]) await cheat.setStorageAt({ address: at.perp, index, value: word(0n) })
    await cycle()
    expect(await read(at.vault, 'ReferenceVault', 'tradeId')).toBeGreaterThan(tradeId)
    await expectSharePriceNearOne()
    await arbitrage()
  })

  it('oracle guard: a feed 5% below the TWAP switches to ONLY_UNWIND and pauses deposits', async () => {
    await send(at.feed, 'ChainlinkFeed', 'setAnswer', [2850n * 10n ** 8n])
    const events = await cycle()
    const change = events.find((e) => e.eventName === 'RiskModeChanged')
    expect(change?.args).toMatchObject({ from: 0, to: 1, why: 'feed deviates from twap' })
    // The ALP was topped up a moment ago, so its cooldown defers the burn rather than writing it off.
    expect(events.find((e) => e.eventName === 'UnwindDeferred')?.args.reason).toBe('alp cooldown active')
    expect(await read<number>(at.vault, 'ReferenceVault', 'riskMode')).toBe(1)
    expect(await read(at.vault, 'ReferenceVault', 'tradeId')).toBe(0n)
    expect(await read(at.vault, 'ReferenceVault', 'alpShares')).toBeGreaterThan(0n)
    const abi = artifacts.contracts.ReferenceVault!.abi
    await expect(
      pub.simulateContract({ address: at.vault, abi, functionName: 'deposit', args: [parseEther('1')], account: depositor }),
    ).rejects.toSatisfy((err) => {
      const reverted = (err as BaseError).walk((e) => e instanceof ContractFunctionRevertedError)
      return (reverted as ContractFunctionRevertedError | null)?.reason === 'Vault: deposits paused'
    })
    // Withdrawals stay open while unwinding.
    const shares = await read(at.vault, 'ReferenceVault', 'balanceOf', [depositor])
    await send(at.vault, 'ReferenceVault', 'withdraw', [shares / 100n], depositor)
  })
})
