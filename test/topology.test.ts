import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { packageRoot } from '../src/contracts.js'
import { InputError } from '../src/errors.js'
import { anvilBinary } from '../src/targets/anvil.js'
import { type Devnet, startDevnet } from '../src/targets/devnet.js'
import { loadTopology, podsOf, renderValidator, validatorCount } from '../src/topology/topology.js'

/** The topology file: the embedded one reproduces what startDevnet spawns; bad files are refused with file, line, field and bound. */
const embedded = path.join(packageRoot, 'devnet', 'topologies', 'embedded.yaml')
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fc-topology-'))
const write = (name: string, text: string) => {
  const file = path.join(tmp, name)
  fs.writeFileSync(file, text)
  return file
}
const cmdline = (pid: number) => fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, -1)
const errorOf = (f: () => unknown) => {
  try {
    f()
  } catch (e) {
    expect(e).toBeInstanceOf(InputError)
    return (e as InputError).shortMessage
  }
  throw new Error('expected an InputError')
}

let devnet: Devnet | undefined
afterEach(async () => {
  const pids = devnet ? devnet.nodes.flatMap((n) => [n.pid, n.anvil.pid]) : []
  await devnet?.down()
  devnet = undefined
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0)
      return true
    } catch {
      return false
    }
  }
  for (let i = 0; i < 100 && pids.some(alive); i++) await new Promise((r) => setTimeout(r, 50))
  expect(pids.filter(alive)).toEqual([])
})

describe('the embedded topology', () => {
  it('renders, for 4 validators, exactly the command lines startDevnet spawns (read from /proc/<pid>/cmdline)', async () => {
    const topology = loadTopology(embedded)
    expect(validatorCount(topology)).toBe(4)
    devnet = await startDevnet({ validators: 4, slotMs: 1_000, execProxy: false })
    const runtime = (id: number) => ({
      node: process.execPath,
      forkchaos: packageRoot,
      anvil: anvilBinary(),
      dataDir: devnet?.nodes[id]?.dataDir as string,
      genesisTime: devnet?.genesisTimestampS as number,
      anvilGenesis: path.join(devnet?.dir as string, 'anvil-genesis.json'),
      // The embedded devnet lets the kernel pick every port (it binds 0 and reads it back).
      enginePort: 0,
      rpcPort: new URL(devnet?.nodes[id]?.rpcUrl as string).port,
    })
    const mismatches: string[] = []
    for (const node of devnet.nodes) {
      const r = renderValidator(topology, node.id, runtime(node.id))
      expect(r.name).toBe(`validator-${node.id}`)
      expect(cmdline(node.pid)).toEqual(r.consensus?.command)
      expect(cmdline(node.anvil.pid)).toEqual(r.execution?.command)
      // By construction: what startDevnet spawned is the template, rendered.
      expect(node.commands).toEqual({ consensus: r.consensus?.command, execution: r.execution?.command })
      expect(node.rpcUrls).toEqual(r.rpc)
      expect(r.pod).toEqual({ namespace: 'forkchaos', labels: { 'app.kubernetes.io/name': 'forkchaos-validator', 'forkchaos.dev/validator': String(node.id) }, volumePath: '/data' })
      // The RPC endpoint the probes read, with the port the node bound.
      expect(r.rpc).toEqual([node.rpcUrl.replace(/\/$/, '')])
    }
    // The same comparison catches a topology one flag away from the spawn: drop `--no-mining`.
    const altered = loadTopology(write('altered.yaml', fs.readFileSync(embedded, 'utf8').replace('        - --no-mining\n', '')))
    for (const node of devnet.nodes) {
      const r = renderValidator(altered, node.id, runtime(node.id))
      if (JSON.stringify(cmdline(node.anvil.pid)) !== JSON.stringify(r.execution?.command)) mismatches.push(`validator ${node.id}`)
    }
    expect(mismatches).toEqual(['validator 0', 'validator 1', 'validator 2', 'validator 3'])
  }, 90_000)

  it('the ethereumjs slot loads and renders the flags issue 9 names', () => {
    const t = loadTopology(path.join(packageRoot, 'devnet', 'topologies', 'ethereumjs.yaml'))
    const r = renderValidator(t, 2, { node: 'node', forkchaos: '/fc', ethereumjs: '/fc/node_modules/@ethereumjs/client/dist/esm/bin/cli.js', dataDir: '/d/2', genesis: '/d/genesis.json', jwt: '/d/jwt.hex', rpcPort: 8545, enginePort: 8551 })
    expect(r.execution?.command.join(' ')).toBe(
      'node /fc/node_modules/@ethereumjs/client/dist/esm/bin/cli.js --gethGenesis /d/genesis.json --dataDir /d/2/el --rpc --rpcAddr 127.0.0.1 --rpcPort 8545 --rpcEngine --rpcEngineAddr 127.0.0.1 --rpcEnginePort 8551 --rpcEngineAuth true --jwtSecret /d/jwt.hex --maxPeers 0 --discV4 false --discDns false --isSingleNode true --sync none',
    )
    expect(podsOf(t).map((p) => p.labels['forkchaos.dev/validator'])).toEqual(['0', '1', '2', '3'])
  })
})

