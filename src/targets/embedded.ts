import { type Address, encodeDeployData, getAddress, type Hex, parseEther } from 'viem'
import { artifact } from '../contracts.js'
import { InfraError, SetupRevertedError } from '../errors.js'
import { revertReason } from '../checks/read.js'
import { calldata } from '../chain/views.js'
import { createPrng } from '../util/prng.js'
import { type AnvilInstance, startAnvil } from './anvil.js'
import { increaseTime, mine, type Receipt, sendTransaction } from './chain.js'
import type { Rpc } from './rpc.js'

/** Anvil's well-known test accounts (mnemonic "test test … junk"): test-only, never real funds. */
export const devAccounts = {
  deployer: '0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266',
  keeper: '0x70997970C51812dc3A010C7d01b50e0d17dc79C8',
  depositor: '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC',
  trader: '0x90F79bf6EB2c4f870365E785982E1f101E93b906',
} as const satisfies Record<string, Address>

export type AddressBook = {
  asset: Address
  other: Address
  pair: Address
  feed: Address
  twap: Address
  lender: Address
  perp: Address
  vault: Address
}

export type Upstream = { instance: AnvilInstance; book: AddressBook; headBlock: bigint }

/** Options for the embedded chain. `vaultBuild` picks a guard-removed test build of the vault. */
export type UpstreamOptions = { vaultBuild?: string; historyBlocks?: number; logDir?: string }

/**
 * The embedded default: a local "upstream" chain that scenarios fork over real JSON-RPC,
 * exactly as they would fork a public chain. It holds the reference protocol (contracts/) and
 * a history of blocks: swaps, oracle updates, deposits and keeper cycles, one minute apart.
 * The history is deterministic (fixed seed), so every run forks the same chain.
 */
export async function startUpstream(options: UpstreamOptions = {}): Promise<Upstream> {
  // Start a day in the past so that the history ends near the wall clock.
  const timestampS = BigInt(Math.floor(Date.now() / 1000) - 86_400)
  const instance = await startAnvil({ label: 'upstream', timestampS, ...(options.logDir ? { logDir: options.logDir } : {}) })
  try {
    const book = await deployReference(instance.rpc, options.vaultBuild ?? 'ReferenceVault')
    await writeHistory(instance.rpc, book, options.historyBlocks ?? 40)
    const headBlock = BigInt(await instance.rpc.request<Hex>('eth_blockNumber'))
    return { instance, book, headBlock }
  } catch (error) {
    await instance.stop()
    throw error
  }
}

/** Each upstream's contract names by address, for a setup step's message (`vault.cycle()`). */
const contractNames = new WeakMap<Rpc, Record<Address, string>>()

async function send(rpc: Rpc, from: Address, to: Address, signature: string, args: readonly unknown[] = []): Promise<Receipt> {
  const data = calldata(signature, args)
  const receipt = await sendTransaction(rpc, { from, to, data })
  if (receipt.status !== '0x1') {
    // A reverted transaction leaves the state as it was: the same call at latest, at the price it
    // paid (the vault's bounty reads tx.gasprice), says why.
    const reason = (await revertReason(rpc, { from, to, data, gasPrice: receipt.effectiveGasPrice }).catch(() => undefined)) ?? 'no reason given'
    throw new SetupRevertedError(`${contractNames.get(rpc)?.[getAddress(to)] ?? to}.${signature}`, reason, { Block: Number(receipt.blockNumber), From: from })
  }
  return receipt
}

async function deploy(rpc: Rpc, name: string, args: readonly unknown[] = []): Promise<Address> {
  const { abi, bytecode } = artifact(name)
  const data = encodeDeployData({ abi, bytecode, args } as Parameters<typeof encodeDeployData>[0])
  const receipt = await rpc.request<{ status: Hex; contractAddress: Address | null }>('eth_sendTransactionSync', [
    { from: devAccounts.deployer, data, gas: '0x1c9c380' },
  ])
  if (receipt.status !== '0x1' || !receipt.contractAddress)
    throw new InfraError(`Deploying ${name} on the embedded chain failed.`)
  return getAddress(receipt.contractAddress)
}

const e18 = (n: number) => parseEther(String(n))

