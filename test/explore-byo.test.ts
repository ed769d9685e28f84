// `forkchaos explore` on a user's own fork, the way a user runs it: a local upstream chain (an
// Anvil with the reference contracts deployed, standing in for a public chain forkchaos did not
// set up), `--fork-url http://127.0.0.1:PORT` and a `--protocol` file that describes the vault by
// its functions and names its contracts with the user's own names (not `protocol: reference`).
// On the reference build every cell holds and the dependency list names the file's contracts;
// on an upstream with ReferenceVault.no-close-guard deployed the closeTrade cells fail and the
// file written replays as failed through `forkchaos run --fork-url` (and holds on the reference).
// The same through `--state` (anvil's dump of the upstream), and `forkchaos search` on the fork
// (held on the reference, a shrunk bounty-capped failure on no-bounty-guard). Bad input exits 2 naming the flag,
// the file or the field, before anything boots. The CLI from dist/ (`npx tsc -p tsconfig.json` first).
import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import { gunzipSync } from 'node:zlib'
import type { Hex } from 'viem'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startUpstream, type Upstream } from '../src/targets/embedded.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const bin = path.join(root, 'bin', 'forkchaos.js')
/** The CLI as a child process (async: the upstream chains run in this process and must keep answering). */
const cli = (args: string[]) =>
  new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd: root })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const timer = setTimeout(() => child.kill('SIGTERM'), 150_000)
    child.on('error', reject)
    child.on('close', (status) => {
      clearTimeout(timer)
      resolve({ status, stdout, stderr })
    })
  })

/** The user's names for the contracts (none of them the embedded chain's names). */
const names = { strategy: 'vault', usd: 'asset', weth: 'other', amm: 'pair', chainlink: 'feed', twapOracle: 'twap', flashLender: 'lender', perpDex: 'perp' } as const

/** A protocol file as a user writes one for their vault: its views and events, and their address book. */
function protocolFile(dir: string, upstream: Upstream): string {
  const file = path.join(dir, 'my-vault.yaml')
  const book = upstream.book as Record<string, string>
  fs.writeFileSync(
    file,
    `# My vault, described for forkchaos.
protocol:
  vault: strategy
  entry: cycle()
  sharePrice: sharePrice() returns (uint256)
  riskMode: riskMode() returns (uint8)
  bountyEvent: { event: "BountyPaid(address indexed keeper, uint256 amount, uint256 cap)", amount: amount, cap: cap }
  lender: { address: flashLender, token: usd }
  state:
    - totalAssets() returns (uint256)
    - totalSupply() returns (uint256)
    - riskMode() returns (uint8)
    - tradeId() returns (uint256)
    - tradeCollateral() returns (uint256)
    - alpShares() returns (uint256)
  signals: ["RiskModeChanged(uint8 from, uint8 to, string why)", "UnwindDeferred(string reason)"]
  guards: { deviationBps: 200, heartbeatS: 86400, maxGasPriceGwei: 100 }
contracts:
${Object.entries(names).map(([mine, embedded]) => `  ${mine}: "${book[embedded]}"`).join('\n')}
`,
  )
  return file
}

type Report = { checks: string[]; omitted: { check: string; why: string }[]; cells: { name: string; verdict: string; checks: Record<string, boolean>; reason: string; file?: string; replay?: string }[]; trace: { dependencies: { contract?: string; signature?: string; failure: string }[] } }