describe('the reth topology (a command template for users with the binary)', () => {
  const file = path.join(packageRoot, 'devnet', 'topologies', 'reth.yaml')
  it("renders each validator's execution command as src/el/reth.ts's rethCommand; without reth on PATH a devnet from it is refused at load, naming the field", async () => {
    const { rethCommand } = await import('../src/el/reth.js')
    const t = loadTopology(file)
    for (const id of [0, 3]) {
      const r = renderValidator(t, id, { node: 'node', forkchaos: '/fc', dataDir: `/d/${id}`, genesis: '/d/genesis.json', jwt: '/d/jwt.hex', rpcPort: 8545 + id, enginePort: 8551 + id })
      expect(r.execution).toEqual({ client: 'reth', env: {}, command: rethCommand({ dataDir: `/d/${id}/el`, genesisFile: '/d/genesis.json', jwtFile: '/d/jwt.hex', rpcPort: 8545 + id, enginePort: 8551 + id }) })
      expect(r.rpc).toEqual([`http://127.0.0.1:${8545 + id}`])
    }
    expect(podsOf(t)).toEqual(podsOf(loadTopology(embedded)))
    const { findProgram } = await import('../src/topology/spawn.js')
    const { loadDevnetTopology } = await import('../src/targets/devnet.js')
    if (findProgram('reth', path.dirname(file))) loadDevnetTopology(file)
    else {
      const e = (() => {
        try {
          loadDevnetTopology(file)
        } catch (error) {
          return error
        }
        return null
      })()
      expect(e).toBeInstanceOf(InputError)
      expect((e as InputError).shortMessage).toBe(`${file}: \`validators.template.execution.command[0]\` is \`reth\`, which is not a program on PATH.`)
    }
  })
})

describe('the compose topology', () => {
  it('names, for each validator, services that devnet/docker-compose.yml has; its pods export like the embedded ones', async () => {
    const { parse } = await import('yaml')
    const t = loadTopology(path.join(packageRoot, 'devnet', 'topologies', 'compose.yaml'))
    const services = Object.keys((parse(fs.readFileSync(path.join(packageRoot, 'devnet', 'docker-compose.yml'), 'utf8')) as { services: Record<string, unknown> }).services)
    const rendered = Array.from({ length: validatorCount(t) }, (_, id) => renderValidator(t, id, { rpcPort: 8545 + id }))
    expect(rendered.map((r) => r.compose)).toEqual([0, 1, 2, 3].map((id) => ({ file: '../docker-compose.yml', consensus: `validator-${id}`, execution: `reth-${id}` })))
    for (const r of rendered) {
      expect(services).toContain(r.compose?.consensus)
      expect(services).toContain(r.compose?.execution)
      expect(r.consensus).toBeUndefined()
    }
    expect(podsOf(t)).toEqual(podsOf(loadTopology(embedded)))
  })
})

