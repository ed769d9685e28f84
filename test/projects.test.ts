import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { InputError } from '../src/errors.js'
import { explore } from '../src/explore/run.js'
import type { Trace } from '../src/explore/trace.js'
import { loadProtocolFile, loadScenario } from '../src/scenario/loader.js'
import { runSuite } from '../src/scenario/suite.js'
import { type AnvilInstance, startAnvil } from '../src/targets/anvil.js'

/**
 * A small real Foundry project, made here: built with forge from npm (`@foundry-rs/forge`,
 * offline, npm's solcjs as its compiler through test/fixtures/foundry/solcjs.sh) and deployed by
 * `forge script --broadcast` on a local Anvil; a scenario then names its contracts by their own
 * names (`contracts: { foundry: . }`) and runs on a fork of that chain.
 */
const repo = path.join(import.meta.dirname, '..')
const forge = path.join(repo, 'node_modules', '@foundry-rs', 'forge', 'bin.mjs')
const solc = path.join(repo, 'test', 'fixtures', 'foundry', 'solcjs.sh')
// Anvil's first well-known test key (mnemonic "test test … junk"): test-only, never real funds.
const key = '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80'
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forkchaos-foundry-'))
let chain: AnvilInstance | undefined

const write = (file: string, text: string) => {
  fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true })
  fs.writeFileSync(path.join(dir, file), text)
}
const forgeRun = (args: string[]) => {
  const r = spawnSync(process.execPath, [forge, ...args], { cwd: dir, encoding: 'utf8', timeout: 240_000 })
  expect(r.status, `forge ${args.join(' ')}\n${r.stdout}\n${r.stderr}`).toBe(0)
  return r.stdout
}

beforeAll(async () => {
  write('foundry.toml', '[profile.default]\nsrc = "src"\nout = "out"\nscript = "script"\noffline = true\n')
  write(
    'src/Vault.sol',
    // poke() calls out to a second contract of the project: explore names that selector from the project's ABI.
    '// SPDX-License-Identifier: MIT\npragma solidity ^0.8.24;\ncontract Gauge {\n    uint256 public pings;\n    function ping(uint256 by) external returns (uint256) { pings += by; return pings; }\n}\ncontract Vault {\n    Gauge immutable gauge;\n    uint256 public level;\n    uint256 public pokes;\n    constructor(Gauge g) { gauge = g; }\n    function setLevel(uint256 v) external { level = v; }\n    function poke() external { pokes += 1; gauge.ping(1); }\n}\n',
  )
  // No forge-std: the script declares the two cheat codes it uses.
  write(
    'script/Deploy.s.sol',
    '// SPDX-License-Identifier: MIT\npragma solidity ^0.8.24;\nimport {Gauge, Vault} from "../src/Vault.sol";\ninterface Vm { function startBroadcast() external; function stopBroadcast() external; }\ncontract Deploy {\n    Vm constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));\n    function run() external { vm.startBroadcast(); new Vault(new Gauge()); vm.stopBroadcast(); }\n}\n',
  )
  chain = await startAnvil({ label: 'foundry-chain' })
  forgeRun(['build', '--offline', '--use', solc])
  forgeRun(['script', 'script/Deploy.s.sol:Deploy', '--offline', '--use', solc, '--rpc-url', chain.url, '--private-key', key, '--broadcast'])
}, 300_000)

afterAll(async () => {
  await chain?.stop()
  fs.rmSync(dir, { recursive: true, force: true })
})

const scenario = (name: string, body: string) => {
  const f = path.join(dir, `${name}.yaml`)
  fs.writeFileSync(f, `name: ${name}\nhypothesis: the level set is the level read\ncontracts: { foundry: ".", script: Deploy.s.sol }\nprotocol: { vault: Vault, entry: "poke()" }\n${body}`)
  return f
}

