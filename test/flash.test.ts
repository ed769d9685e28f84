import { type Address, type Hex, numberToHex, parseEther } from 'viem'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readUint } from '../src/checks/read.js'
import { calldata } from '../src/chain/views.js'
import { applyFault } from '../src/Fault.js'
import { faults } from '../src/faults/registry.js'
import { runScenario } from '../src/scenario/runner.js'
import { call, getStorageAt, sendTransaction, setCode } from '../src/targets/chain.js'
import { type Fork, startFork } from '../src/targets/fork.js'
import { createPrng } from '../src/util/prng.js'
import { loadText } from './scenario-text.js'
import { compileSolidity } from './solc-compile.js'

/**
 * Issue 10, item 7: flashRepaid judges each loan from the cycle's own Transfer logs — an ERC-3156
 * lender repaid with its fee, a V2 pair's flash swap repaid in either token with its fee — and
 * fails against lenders that do not enforce repayment (compiled here), where the lender's own
 * require cannot hide a borrower that does not pay.
 */
const source = `// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;
interface IERC20 { function transfer(address, uint256) external returns (bool); function balanceOf(address) external view returns (uint256); }
/// ERC-3156-shaped, but it never pulls its money back.
contract LooseLender {
    function flashFee(address, uint256 amount) public pure returns (uint256) { return (amount * 5) / 10000; }
    function flashLoan(address receiver, address token, uint256 amount, bytes calldata data) external returns (bool) {
        IERC20(token).transfer(receiver, amount);
        Borrower(receiver).onFlashLoan(msg.sender, token, amount, flashFee(token, amount), data);
        return true;
    }
}
/// V2-shaped flash swaps without the constant-product check.
contract LoosePair {
    address public token0;
    address public token1;
    uint112 private r0;
    uint112 private r1;
    event Sync(uint112 reserve0, uint112 reserve1);
    function init(address a, address b) external { (token0, token1) = (a, b); sync(); }
    function sync() public {
        (r0, r1) = (uint112(IERC20(token0).balanceOf(address(this))), uint112(IERC20(token1).balanceOf(address(this))));
        emit Sync(r0, r1);
    }
    function getReserves() external view returns (uint112, uint112, uint32) { return (r0, r1, 0); }
    function swap(uint256 out0, uint256 out1, address to, bytes calldata data) external {
        if (out0 > 0) IERC20(token0).transfer(to, out0);
        if (out1 > 0) IERC20(token1).transfer(to, out1);
        if (data.length > 0) Borrower(to).uniswapV2Call(msg.sender, out0, out1, data);
        sync();
    }
}
/// Borrows in go() and pays back repayBps of what it owes: from the lender (amount + fee) or the pair (in token1, fee included).
contract Borrower {
    address public lender;
    address public token;
    address public other;
    uint256 public amount;
    uint256 public repayBps;
    bool public viaPair;
    function configure(address lender_, address token_, address other_, uint256 amount_, uint256 repayBps_, bool viaPair_) external {
        (lender, token, other, amount, repayBps, viaPair) = (lender_, token_, other_, amount_, repayBps_, viaPair_);
    }
    function go() external {
        if (viaPair) LoosePair(lender).swap(amount, 0, address(this), "x");
        else LooseLender(lender).flashLoan(address(this), token, amount, "");
    }
    function onFlashLoan(address, address t, uint256 a, uint256 fee, bytes calldata) external returns (bytes32) {
        IERC20(t).transfer(lender, ((a + fee) * repayBps) / 10000);
        return keccak256("ERC3156FlashBorrower.onFlashLoan");
    }
    function uniswapV2Call(address, uint256 a0, uint256, bytes calldata) external {
        (uint112 x0, uint112 x1, ) = LoosePair(lender).getReserves();
        uint256 owed = (uint256(x1) * a0 * 1000) / ((uint256(x0) - a0) * 997) + 1;
        IERC20(other).transfer(lender, (owed * repayBps) / 10000);
    }
}
`
const LENDER = '0x00000000000000000000000000000000000f1a01' as Address
const PAIR = '0x00000000000000000000000000000000000f1a02' as Address
const BORROWER = '0x00000000000000000000000000000000000f1a03' as Address
const scenario = (lender: 'loose' | 'loosepair', check: string) =>
  loadText(
    `name: flash
hypothesis: The lender gets its loan back with its fee in every cycle.
contracts: { loose: "${LENDER}", loosepair: "${PAIR}", borrower: "${BORROWER}" }
protocol: { vault: borrower, entry: "go()", lender: { address: ${lender}, token: asset } }
checks:
  - { name: repaid, kind: safety, flashRepaid: ${check} }
baseline: { steps: [] }
inject: { faults: [], steps: [ { cycle: { intervalS: 0 } } ] }
`,
    'test/flash.yaml',
  )