describe('bad topology files', () => {
  const valid = fs.readFileSync(embedded, 'utf8')
  it('more validators than the devnet limit: the file, line, field and the bound', () => {
    const file = write('big.yaml', valid.replace('count: 4', 'count: 11'))
    expect(errorOf(() => loadTopology(file))).toBe(`${file}:13: \`validators.count\` must be at most 10. Got \`11\`.`)
  })
  it('an unknown placeholder is named with its field', () => {
    const file = write('ph.yaml', valid.replace('"{enginePort}"', '"{enginPort}"'))
    expect(errorOf(() => loadTopology(file))).toMatch(new RegExp(`^${file}: \`validators\\.template\\.execution\\.command\\[4\\]\` uses the placeholder \`\\{enginPort\\}\`, which is not one of \\{id\\}, \\{name\\}`))
  })
  it('a missing pod, an unknown field, a too-long name, both processes and compose', () => {
    expect(errorOf(() => loadTopology(write('nopod.yaml', 'name: x\nvalidators:\n  - name: v0\n    consensus: { command: [a] }\n    rpc: ["http://127.0.0.1:1"]\n')))).toMatch(/nopod\.yaml:3: `validators\[0\]\.pod` is required\.$/)
    expect(errorOf(() => loadTopology(write('extra.yaml', valid.replace('    rpc: [', '    rpcs: 1\n    rpc: ['))))).toMatch(/extra\.yaml:51: `validators\.template\.rpcs` is not a known field of validators\.template\.$/)
    expect(errorOf(() => loadTopology(write('long.yaml', valid.replace('name: validator-{id}', `name: ${'v'.repeat(64)}`))))).toMatch(/long\.yaml:15: `validators\.template\.name` must be at most 63 characters long\. Got 64\.$/)
    const both = write('both.yaml', 'name: x\nvalidators:\n  - name: v0\n    consensus: { command: [a] }\n    compose: { file: c.yml, consensus: v0 }\n    pod: { namespace: ns, labels: { a: b } }\n    rpc: ["http://127.0.0.1:1"]\n')
    expect(errorOf(() => loadTopology(both))).toMatch(/both\.yaml:3: `validators\[0\]` must have either `consensus` \(a command, with `execution`\) or `compose` \(services\)\. Got both\.$/)
  })
  it('a label value that is not a Kubernetes label once rendered', () => {
    const t = loadTopology(write('label.yaml', valid.replace('"{id}"', '"v {id}"')))
    expect(errorOf(() => renderValidator(t, 1))).toMatch(/`validators\.template\.pod\.labels\.forkchaos\.dev\/validator` must be a Kubernetes label value .* Got `v 1` for validator 1\.$/)
  })
  it('a value a command needs but was not given is named', () => {
    const t = loadTopology(embedded)
    expect(errorOf(() => renderValidator(t, 0, { node: 'n', forkchaos: '/f' }))).toMatch(/`validators\.template\.consensus\.command\[2\]` uses `\{dataDir\}`, which has no value here/)
  })
  it('not YAML, a list at the top, a file over 64 KiB', () => {
    expect(errorOf(() => loadTopology(write('bad.yaml', 'name: [x\n')))).toMatch(/bad\.yaml:\d+: the file is not valid YAML/)
    expect(errorOf(() => loadTopology(write('list.yaml', '- a\n')))).toMatch(/list\.yaml:1: the top level must be a mapping\. Got a list\./)
    expect(errorOf(() => loadTopology(write('key.yaml', 'name: x\n? { a: 1 }\n: y\n')))).toMatch(/key\.yaml:2: a key must be a plain name, not a mapping\.$/)
    expect(errorOf(() => loadTopology(write('tag.yaml', 'name: !!binary eA==\n')))).toMatch(/tag\.yaml:1: the tag `!!binary` is not allowed; a topology file uses plain YAML values\.$/)
    expect(errorOf(() => loadTopology(write('huge.yaml', `# ${'x'.repeat(70_000)}\n`)))).toMatch(/the file is larger than 65536 bytes \(64 KiB\), the limit for a topology file\./)
  })
})

describe('damaged topology and endpoints files (fast-check, fixed seed)', () => {
  it('a flipped, cut or spliced embedded.yaml loads or is refused with an InputError naming the file: never another error', async () => {
    const fc = await import('fast-check')
    const { loadEndpoints } = await import('../src/topology/endpoints.js')
    const base = fs.readFileSync(embedded)
    const endpoints = Buffer.from('name: c\npollInterval: 250ms\nendpoints:\n  - { name: v0, url: "http://127.0.0.1:8545", labels: { a: b } }\n  - { url: "http://127.0.0.1:8546" }\n')
    const damaged = (bytes: Buffer) =>
      fc.oneof(
        fc.record({ at: fc.nat(bytes.length - 1), byte: fc.integer({ min: 0, max: 255 }) }).map(({ at, byte }) => Buffer.concat([bytes.subarray(0, at), Buffer.from([byte]), bytes.subarray(at + 1)])),
        fc.nat(bytes.length).map((at) => bytes.subarray(0, at)),
        fc.record({ at: fc.nat(bytes.length), text: fc.constantFrom('{', '}', ': ', '\n  - ', '*a', '&a ', '"{id}"', '{x}', '\t', '---\n', '!!binary ', '99999999999999999999', '[]') }).map(({ at, text }) => Buffer.concat([bytes.subarray(0, at), Buffer.from(text), bytes.subarray(at)])),
      )
    let refused = 0
    let loaded = 0
    for (const [name, bytes, load] of [['t.yaml', base, loadTopology], ['e.yaml', endpoints, loadEndpoints]] as const) {
      const file = path.join(tmp, `fuzz-${name}`)
      fc.assert(
        fc.property(damaged(bytes), (input) => {
          fs.writeFileSync(file, input)
          try {
            const t = load(file)
            if ('validators' in t) for (let id = 0; id < validatorCount(t); id++) renderValidator(t, id, { node: 'n', forkchaos: '/f', anvil: 'a', dataDir: '/d', genesisTime: 1, anvilGenesis: 'ag', enginePort: 0, rpcPort: 1, genesis: 'g', jwt: 'j', p2pPort: 2, peers: '' })
            loaded++
          } catch (e) {
            if (!(e instanceof InputError)) throw e
            expect(e.shortMessage.startsWith(file)).toBe(true)
            refused++
          }
        }),
        { seed: 9, numRuns: 400 },
      )
    }
    // Both outcomes happen: the damage is not all harmless, nor all fatal.
    expect(refused).toBeGreaterThan(50)
    expect(loaded).toBeGreaterThan(50)
  }, 60_000)
})

