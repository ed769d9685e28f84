import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { InputError } from '../src/errors.js'
import { loadScenario } from '../src/scenario/loader.js'
import { runSuite } from '../src/scenario/suite.js'
import { type AnvilInstance, startAnvil } from '../src/targets/anvil.js'

/**
 * A small real Hardhat project, made here: compiled by Hardhat from npm (2.29.1, EDR; offline,
 * with npm's solcjs as its compiler through the fixture's config), deployed by a Hardhat script
 * on a local Anvil that writes Ignition's `deployed_addresses.json`; a scenario then names its
 * contracts by their own names (`contracts: { hardhat: . }`) and runs on a fork of that chain.
 */
const repo = path.join(import.meta.dirname, '..')
const hardhat = path.join(repo, 'node_modules', 'hardhat', 'internal', 'cli', 'bootstrap.js')
const fixture = path.join(repo, 'test', 'fixtures', 'hardhat')
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forkchaos-hardhat-'))
let chain: AnvilInstance | undefined

const hardhatRun = (args: string[]) => {
  const r = spawnSync(process.execPath, [hardhat, ...args], {
    cwd: dir,
    encoding: 'utf8',
    timeout: 240_000,
    env: { ...process.env, CHAIN_URL: chain?.url ?? '', HARDHAT_DISABLE_TELEMETRY_PROMPT: 'true', CI: 'true' },
  })
  expect(r.status, `hardhat ${args.join(' ')}\n${r.stdout}\n${r.stderr}`).toBe(0)
  return r.stdout
}

beforeAll(async () => {
  fs.cpSync(fixture, dir, { recursive: true })
  // The project resolves `hardhat` and `solc` from forkchaos's own node_modules.
  fs.symlinkSync(path.join(repo, 'node_modules'), path.join(dir, 'node_modules'), 'dir')
  chain = await startAnvil({ label: 'hardhat-chain' })
  hardhatRun(['compile'])
  hardhatRun(['run', '--network', 'chain', 'scripts/deploy.cjs'])
}, 300_000)

afterAll(async () => {
  await chain?.stop()
  fs.rmSync(dir, { recursive: true, force: true })
})

const scenario = (name: string, vault: string) => {
  const f = path.join(dir, `${name}.yaml`)
  fs.writeFileSync(
    f,
    `name: ${name}\nhypothesis: the level set is the level read\ncontracts: { hardhat: "." }\nprotocol: { vault: ${vault}, entry: "poke()" }\n` +
      `checks:\n  - { name: level-set, kind: safety, phases: [inject], view: { to: ${vault}, fn: "level() returns (uint256)", equals: 7 } }\n` +
      `inject:\n  faults: []\n  steps:\n    - call: { to: ${vault}, fn: "setLevel(uint256)", args: [7] }\n    - cycle: {}\n`,
  )
  return f
}

describe('contracts: a Hardhat project, by its own contract names', () => {
  it('reads Ignition addresses and Hardhat artifacts; the honest Vault holds, the planted-bug LeakyVault fails', async () => {
    const deployed = JSON.parse(fs.readFileSync(path.join(dir, 'ignition', 'deployments', 'chain-31337', 'deployed_addresses.json'), 'utf8'))
    const honest = scenario('honest', 'Vault')
    const leaky = scenario('leaky', 'LeakyVault')
    expect(loadScenario(honest).contracts).toEqual({ Vault: deployed['VaultModule#Vault'], LeakyVault: deployed['VaultModule#LeakyVault'] })
    const report = await runSuite({ paths: [honest, leaky], seed: 1, source: { kind: 'url', url: chain?.url as string }, replay: 'test' })
    expect(report.scenarios.map((s) => [s.name, s.verdict])).toEqual([
      ['honest', 'held'],
      ['leaky', 'failed'],
    ])
    expect(report.scenarios[1]?.checks.find((c) => c.name === 'level-set')).toMatchObject({ ok: false, kind: 'safety' })
    expect(report.scenarios[0]?.cycles.inject).toEqual({ total: 1, reverted: 0 })
  }, 180_000)

  it('a function the artifact lacks, or a deployment that is not there, is refused at load naming the file, line and field', () => {
    const refusal = (f: string) => {
      try {
        loadScenario(f)
      } catch (error) {
        expect(error).toBeInstanceOf(InputError)
        return (error as InputError).shortMessage
      }
      throw new Error('expected an InputError')
    }
    const source = path.join(dir, 'ignition', 'deployments', 'chain-31337', 'deployed_addresses.json')
    const missing = path.join(dir, 'missing.yaml')
    fs.writeFileSync(missing, 'name: missing\nhypothesis: h\ncontracts: { hardhat: "." }\ninject:\n  faults: []\n  steps:\n    - call: { to: Vault, fn: "withdraw(uint256)", args: [1] }\n')
    expect(refusal(missing)).toBe(
      `${missing}:7: \`inject.steps[0].call.fn\` \`withdraw(uint256)\` is not a function of \`Vault\` in its ABI (${source}); it has \`level()\`, \`poke()\`, \`pokes()\`, \`setLevel(uint256)\`.`,
    )
    const other = path.join(dir, 'other.yaml')
    fs.writeFileSync(other, 'name: other\nhypothesis: h\ncontracts: { hardhat: ".", deployment: chain-1 }\ninject: { faults: [] }\n')
    expect(refusal(other)).toBe(`${other}:3: ${path.join(dir, 'ignition', 'deployments', 'chain-1', 'deployed_addresses.json')} does not exist: no Ignition deployment \`chain-1\` (deployments there: chain-31337).`)
  })
})