describe('contracts: a Foundry project, by its own contract names', () => {
  it('reads the broadcast address and the ABI; a drill on a fork of that chain holds, and fails when its check is wrong', async () => {
    const broadcast = JSON.parse(fs.readFileSync(path.join(dir, 'broadcast', 'Deploy.s.sol', '31337', 'run-latest.json'), 'utf8'))
    const deployed = broadcast.transactions.find((t: { contractName: string }) => t.contractName === 'Vault').contractAddress
    const gauge = broadcast.transactions.find((t: { contractName: string }) => t.contractName === 'Gauge').contractAddress
    const steps = 'inject:\n  faults: []\n  steps:\n    - call: { to: Vault, fn: "setLevel(uint256)", args: [7] }\n    - cycle: {}\n'
    const good = scenario('holds', `checks:\n  - { name: level-set, kind: safety, phases: [inject], view: { to: Vault, fn: "level() returns (uint256)", equals: 7 } }\n${steps}`)
    expect(loadScenario(good).contracts).toEqual({ Gauge: expect.stringMatching(new RegExp(`^${gauge}$`, 'i')), Vault: expect.stringMatching(new RegExp(`^${deployed}$`, 'i')) })
    const wrong = scenario('wrong', `checks:\n  - { name: level-set, kind: safety, phases: [inject], view: { to: Vault, fn: "level() returns (uint256)", equals: 8 } }\n${steps}`)
    const report = await runSuite({ paths: [good, wrong], seed: 1, source: { kind: 'url', url: chain?.url as string }, replay: 'test' })
    expect(report.scenarios.map((s) => [s.name, s.verdict])).toEqual([
      ['holds', 'held'],
      ['wrong', 'failed'],
    ])
    expect(report.scenarios[1]?.checks.find((c) => c.name === 'level-set')).toMatchObject({ ok: false, kind: 'safety' })
    expect(report.scenarios[0]?.cycles.inject).toEqual({ total: 1, reverted: 0 })
  }, 180_000)

  it('a function the ABI lacks, or a script with no broadcast, is refused at load naming the file, line and field', () => {
    const refusal = (f: string) => {
      try {
        loadScenario(f)
      } catch (error) {
        expect(error).toBeInstanceOf(InputError)
        return (error as InputError).shortMessage
      }
      throw new Error('expected an InputError')
    }
    const missing = scenario('missing', 'inject:\n  faults: []\n  steps:\n    - call: { to: Vault, fn: "withdraw(uint256)", args: [1] }\n')
    expect(refusal(missing)).toBe(
      `${missing}:8: \`inject.steps[0].call.fn\` \`withdraw(uint256)\` is not a function of \`Vault\` in its ABI (${path.join(dir, 'broadcast', 'Deploy.s.sol', '31337', 'run-latest.json')}); it has \`level()\`, \`poke()\`, \`pokes()\`, \`setLevel(uint256)\`.`,
    )
    const f = path.join(dir, 'noscript.yaml')
    fs.writeFileSync(f, 'name: noscript\nhypothesis: h\ncontracts: { foundry: ".", script: Other.s.sol }\ninject: { faults: [] }\n')
    expect(refusal(f)).toBe(`${f}:3: ${path.join(dir, 'broadcast', 'Other.s.sol')} does not exist: no broadcast of \`Other.s.sol\` (run \`forge script Other.s.sol --broadcast\`; broadcasts there: Deploy.s.sol).`)
  })
})

describe('explore on a fork of a Foundry project', () => {
  it("names an external call's selector from the project's ABI, and every cell on it holds (poke reverts whole)", async () => {
    const protocolFile = path.join(dir, 'protocol.yaml')
    fs.writeFileSync(protocolFile, 'contracts: { foundry: ".", script: Deploy.s.sol }\nprotocol: { vault: Vault, entry: "poke()", state: ["pokes() returns (uint256)", "level() returns (uint256)"] }\n')
    const user = { ...loadProtocolFile(protocolFile, '--protocol'), file: protocolFile }
    expect(Object.keys(user.abis ?? {}).sort()).toEqual(['Gauge', 'Vault'])
    let trace: Trace | undefined
    const report = await explore({
      source: { kind: 'url', url: chain?.url as string },
      entry: 'poke()',
      seed: 1,
      out: path.join(dir, 'explore-out'),
      replayFlags: ` --fork-url ${chain?.url}`,
      user,
      onTrace: (t) => {
        trace = t
      },
    })
    // The one external call: Gauge's ping(uint256), by the project's names (not its 0x selector).
    expect(trace?.dependencies.map((d) => [d.contract, d.signature, d.selector, d.failure])).toEqual([['Gauge', 'ping(uint256)', '0x773acdef', 'propagates']])
    expect(report.cells.map((c) => [c.name, c.verdict])).toEqual([
      ['explore-revert-gauge-ping', 'held'],
      ['explore-garbage-gauge-ping', 'held'],
      ['explore-gas-gauge-ping', 'held'],
      // The gas guard row (a gas-price spike): poke() has no gas guard to find, and it holds.
      ['explore-gas-10000', 'held'],
    ])
  }, 180_000)
})