describe('a topology refused at load for a devnet (exit 2, file and field), before anything starts', () => {
  const valid = fs.readFileSync(embedded, 'utf8')
  const plan = async (text: string, validators?: number) => {
    const { loadDevnetTopology } = await import('../src/targets/devnet.js')
    const file = write(`plan-${Math.random().toString(36).slice(2)}.yaml`, text)
    try {
      loadDevnetTopology(file, validators)
    } catch (e) {
      expect(e).toBeInstanceOf(InputError)
      expect((e as InputError).exitCode).toBe(2)
      return (e as InputError).shortMessage.replace(file, '<file>')
    }
    return 'loaded'
  }
  it('a size a devnet does not run, a program that is not there, a placeholder it does not know, compose services', async () => {
    expect(await plan(valid)).toBe('loaded')
    expect(await plan(valid.replace('count: 4', 'count: 5'))).toBe('<file>: `validators.count` must be 3f+1 validators for f = 1–3: 4, 7, 10. Got `5`.')
    expect(await plan(valid, 7)).toBe('loaded')
    expect(await plan(valid.replace('"{node}", "{forkchaos}', '"no-such-program-fc", "{forkchaos}'))).toBe('<file>: `validators.template.consensus.command[0]` is `no-such-program-fc`, which is not a program on PATH.')
    expect(await plan(valid.replace('"{node}", "{forkchaos}', '"./bin/no-such", "{forkchaos}'))).toBe(`<file>: \`validators.template.consensus.command[0]\` is \`./bin/no-such\`, which is not an executable file (looked for ${path.join(tmp, 'bin', 'no-such')}).`)
    expect(await plan(valid.replace('"{enginePort}"', '"{enginPort}"'))).toMatch(/^<file>: `validators\.template\.execution\.command\[4\]` uses the placeholder `\{enginPort\}`, which is not one of /)
    expect(await plan(valid.replace('"{enginePort}"', '"{peers}"'))).toBe("<file>: `validators.template.execution` uses `{peers}`, which only a consensus command may use (the execution client is behind the engine link; it has no peers of forkchaos's).")
    expect(await plan(valid.replace('client: anvil', 'client: ethereumjs'))).toBe('<file>: `validators.template.execution.command` must use `{rpcPort}`: an Engine API client serves eth_* there, which the consensus node and the probes read.')
    const compose = fs.readFileSync(path.join(packageRoot, 'devnet', 'topologies', 'compose.yaml'), 'utf8')
    expect(await plan(compose)).toMatch(/^<file>: `validators\.template\.compose` names compose services: forkchaos starts validators from commands/)
  })

  it('the CLI: devnet up --topology with a missing program, and run --target with --topology, exit 2 naming both', async () => {
    const { spawnSync } = await import('node:child_process')
    const cli = (args: string[]) => spawnSync(process.execPath, ['bin/forkchaos.js', ...args], { cwd: packageRoot, encoding: 'utf8', env: { ...process.env, FORKCHAOS_STATE_DIR: tmp } })
    const bad = write('cli-bad.yaml', valid.replace('"{node}", "{forkchaos}', '"no-such-program-fc", "{forkchaos}'))
    const up = cli(['devnet', 'up', '--topology', bad])
    expect([up.status, up.stderr.split('\n')[0]]).toEqual([2, `forkchaos: ${bad}: \`validators.template.consensus.command[0]\` is \`no-such-program-fc\`, which is not a program on PATH.`])
    // One of the flags (the loop in run.ts names each the same way: --el, --fork-url, --topology).
    for (const flag of [['--topology', embedded]]) {
      const run = cli(['run', 'scenarios/devnet/kill-restart.yaml', '--target', 'e.yaml', ...flag])
      expect([run.status, run.stderr.split('\n')[0]]).toEqual([2, `forkchaos: \`--target e.yaml\` and \`${flag[0]}\` cannot be used together: \`--target\` judges nodes forkchaos did not start (their clients, chain and size are the cluster's), \`${flag[0]}\` says what forkchaos would start.`])
      expect(run.stderr).not.toMatch(/\n\s+at /)
    }
  }, 30_000)
})