describe('forkchaos explore on a user fork (--fork-url / --state with --protocol)', () => {
  let reference: Upstream
  let broken: Upstream
  let uncapped: Upstream
  let dir: string
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'explore-byo-'))
    reference = await startUpstream()
    broken = await startUpstream({ vaultBuild: 'ReferenceVault.no-close-guard' })
    uncapped = await startUpstream({ vaultBuild: 'ReferenceVault.no-bounty-guard' })
  }, 120_000)
  afterAll(async () => {
    await reference?.instance.stop()
    await broken?.instance.stop()
    await uncapped?.instance.stop()
    fs.rmSync(dir, { recursive: true, force: true })
  })

  it('on the reference build: the dependency list names the file\'s contracts, the checks the file gives nothing for are named, every cell holds (exit 0)', async () => {
    const file = protocolFile(dir, reference)
    const out = path.join(dir, 'out-ref')
    const run = await cli(['explore', '--fork-url', reference.instance.url, '--protocol', file, '--seed', '7', '--out', out])
    expect(run.status, run.stderr + run.stdout.slice(-3000)).toBe(0)
    const text = run.stdout
    expect(text).toContain(`forkchaos explore: seed 7 · cycle() on a fork of ${reference.instance.url} (latest block) · protocol ${file}`)
    expect(text).toContain('cycle() on 0xB7f8BC63BbcaD18155201308C8f3540b07f84F5e: 14 external functions')
    // Every dependency by the file's name for it, none by the embedded chain's.
    const deps = text.split('\n').filter((l) => / revert (propagates|caught)$/.test(l))
    expect(deps).toHaveLength(14)
    for (const d of deps) expect(d, d).toMatch(/^ {4}(usd|weth|amm|chainlink|twapOracle|perpDex) +\S+\(/)
    for (const dep of ['twapOracle consult()', 'chainlink  latestRoundData()', 'amm        getReserves()', 'perpDex    closeTrade(uint256)', 'usd        transfer(address,uint256)']) expect(text, dep).toContain(`    ${dep}`)
    expect(text).toMatch(/\n {2}read: .*strategy 14 slots/)
    // The reference vault's own checks are left out, each with why; the rest come from the file's fields.
    expect(text).toContain('  checks left out (3): nothing in the protocol for them to judge')
    expect(text).toMatch(/\n {4}books-match-perp +it compares the reference vault's alpShares\(\)/)
    const head = text.split('\n').find((l) => l.startsWith('  fault     dependency'))
    expect(head?.split(/\s+/).slice(3, -1)).toEqual(['no-funds-lost', 'no-partial-state', 'bounty-capped', 'cycles-run', 'risk-mode', 'flash-repaid', 'guard-as-declared'])
    const rows = text.split('\n').filter((l) => /^ {2}(revert|garbage|gas|oracle|spike|shortfall|found) /.test(l))
    expect(rows).toHaveLength(62)
    expect(rows.filter((r) => !r.endsWith(' held'))).toEqual([])
    for (const r of ['shortfall flashLender 50 % usd cut', 'shortfall amm 90 % reserves cut', 'oracle    chainlink up 270 bps, 220 over TWAP (guard 200 bps)', 'found     strategy gas-price found 100 gwei, declared 100 gwei'])
      expect(rows.some((x) => x.startsWith(`  ${r}`)), r).toBe(true)
    expect(text).toMatch(/\n62 cells: 62 held, 0 not · [\d.]+ s · seed 7\n/)
    expect(fs.existsSync(out)).toBe(false)
  }, 180_000)

  it('on an upstream with no-close-guard deployed the closeTrade cells fail; the written file replays as failed with `forkchaos run --fork-url` and holds on the reference', async () => {
    const file = protocolFile(dir, broken)
    const out = path.join(dir, 'out-broken')
    const run = await cli(['explore', '--fork-url', broken.instance.url, '--protocol', file, '--seed', '7', '--out', out, '--json'])
    expect(run.status, run.stderr + run.stdout.slice(-2000)).toBe(1)
    const report = JSON.parse(run.stdout) as Report
    expect(report.trace.dependencies.find((d) => d.signature === 'closeTrade(uint256)')).toMatchObject({ contract: 'perpDex', failure: 'caught' })
    expect(report.omitted.map((o) => o.check)).toEqual(['books-match-perp', 'trade-books-match', 'holder-exits'])
    const failed = report.cells.filter((c) => c.verdict !== 'held')
    expect(failed.map((c) => [c.name, c.verdict, c.checks['no-funds-lost']])).toEqual([
      ['explore-revert-perpdex-closetrade', 'failed', false],
      ['explore-garbage-perpdex-closetrade', 'failed', false],
    ])
    const cell = failed[0]
    expect(cell?.reason).toContain('safety check `no-funds-lost` broke in inject: sharePrice 0.69')
    const written = path.join(out, 'explore-revert-perpdex-closetrade.yaml')
    expect(cell?.file).toBe(written)
    // Explore forked the upstream's latest block: the replay pins it, so it forks the same state later.
    expect(cell?.replay).toBe(`npx forkchaos run ${written} --seed 7 --fork-url '${broken.instance.url}' --fork-block ${broken.headBlock}`)
    const yaml = fs.readFileSync(written, 'utf8')
    // Standalone: the user's protocol block and address book inline, not `protocol: reference`.
    expect(yaml).toContain('protocol: {"vault":"strategy","entry":"cycle()"')
    expect(yaml).toContain(`contracts: {"strategy":"${broken.book.vault}"`)
    expect(yaml).not.toContain('protocol: reference')
    expect(yaml).toContain('target: perpDex, params: { selectors: ["closeTrade(uint256)"]')
    // The replay command, as printed: it fails the same way.
    const again = await cli(['run', written, '--seed', '7', '--fork-url', broken.instance.url, '--report-dir', path.join(dir, 'rep-broken'), '--no-progress'])
    expect(again.status, again.stderr + again.stdout).toBe(1)
    expect(again.stdout).toContain('failed   explore-revert-perpdex-closetrade')
    expect(again.stdout).toContain('safety check `no-funds-lost` broke in inject: sharePrice 0.69')
    // The same file on a fork of the reference build holds (the vault's close guard reverts the cycle whole).
    const held = await cli(['run', written, '--seed', '7', '--fork-url', reference.instance.url, '--report-dir', path.join(dir, 'rep-ref'), '--no-progress'])
    expect(held.status, held.stderr + held.stdout).toBe(0)
    expect(held.stdout).toContain('held     explore-revert-perpdex-closetrade')
  }, 240_000)

  it('a protocol file that gives fewer fields: the checks it cannot judge are left out and named, unknown addresses shown as addresses; no-partial-state still catches no-close-guard (--fork-block in the replay)', async () => {
    // No sharePrice, no riskMode, no lender, a bounty event without a cap, no guards declared; only the vault and the perp named.
    const file = path.join(dir, 'thin.yaml')
    fs.writeFileSync(
      file,
      `protocol:
  vault: strategy
  entry: cycle()
  bountyEvent: "BountyPaid(address indexed keeper, uint256 amount, uint256 cap)"
  state: ["totalAssets() returns (uint256)", "tradeId() returns (uint256)", "tradeCollateral() returns (uint256)"]
contracts:
  strategy: "${broken.book.vault}"
  perpDex: "${broken.book.perp}"
`,
    )
    const out = path.join(dir, 'out-thin')
    const block = String(broken.headBlock)
    const run = await cli(['explore', '--fork-url', broken.instance.url, '--fork-block', block, '--protocol', file, '--seed', '7', '--out', out])
    expect(run.status, run.stderr + run.stdout.slice(-3000)).toBe(1)
    const text = run.stdout
    expect(text).toContain(`on a fork of ${broken.instance.url} at block ${block} · protocol ${file}`)
    // Contracts the file does not name are shown by address; the ones it names by its names.
    expect(text).toContain(`    ${broken.book.feed} latestRoundData()`)
    expect(text).toMatch(/\n {4}perpDex +closeTrade\(uint256\) +0xa39cea84 ×1 +call +revert caught\n/)
    expect(text).toContain('  checks left out (7): nothing in the protocol for them to judge')
    for (const [check, why] of [
      ['no-funds-lost', 'needs `protocol.sharePrice`, which the protocol file does not give.'],
      ['bounty-capped', 'needs a `cap` field in `protocol.bountyEvent`'],
      ['risk-mode', 'needs `protocol.riskMode`'],
      ['flash-repaid', 'needs `protocol.lender`'],
      ['books-match-perp', "it compares the reference vault's alpShares()"],
    ])
      expect(text, check).toContain(`\n    ${check.padEnd(18)} ${why}`)
    const head = text.split('\n').find((l) => l.startsWith('  fault     dependency'))
    expect(head?.split(/\s+/).slice(3, -1)).toEqual(['no-partial-state', 'cycles-run'])
    const rows = text.split('\n').filter((l) => /^ {2}(revert|garbage|gas|oracle|spike|shortfall|found) /.test(l))
    // 42 dependency cells, 9 feed rows and 3 gas rows around what was found, the pool's 2 shortfall rows; no lender rows, no comparison rows (nothing declared).
    expect(rows).toHaveLength(56)
    expect(rows.some((r) => / (found|shortfall) +(strategy|lender)/.test(r))).toBe(false)
    expect(rows.filter((r) => !r.endsWith(' held')).map((r) => r.split(/\s+/).slice(1, 3).join(' '))).toEqual(['revert perpDex.closeTrade(uint256)'])
    expect(text).toContain('safety check `no-partial-state` broke in inject: inject cycle#1: call to 0x610178da211fef7d417bc0e6fed39f05609ad788 (0xa39cea84) failed (forkchaos explore) inside a successful cycle, and state changed')
    const written = path.join(out, 'explore-revert-perpdex-closetrade.yaml')
    expect(text).toContain(`replay: npx forkchaos run ${written} --seed 7 --fork-url '${broken.instance.url}' --fork-block ${block}`)
    const again = await cli(['run', written, '--seed', '7', '--fork-url', broken.instance.url, '--fork-block', block, '--report-dir', path.join(dir, 'rep-thin'), '--no-progress'])
    expect(again.status, again.stderr + again.stdout).toBe(1)
    expect(again.stdout).toContain('safety check `no-partial-state` broke in inject')
  }, 180_000)

  it('--state: a dump of the broken upstream gives the same failing cells, and the file written replays as failed with `run --state`', async () => {
    const dump = await broken.instance.rpc.request<Hex>('anvil_dumpState')
    const state = path.join(dir, 'state.json')
    // anvil_dumpState answers hex-encoded gzip JSON; --load-state reads the same JSON.
    fs.writeFileSync(state, gunzipSync(Buffer.from(dump.slice(2), 'hex')))
    const file = protocolFile(dir, broken)
    const out = path.join(dir, 'out-state')
    const run = await cli(['explore', '--state', state, '--protocol', file, '--seed', '7', '--out', out, '--json'])
    expect(run.status, run.stderr + run.stdout.slice(-2000)).toBe(1)
    const report = JSON.parse(run.stdout) as Report
    expect(report.cells).toHaveLength(62)
    expect(report.cells.filter((c) => c.verdict !== 'held').map((c) => c.name)).toEqual(['explore-revert-perpdex-closetrade', 'explore-garbage-perpdex-closetrade'])
    const written = path.join(out, 'explore-garbage-perpdex-closetrade.yaml')
    expect(report.cells.find((c) => c.file === written)?.replay).toBe(`npx forkchaos run ${written} --seed 7 --state ${state}`)
    const again = await cli(['run', written, '--seed', '7', '--state', state, '--report-dir', path.join(dir, 'rep-state'), '--no-progress'])
    expect(again.status, again.stderr + again.stdout).toBe(1)
    expect(again.stdout).toContain('failed   explore-garbage-perpdex-closetrade')
  }, 180_000)

  it('search on the user fork: holds on the reference build; on no-bounty-guard it fails, shrinks, and the file replays as failed with `run --fork-url`', async () => {
    const file = protocolFile(dir, reference)
    const held = await cli(['search', '--fork-url', reference.instance.url, '--protocol', file, '--seed', '1', '--episodes', '6', '--steps', '8', '--out', path.join(dir, 'search-ref')])
    expect(held.status, held.stderr + held.stdout.slice(-2000)).toBe(0)
    expect(held.stdout).toContain(`· a fork of ${reference.instance.url} (latest block) · protocol ${file}`)
    expect(held.stdout).toMatch(/\n {4}books-match-perp +it compares the reference vault's alpShares\(\)/)
    expect(held.stdout).toMatch(/\n6 episodes: held · /)
    const out = path.join(dir, 'search-uncapped')
    const run = await cli(['search', '--fork-url', uncapped.instance.url, '--protocol', protocolFile(dir, uncapped), '--seed', '1', '--episodes', '6', '--steps', '8', '--out', out, '--json'])
    expect(run.status, run.stderr + run.stdout.slice(-2000)).toBe(1)
    const report = JSON.parse(run.stdout) as { verdict: string; omitted: { check: string }[]; failure: { check: string; file: string; replay: string; shrunk: number } }
    expect(report.verdict).toBe('failed')
    expect(report.omitted.map((o) => o.check)).toEqual(['books-match-perp'])
    expect(report.failure.check).toBe('bounty-capped')
    expect(report.failure.replay).toBe(`npx forkchaos run ${report.failure.file} --seed 1 --fork-url '${uncapped.instance.url}' --fork-block ${uncapped.headBlock}`)
    const yaml = fs.readFileSync(report.failure.file, 'utf8')
    expect(yaml).toContain('protocol: {"vault":"strategy"')
    expect(yaml).not.toContain('books-match-perp')
    const again = await cli(['run', report.failure.file, '--seed', '1', '--fork-url', uncapped.instance.url, '--report-dir', path.join(dir, 'rep-search'), '--no-progress'])
    expect(again.status, again.stderr + again.stdout).toBe(1)
    expect(again.stdout).toContain('safety check `bounty-capped` broke in inject')
    // The same file on the reference build holds (its bounty is capped).
    const ok = await cli(['run', report.failure.file, '--seed', '1', '--fork-url', reference.instance.url, '--report-dir', path.join(dir, 'rep-search-ref'), '--no-progress'])
    expect(ok.status, ok.stderr + ok.stdout).toBe(0)
  }, 240_000)

  it('bad input exits 2 naming the flag, the file or the field, before anything boots', async () => {
    // Nothing listens on port 1: a case that booted would fail otherwise (exit 3), not with exit 2 and its message.
    const url = 'http://127.0.0.1:1'
    const write = (name: string, text: string) => {
      const f = path.join(dir, name)
      fs.writeFileSync(f, text)
      return f
    }
    const vault = '"0xB7f8BC63BbcaD18155201308C8f3540b07f84F5e"'
    const mine = write('mine.yaml', `protocol: { vault: strategy, entry: cycle(), sharePrice: "sharePrice() returns (uint256)" }\ncontracts: { strategy: ${vault} }\n`)
    const cases: [string[], string[]][] = [
      [['--fork-url', url], ['`--fork-url` needs `--protocol <file>`']],
      [['--state', mine], ['`--state` needs `--protocol <file>`']],
      [['--fork-url', url, '--protocol', path.join(dir, 'missing.yaml')], ['`--protocol` names', 'missing.yaml, which cannot be read']],
      [['--fork-url', url, '--protocol', write('ref.yaml', `protocol: reference\ncontracts: { vault: ${vault} }\n`)], ['ref.yaml: `protocol: reference` only fits the embedded chain', 'Field: protocol']],
      [['--fork-url', url, '--protocol', write('none.yaml', `contracts: { vault: ${vault} }\n`)], ['none.yaml: `protocol` is missing', 'Field: protocol']],
      [['--fork-url', url, '--protocol', write('bad.yaml', `protocol:\n  vault: strategy\n  entry: cycle()\n  sharePrice: "name() returns (string)"\ncontracts: { strategy: ${vault} }\n`)], ['bad.yaml:4: `protocol.sharePrice` must return a number (uint or int)', 'Field: protocol.sharePrice']],
      [['--fork-url', url, '--protocol', write('typo.yaml', `protocol: { vault: strategy, entry: cycle(), sharePrise: "sharePrice()" }\ncontracts: { strategy: ${vault} }\n`)], ['typo.yaml:1:', 'sharePrise']],
      [['--fork-url', url, '--protocol', write('unnamed.yaml', `protocol: { vault: myVault, entry: cycle() }\ncontracts: { strategy: ${vault} }\n`)], ['unnamed.yaml: `protocol.vault` names `myVault`, which is neither an address nor a contract under `contracts:`', 'Known: strategy']],
      [['--fork-url', url, '--protocol', mine, '--vault-build', 'ReferenceVault.no-close-guard'], ['`--vault-build` and `--fork-url` cannot be used together']],
      [['--fork-url', url, '--protocol', mine, '--entry', 'cycle(uint256)'], ['`--entry` must be a function of your vault without arguments, like `cycle()`']],
      [['--state', path.join(dir, 'no-dump.json'), '--protocol', mine], ['`--state` names', 'no-dump.json, which does not exist']],
    ]
    // search takes the same target flags, with the same refusals.
    cases.push(
      [['search', '--fork-url', url], ['`--fork-url` needs `--protocol <file>`: on a fork search judges']],
      [['search', '--fork-url', url, '--protocol', path.join(dir, 'ref.yaml')], ['ref.yaml: `protocol: reference` only fits the embedded chain']],
      [['search', '--fork-url', url, '--protocol', mine, '--vault-build', 'ReferenceVault.no-close-guard'], ['`--vault-build` and `--fork-url` cannot be used together']],
      [['search', '--target', 'devnet', '--protocol', mine], ['`--protocol` is a fork option']],
    )
    for (const [given, messages] of cases) {
      const args = given[0] === 'search' ? given : ['explore', ...given]
      const run = await cli(args)
      expect(run.status, `${args.join(' ')}\n${run.stderr}`).toBe(2)
      for (const m of messages) expect(run.stderr, args.join(' ')).toContain(m)
      expect(run.stderr, args.join(' ')).not.toMatch(/\n\s+at /)
      expect(run.stdout, args.join(' ')).toBe('')
    }
  }, 120_000)
})
