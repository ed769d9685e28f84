#!/usr/bin/env node
// Compiles contracts/*.sol offline with npm solc into dist/contracts/artifacts.json, plus one
// ReferenceVault variant per guard with that guard switched off (the buggy targets for tests).
import { createHash } from 'node:crypto'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import solc from 'solc'

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..')
const sourceDir = path.join(root, 'contracts')
const outFile = path.join(root, 'dist', 'contracts', 'artifacts.json')
const GUARDS = {
  'no-oracle-guard': 'GUARD_ORACLE',
  'no-close-guard': 'GUARD_CLOSE',
  'no-cooldown-guard': 'GUARD_COOLDOWN',
  'no-flash-guard': 'GUARD_FLASH',
  'no-bounty-guard': 'GUARD_BOUNTY',
}
// Planted bugs that are not a guard switched off: one exact text substitution each (it must match
// once), each a mistake real vaults make. The drill that catches each is in README.md ("Planted
// bugs") and test/guards.test.ts; a sweep cell (`[direction=up]`) is how a drill reaches the
// other direction or a smaller level of its fault.
const BUGS = {
  // Wrong units: maxGasPrice (already wei) taken for a gwei count and scaled again, so the cap on the
  // keeper's gas price sits at 1e9 x 100 gwei. Below 100 gwei nothing differs (set-up and calm cycles
  // pass); a gas spike past the cap pays the keeper at the spiked price, over bountyCap().
  'bounty-units': ['_min(tx.gasprice, maxGasPrice) : tx.gasprice', '_min(tx.gasprice, maxGasPrice * 1 gwei) : tx.gasprice'],
  'deviation-units': ['ref - value) * 1e4) / ref;', 'ref - value) * 1e3) / ref;'],
  // Stale check in the wrong units: a heartbeat already in seconds multiplied by `1 days`.
  'stale-units': ['block.timestamp > updatedAt + heartbeat)', 'block.timestamp > updatedAt + heartbeat * 1 days)'],
  // Wrong units: the price-impact cap in percent of the reserve, not bps (100 times too large).
  'impact-units': ['(uint256(assetReserve) * maxImpactBps) / 1e4', '(uint256(assetReserve) * maxImpactBps) / 1e2'],
  // One-sided guard: only a feed below the TWAP counts as a deviation (a price move up passes).
  'one-sided-feed-guard': ['else if (_deviationBps(feedPrice, twapPrice) > maxDeviationBps)', 'else if (feedPrice < twapPrice && _deviationBps(feedPrice, twapPrice) > maxDeviationBps)'],
  // A smaller gas spike: the gas price is capped only beyond 10x maxGasPrice (1,000 gwei).
  'spike-cap-threshold': ['_min(tx.gasprice, maxGasPrice) : tx.gasprice', '(tx.gasprice > 10 * maxGasPrice ? maxGasPrice : tx.gasprice) : tx.gasprice'],
  // Rounding that leaks: the keeper's share of assets rounds up, so a capped bounty overshoots its cap.
  'bounty-rounding': ['/ 1e18 + (totalAssets() * bountyShareMillionths) / 1e6;\n        require(', '/ 1e18 + (totalAssets() * bountyShareMillionths + 1e6 - 1) / 1e6;\n        require('],
  // Books not cleared: closing the trade forgets its collateral, which totalAssets() still counts.
  'books-not-cleared': ['        tradeId = 0;\n        tradeCollateral = 0;\n', '        tradeId = 0;\n'],
  // A gate on the wrong function: deposits' ONLY_UNWIND pause copied into withdraw, so holders cannot exit.
  'withdraw-paused': ['returns (uint256 assets) {\n        require(shares > 0', 'returns (uint256 assets) {\n        require(riskMode == NORMAL, "Vault: withdrawals paused");\n        require(shares > 0'],
  // Off by one at a boundary: `>` for `>=`, so a holder cannot withdraw exactly their whole balance.
  'full-exit-off-by-one': ['balanceOf[msg.sender] >= shares, "Vault: insufficient shares"', 'balanceOf[msg.sender] > shares, "Vault: insufficient shares"'],
  // Trusts the call's return: a close is taken for done when closeTrade returns, not when the
  // collateral comes back (the reference vault before forkchaos explore's garbage-on-closeTrade finding).
  'trusts-close-return': [
    '            uint256 before = _idle();\n            perp.closeTrade(tradeId);\n            // A close is proven by the collateral coming back, not by the call returning: a perp that\n            // answers without paying has not closed, and clearing the books then would lose the collateral.\n            require(_idle() >= before + tradeCollateral, "Vault: close not paid");\n',
    '            perp.closeTrade(tradeId);\n',
  ],
  // Trusts the answered id: whatever openTrade returns is booked as the trade, paid for or not
  // (the reference vault before explore's garbage-on-openTrade finding).
  'trusts-open-id': [
    '            uint256 paid = _idle();\n            uint256 id = perp.openTrade(collateral);\n            // Book only a trade that exists and holds what was paid for it: a bogus id answered by\n            // the perp would make every later close revert, and unpaid collateral would be counted twice.\n            require(id != 0 && _idle() + collateral == paid && perp.tradeCollateral(id) == collateral, "Vault: trade not opened");\n',
    '            uint256 id = perp.openTrade(collateral);\n',
  ],
}
// Not planted bugs (benches skip them): builds that exercise forkchaos's own paths. The bounty's price
// term without its 1e18 scale makes every cycle() revert, so the embedded chain's set-up cannot run.
const FIXTURES = {
  'fixture-setup-reverts': ['(bountyGas * gasPrice * twap.consult()) / 1e18', '(bountyGas * gasPrice * twap.consult())'],
}
const settings = {
  evmVersion: 'cancun',
  optimizer: { enabled: true, runs: 200 },
  outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } },
}