describe('flashRepaid', () => {
  let fork: Fork
  let code: Record<string, Hex>
  beforeAll(async () => {
    const [f, compiled] = await Promise.all([startFork({ kind: 'embedded' }), compileSolidity(source)])
    fork = f
    code = Object.fromEntries(Object.entries(compiled).map(([name, c]) => [name, c.deployedBytecode]))
  }, 120_000)
  afterAll(async () => {
    await fork?.stop()
  })
  /** Fresh fork state with the loose lender and pair funded, and the borrower set to repay `repayBps` of what it owes. */
  const setUp = async (viaPair: boolean, repayBps: number) => {
    await fork.reset()
    const rpc = fork.anvil.rpc
    const book = fork.book as Record<string, Address>
    const deployer = fork.accounts.deployer as Address
    await setCode(rpc, LENDER, code.LooseLender as Hex)
    await setCode(rpc, PAIR, code.LoosePair as Hex)
    await setCode(rpc, BORROWER, code.Borrower as Hex)
    const send = (to: Address, fn: string, args: unknown[]) => sendTransaction(rpc, { from: deployer, to, data: calldata(fn, args) })
    for (const [token, to, n] of [[book.asset, LENDER, 1_000], [book.asset, PAIR, 300_000], [book.other, PAIR, 100], [book.asset, BORROWER, 10], [book.other, BORROWER, 10]] as const)
      await send(token as Address, 'mint(address,uint256)', [to, parseEther(String(n))])
    await send(PAIR, 'init(address,address)', [book.asset, book.other])
    await send(BORROWER, 'configure(address,address,address,uint256,uint256,bool)', [viaPair ? PAIR : LENDER, book.asset, book.other, parseEther('100'), BigInt(repayBps), viaPair])
  }
  const repaid = async (lender: 'loose' | 'loosepair', check: string) => {
    const report = await runScenario(scenario(lender, check), fork, { seed: 1, replay: 'test' })
    return { verdict: report.verdict, ...report.checks.find((c) => c.name === 'repaid' && c.phase === 'inject') }
  }

  it('an ERC-3156 lender that does not enforce repayment: repaid with the fee holds; a borrower 0.1 % short of the principal, or a fee above what it paid, fails', async () => {
    await setUp(false, 10_000)
    expect(await repaid('loose', '{ feeBps: 5 }')).toMatchObject({ verdict: 'held', ok: true, observed: '1 successful cycles, 1 loans repaid with the fee' })
    await setUp(false, 10_000)
    expect(await repaid('loose', '{ feeBps: 10 }')).toMatchObject({ verdict: 'failed', ok: false, observed: 'inject cycle#1: lent 100000000000000000000, repaid 100050000000000000000 (owed 100100000000000000000 with the 10 bps fee)' })
    await setUp(false, 9_990)
    expect(await repaid('loose', 'true')).toMatchObject({ verdict: 'failed', ok: false, observed: 'inject cycle#1: lent 100000000000000000000, repaid 99949950000000000000 (owed 100000000000000000000 with the 0 bps fee)' })
  }, 60_000)

  it('a V2 flash swap repaid in the other token: with the 0.3 % fee holds; 1 % short fails, naming the reserves', async () => {
    await setUp(true, 10_000)
    expect(await repaid('loosepair', '{ kind: v2 }')).toMatchObject({ verdict: 'held', ok: true, observed: '1 successful cycles, 1 swaps out of the pair repaid with the fee' })
    await setUp(true, 9_900)
    const short = await repaid('loosepair', '{ kind: v2 }')
    expect(short).toMatchObject({ verdict: 'failed', ok: false })
    expect(short.observed).toMatch(/^inject cycle#1: a swap out of the pair took 100000000000000000000 token0 \/ 0 token1 and brought back 0 \/ \d+: reserves 300000000000000000000000 \/ 100000000000000000000 → 299900000000000000000000 \/ \d+, short of the 30 bps fee-adjusted product$/)
  }, 60_000)

  it('liquidity.shortfall on a pool cuts both reserves and balances (the evidence says LP value is removed while it holds), and its revert restores the pair exactly: storage and balances', async () => {
    await fork.reset()
    const rpc = fork.anvil.rpc
    const book = fork.book as Record<string, Address>
    const ctx = { rpc, prng: createPrng(1), resolve: (n: string) => book[n] ?? (n as Address), now: () => 0 }
    const pair = book.pair as Address
    const state = async () => ({
      slots: await Promise.all(Array.from({ length: 16 }, (_, i) => getStorageAt(rpc, pair, numberToHex(i, { size: 32 })))),
      balances: await Promise.all([book.asset, book.other].map((t) => readUint(rpc, t as Address, 'balanceOf(address) returns (uint256)', [pair]))),
      reserves: await call(rpc, { to: pair, data: calldata('getReserves()') }),
    })
    const before = await state()
    const fault = await applyFault(faults['liquidity.shortfall'], ctx, { target: 'pair', params: { cutBps: 2_500 } }, 't')
    const during = await state()
    expect(during.balances).toEqual(before.balances.map((b) => b - (b * 2_500n) / 10_000n))
    expect((await fault.detect({ steps: [], viewsBefore: {}, viewsAfter: {} })).took).toMatch(
      /^pair reserves cut by 2500 bps to \d+ \/ \d+; LP holders' claim per LP token is cut by 2500 bps while this holds \(LP value removed, not moved\), and given back exactly by the revert$/,
    )
    await fault.revert()
    expect(await state()).toEqual(before)
  })
})