async function deployReference(rpc: Rpc, vaultBuild: string): Promise<AddressBook> {
  const { deployer, keeper, depositor, trader } = devAccounts
  const other = await deploy(rpc, 'MockERC20', ['Wrapped Ether', 'WETH'])
  const asset = await deploy(rpc, 'MockERC20', ['USD X', 'USDX'])
  const pair = await deploy(rpc, 'V2Pair', [other, asset])
  const feed = await deploy(rpc, 'ChainlinkFeed', ['WETH / USD', 3000n * 10n ** 8n])
  await send(rpc, deployer, other, 'mint(address,uint256)', [pair, e18(1_000)])
  await send(rpc, deployer, asset, 'mint(address,uint256)', [pair, e18(3_000_000)])
  await send(rpc, deployer, pair, 'mint(address)', [deployer])
  const twap = await deploy(rpc, 'TwapOracle', [pair, 1800n])
  const lender = await deploy(rpc, 'FlashLender')
  await send(rpc, deployer, asset, 'mint(address,uint256)', [lender, e18(500_000)])
  const perp = await deploy(rpc, 'PerpDex', [asset, 12n * 3600n])
  const vault = await deploy(rpc, vaultBuild, [asset, other, pair, feed, twap, lender, perp])
  contractNames.set(rpc, Object.fromEntries(Object.entries({ asset, other, pair, feed, twap, lender, perp, vault }).map(([name, address]) => [address, name])))
  for (const who of [depositor, trader, keeper]) {
    await send(rpc, deployer, asset, 'mint(address,uint256)', [who, e18(5_000_000)])
    await send(rpc, deployer, other, 'mint(address,uint256)', [who, e18(5_000)])
    await send(rpc, who, asset, 'approve(address,uint256)', [vault, 2n ** 255n])
  }
  await send(rpc, depositor, vault, 'deposit(uint256)', [e18(1_000_000)])
  return { asset, other, pair, feed, twap, lender, perp, vault }
}

/**
 * An arbitrageur holds the pair near an external price (3000 ± 10 bps of seeded noise); the
 * feed follows every fifth block; the keeper cycles every second block, so the vault reaches
 * its target split before the fork; one more deposit lands mid-way.
 */
async function writeHistory(rpc: Rpc, book: AddressBook, blocks: number) {
  const prng = createPrng(1)
  const { keeper, deployer, depositor } = devAccounts
  for (let i = 0; i < blocks; i++) {
    await increaseTime(rpc, 60)
    const priceE18 = (3000n * 10n ** 18n * BigInt(10_000 + prng.int(-10, 10))) / 10_000n
    await arbitrage(rpc, book, priceE18)
    if (i % 5 === 4) await send(rpc, deployer, book.feed, 'setAnswer(int256)', [priceE18 / 10n ** 10n])
    if (i === Math.floor(blocks / 2)) await send(rpc, depositor, book.vault, 'deposit(uint256)', [e18(50_000)])
    if (i % 2 === 1) await send(rpc, keeper, book.vault, 'cycle()')
  }
  await arbitrage(rpc, book, 3000n * 10n ** 18n)
  await send(rpc, deployer, book.feed, 'setAnswer(int256)', [3000n * 10n ** 8n])
  await send(rpc, keeper, book.vault, 'cycle()')
  await mine(rpc, 1)
}

/** Trades the pair to `priceE18` (USDX per WETH), as an arbitrageur against a CEX would. */
async function arbitrage(rpc: Rpc, book: AddressBook, priceE18: bigint) {
  const { trader } = devAccounts
  const reserves = await rpc.request<Hex>('eth_call', [{ to: book.pair, data: calldata('getReserves()') }, 'latest'])
  const r0 = BigInt(`0x${reserves.slice(2, 66)}`)
  const r1 = BigInt(`0x${reserves.slice(66, 130)}`)
  const k = r0 * r1
  const target0 = sqrt((k * 10n ** 18n) / priceE18)
  const sellOther = target0 > r0
  // The fee eats 0.3 % of the input: send a little more to land on the price.
  const amountIn = sellOther ? ((target0 - r0) * 1003n) / 1000n : ((sqrt((k * priceE18) / 10n ** 18n) - r1) * 1003n) / 1000n
  if (amountIn <= 0n) return
  const [reserveIn, reserveOut] = sellOther ? [r0, r1] : [r1, r0]
  const out = (amountIn * 997n * reserveOut) / (reserveIn * 1000n + amountIn * 997n)
  await send(rpc, trader, sellOther ? book.other : book.asset, 'transfer(address,uint256)', [book.pair, amountIn])
  await send(rpc, trader, book.pair, 'swap(uint256,uint256,address)', sellOther ? [0n, out, trader] : [out, 0n, trader])
}

function sqrt(n: bigint): bigint {
  if (n < 2n) return n
  let x = BigInt(Math.floor(Math.sqrt(Number(n))))
  for (let i = 0; i < 8; i++) x = (x + n / x) >> 1n
  while (x * x > n) x--
  return x
}