const started = performance.now()
const elapsed = () => `${((performance.now() - started) / 1000).toFixed(2)}s`

const files = fs.readdirSync(sourceDir).filter((f) => f.endsWith('.sol')).sort()
const sources = Object.fromEntries(files.map((f) => [f, { content: fs.readFileSync(path.join(sourceDir, f), 'utf8') }]))

// The stamp covers everything that shapes the output: sources, compiler, settings and this script.
const stamp = createHash('sha256')
  .update(JSON.stringify([solc.version(), settings, sources, fs.readFileSync(fileURLToPath(import.meta.url), 'utf8')]))
  .digest('hex')
const previous = fs.existsSync(outFile) ? JSON.parse(fs.readFileSync(outFile, 'utf8')) : undefined
if (previous?.stamp === stamp) {
  console.log(`build-contracts: ${files.length} sources unchanged, skipped (${elapsed()})`)
  process.exit(0)
}

// Variants live under their own unit names, so one solc run compiles everything.
const vault = sources['ReferenceVault.sol']?.content
if (!vault) fail(['contracts/ReferenceVault.sol is missing'])
for (const [variant, guard] of Object.entries(GUARDS)) {
  const line = `bool internal constant ${guard} = true;`
  if (vault.split(line).length !== 2) fail([`ReferenceVault.sol must declare exactly once: ${line}`])
  sources[`variants/${variant}/ReferenceVault.sol`] = { content: vault.replace(line, line.replace('true', 'false')) }
}

for (const [variant, [from, to]] of Object.entries({ ...BUGS, ...FIXTURES })) {
  if (vault.split(from).length !== 2) fail([`ReferenceVault.sol must contain exactly once (planted bug ${variant}): ${from}`])
  sources[`variants/${variant}/ReferenceVault.sol`] = { content: vault.replace(from, to) }
}

const output = JSON.parse(solc.compile(JSON.stringify({ language: 'Solidity', sources, settings })))
const problems = output.errors ?? []
const errors = problems.filter((p) => p.severity === 'error')
if (errors.length > 0) fail([...new Set(errors.map((e) => e.formattedMessage.replace(/^(\s*--> )/m, '$1contracts/')))])
for (const warning of problems) console.warn(warning.formattedMessage)

const artifact = (unit, name) => {
  const c = output.contracts[unit]?.[name]
  if (!c) fail([`solc produced no ${name} in ${unit}`])
  return { abi: c.abi, bytecode: `0x${c.evm.bytecode.object}`, deployedBytecode: `0x${c.evm.deployedBytecode.object}` }
}
// One contract per file, named like the file; the small interfaces next to it are not exported.
const contracts = Object.fromEntries(files.map((f) => [path.basename(f, '.sol'), artifact(f, path.basename(f, '.sol'))]))
const variants = Object.fromEntries(
  [...Object.keys(GUARDS), ...Object.keys(BUGS), ...Object.keys(FIXTURES)].map((v) => [`ReferenceVault.${v}`, artifact(`variants/${v}/ReferenceVault.sol`, 'ReferenceVault')]),
)

fs.mkdirSync(path.dirname(outFile), { recursive: true })
fs.writeFileSync(outFile, JSON.stringify({ solcVersion: solc.version(), stamp, contracts, variants }, null, 1) + '\n')
console.log(`build-contracts: compiled ${files.length} contracts + ${Object.keys(variants).length} variants (${elapsed()})`)

function fail(messages) {
  console.error(`build-contracts: failed (${elapsed()})\n${messages.join('\n')}`)
  process.exit(1)
}
