import * as fs from 'node:fs'
import * as path from 'node:path'
import { packageRoot } from '../contracts.js'
import type { NodeStatus } from '../devnet/node/node.js'
import { InfraError, InputError, PrerequisiteMissingError } from '../errors.js'
import { onTeardown } from '../lifecycle.js'
import { type RpcProxy, startRpcProxy } from '../proxy/jsonrpc/proxy.js'
import { createTcpProxy, type TcpProxy } from '../proxy/tcp/proxy.js'
import { createPrng, type Prng } from '../util/prng.js'
import { type AnvilInstance, anvilBinary } from './anvil.js'
import { EL_GRACE_MS, startElCommand } from '../el/command.js'
import { ethereumjsBin, freePort } from '../el/ethereumjs.js'
import { writeAnvilGenesis, writeJwtSecret, writePostMergeGenesis } from '../el/genesis.js'
import { type ElName, elSpecs, EL_NAMES, isElName } from '../el/index.js'
import { type ClientKind, type DevnetPlan, planDevnet, type StaticValues } from '../topology/spawn.js'
import { loadTopology, type Placeholder, renderValidator, type Topology } from '../topology/topology.js'
import { checkDevnetSize, defaultDevnetSize } from './devnet-size.js'
import { create as createProcess, type Instance } from '../process/Instance.js'
import { signalGroup, stateDir } from '../process/registry.js'
import { createRpc, type Rpc } from './rpc.js'
import { clockSkewEnv, FAKETIME_LIB, faketimeLib } from './devnet/faketime.js'
import { nodeStatus } from './devnet/status.js'

export { clockSkewEnv, FAKETIME_LIB, faketimeLib }

/**
 * The embedded reference devnet: N validators on this machine, each a consensus node process
 * (src/devnet/node) plus its own Anvil as execution layer, reached through a JSON-RPC fault
 * proxy (so a byzantine proposer can be made to lie about what it executed). Every directed
 * peer link i → j goes through its own TCP fault proxy: node i dials proxy(i→j), which forwards
 * to node j's p2p port, so partitions, loss and latency happen on the wire, per direction.
 */
export type DevnetOptions = {
  validators?: number
  slotMs?: number
  seed?: number
  /** Root directory for data dirs and logs. Default: a fresh temp dir under the state dir. */
  dir?: string
  /** Per-validator config overrides (test builds: `unsafe`, byzantine switches). */
  overrides?: Record<number, Record<string, unknown>>
  /** Milliseconds to wait for every node's READY line. Default 10 s + 2.5 s per validator (20 s for 4): they all start at once. */
  startTimeoutMs?: number
  /**
   * Put a JSON-RPC fault proxy (in this process) between a validator and its Anvil: `true` (the
   * default, `devnet up`: any drill may need it) for every validator, `false` for none, or the
   * ids of the validators that get one. Without, a validator calls its Anvil directly, which
   * takes this process off its execution calls (under load, each call through the proxy waits
   * for this process's event loop); its `node.exec` then throws. A scenario runner passes
   * `execProxiesFor(its faults)`. With an Engine API client (`el`) every validator gets one.
   */
  execProxy?: boolean | readonly number[]
  /**
   * Every validator's execution client: `anvil` (the default: driven with Anvil's own methods)
   * or `ethereumjs` (npm @ethereumjs/client, driven over the Engine API with the devnet's JWT;
   * its engine link goes through the exec proxy). `reth` is a command template only
   * (src/el/reth.ts, devnet/docker-compose.yml). The default slot follows it (`elSpecs`).
   */
  el?: ElName
  /**
   * The topology the validators are started from: a topology file (or one loaded), each
   * validator a consensus command and an execution command with placeholders that forkchaos
   * fills (src/topology/topology.ts). Default: the shipped one of `el`,
   * devnet/topologies/embedded.yaml (anvil) or ethereumjs.yaml. `validators` sets a template
   * topology's count.
   */
  topology?: string | Topology
}

/** The shipped topology of each startable execution client. */
export const shippedTopology = (el: ElName) => path.join(packageRoot, 'devnet', 'topologies', `${el === 'anvil' ? 'embedded' : el}.yaml`)

/** The values of `{node}`, `{forkchaos}`, `{anvil}`, `{ethereumjs}` (the last two looked up when used). */
export const staticValues = (): StaticValues => ({ node: process.execPath, forkchaos: packageRoot, anvil: anvilBinary, ethereumjs: ethereumjsBin })

/**
 * Loads and checks a topology for a devnet (exit 2 naming file and field), before anything
 * starts: `forkchaos run` and `devnet up` call it at load.
 */
export function loadDevnetTopology(topology: string | Topology, validators?: number): DevnetPlan {
  return planDevnet(typeof topology === 'string' ? loadTopology(topology) : topology, staticValues(), validators)
}

/** The fault types that act on a validator's execution link (`node.exec`). */
export const EXEC_PROXY_FAULTS: ReadonlySet<string> = new Set(['byzantine.state-root-flip'])

/**
 * Which validators a scenario's faults (fixed and random) need execution proxies for: `false`
 * when no fault acts on an execution link, the targeted ids when each such fault names its
 * validator, `true` (all) when one does not (a soak draws it from the seed).
 */
export function execProxiesFor(faults: Iterable<{ type: string; target?: unknown }>): boolean | number[] {
  const ids = new Set<number>()
  for (const f of faults) {
    if (!EXEC_PROXY_FAULTS.has(f.type)) continue
    const m = /^(?:validator-)?(\d+)$/.exec(String(f.target ?? ''))
    if (!m) return true
    ids.add(Number(m[1]))
  }
  return ids.size === 0 ? false : [...ids].sort((a, b) => a - b)
}

/** Stands in for `node.exec` of a validator started without an execution proxy: any use says why it is not there. */
function directExec(id: number): RpcProxy {
  return new Proxy({} as RpcProxy, {
    get(_, key) {
      // Promise checks, JSON and inspection look for these; they get nothing, not an error.
      if (typeof key === 'symbol' || key === 'then' || key === 'toJSON') return undefined
      throw new InfraError(`Validator ${id} calls its Anvil directly: this devnet was started without an execution proxy for it (\`execProxy\`).`, {
        hint: `Start it with \`execProxy: true\` or [${id}] (a scenario runner does so for the validators a fault of type ${[...EXEC_PROXY_FAULTS].join(', ')} targets).`,
      })
    },
  })
}

export type { NodeStatus }
export { checkDevnetSize, defaultDevnetSize, devnetSizes, faultToleranceOf, maxValidators } from './devnet-size.js'

export type DevnetNode = {
  readonly id: number
  readonly address: `0x${string}`
  rpcUrl: string
  rpc: Rpc
  p2p: string
  pid: number
  /** Its execution client (`el`): the Anvil, or for ethereumjs its plain RPC port in the same shape (`url`, `pid`, `stop`). */
  anvil: AnvilInstance
  /** Which execution client it runs (the topology's `execution.client`). */
  el: ClientKind
  /** The argv of its two processes as spawned: the topology's commands, rendered. */
  commands: { consensus: string[]; execution: string[] }
  /** The topology's `rpc` endpoints of this validator, rendered: what a probe over eth_* only reads. */
  rpcUrls: string[]
  /** The execution client's own Engine API URL (not the proxy), for Engine API clients. */
  engineUrl?: string
  /** The fault proxy on the validator's execution link; throws when it was started without one (`execProxy`). */
  exec: RpcProxy
  /** Whether `exec` is a real proxy. */
  execProxied: boolean
  dataDir: string
  /** Extra environment for the node and its Anvil (e.g. libfaketime for clock skew). */
  env: Record<string, string>
  overrides: Record<string, unknown>
  running: boolean
}

export type Devnet = {
  readonly nodes: DevnetNode[]
  readonly slotMs: number
  readonly genesisTimestampS: number
  readonly dir: string
  /** The topology it was started from (its count set to the devnet's size). */
  readonly topology: Topology
  /** link(i, j): the TCP proxy that carries what node i sends to node j. */
  link(from: number, to: number): TcpProxy
  links(): { from: number; to: number; proxy: TcpProxy }[]
  status(): Promise<(NodeStatus | { id: number; down: true; error: string })[]>
  /** Stops a validator (node and its Anvil); `signal` SIGKILL by default, like a crash. */
  stopNode(id: number, signal?: NodeJS.Signals): Promise<void>
  /** Starts a stopped validator again with the same identity and data directory. */
  startNode(id: number, options?: { env?: Record<string, string>; overrides?: Record<string, unknown> }): Promise<void>
  /** SIGSTOP / SIGCONT a validator's processes (a wedged node: alive, silent). */
  wedge(id: number, on: boolean): void
  prng: Prng
  down(): Promise<void>
}

/**
 * The test-only validator keys: `devnet/keys.json` (the four the compose topology uses, each with
 * its address), then the same public pattern (0x1000…0<id + 1>) for the validators past it.
 */
const keys = (n: number) => {
  const listed = (JSON.parse(fs.readFileSync(path.join(packageRoot, 'devnet', 'keys.json'), 'utf8')) as { validators: { id: number; privateKey: `0x${string}`; address?: `0x${string}` }[] }).validators
  return Array.from({ length: n }, (_, id): { id: number; privateKey: `0x${string}`; address?: `0x${string}` } => listed[id] ?? { id, privateKey: `0x1${(id + 1).toString(16).padStart(63, '0')}` as `0x${string}` })
}
const genesis = () => JSON.parse(fs.readFileSync(path.join(packageRoot, 'devnet', 'genesis.json'), 'utf8')) as { chainId: number; mnemonic: string; accounts: number; balanceEth: number; gasLimit: number }

export async function startDevnet(options: DevnetOptions = {}): Promise<Devnet> {
  if (options.validators !== undefined) checkDevnetSize(options.validators, 'validators')
  const el = options.el ?? 'anvil'
  if (!isElName(el)) throw new InputError(`\`el\` must be one of ${EL_NAMES.join(', ')}. Got \`${String(el)}\`.`)
  if (!elSpecs[el].startable && options.topology === undefined)
    throw new InputError(`forkchaos cannot start \`${el}\` itself: it is a command template for users with the binary (src/el/reth.ts, devnet/docker-compose.yml).`, {
      hint: 'Use `--el anvil` or `--el ethereumjs`, or run devnet/docker-compose.yml.',
    })
  // One code path: the embedded devnet is devnet/topologies/embedded.yaml, ethereumjs its own file.
  const plan = loadDevnetTopology(options.topology ?? shippedTopology(el), options.validators ?? (options.topology === undefined ? defaultDevnetSize : undefined))
  const n = plan.n
  const clients = Array.from({ length: n }, (_, id) => plan.client(id))
  const slotMs = options.slotMs ?? Math.max(...clients.map((c) => (c === 'anvil' ? elSpecs.anvil.defaultSlotMs : elSpecs.ethereumjs.defaultSlotMs)))
  if (!(slotMs >= 200 && slotMs <= 60_000)) throw new InputError(`\`slot\` must be between 200ms and 60s. Got \`${slotMs}ms\`.`)
  const prng = createPrng(options.seed ?? 1)
  // Engine API clients: every engine link is proxied (a few calls per block), so the byzantine
  // faults can lie on a proposer's link and read each honest EL's answers on the others'.
  const proxiedExec = (id: number) => {
    if (clients[id] !== 'anvil') return true
    const o = options.execProxy ?? true
    return typeof o === 'boolean' ? o : o.includes(id)
  }
  const usedAnywhere = (ph: Placeholder) => Array.from({ length: n }, (_, id) => plan.uses(id, 'consensus', ph) || plan.uses(id, 'execution', ph)).some(Boolean)
  const dir = options.dir ?? fs.mkdtempSync(path.join(stateDir(), 'devnet-'))
  fs.mkdirSync(dir, { recursive: true })
  const g = genesis()
  const genesisTimestampS = Math.floor(Date.now() / 1000)
  const main = path.join(packageRoot, 'dist', 'src', 'devnet', 'node', 'main.js')
  if (!fs.existsSync(main)) throw new InfraError('The devnet node is not built.', { context: { Entry: main }, hint: 'Run `npm run build`.' })
  const statics = staticValues()
  const fixed: Partial<Record<Placeholder, string>> = {
    node: statics.node,
    forkchaos: statics.forkchaos,
    ...(usedAnywhere('anvil') ? { anvil: (statics.anvil as () => string)() } : {}),
    ...(usedAnywhere('ethereumjs') ? { ethereumjs: (statics.ethereumjs as () => string)() } : {}),
  }
  /** The ports forkchaos picks for a validator, once (a restart keeps them): only those its commands use; Anvil's engine port is 0 (it prints the one it bound). */
  const ports = new Map<number, { rpcPort?: number; p2pPort?: number; enginePort?: number }>()
  const pickPorts = async (id: number) => {
    const taken = new Set<number>()
    const pick = async () => {
      let p = await freePort()
      while (taken.has(p)) p = await freePort()
      taken.add(p)
      return p
    }
    const uses = (ph: Placeholder) => plan.uses(id, 'consensus', ph) || plan.uses(id, 'execution', ph)
    const picked = {
      ...(uses('rpcPort') ? { rpcPort: await pick() } : {}),
      ...(uses('p2pPort') ? { p2pPort: await pick() } : {}),
      enginePort: clients[id] === 'anvil' ? 0 : await pick(),
    }
    ports.set(id, picked)
    return picked
  }

  const validatorKeys = keys(n)
  // The listed keys name their addresses: deriving one costs the curve's table of multiples of
  // G (~70 ms of CPU here) before anything starts. viem's accounts load only for the others (7, 10).
  const derive = validatorKeys.every((k) => k.address) ? undefined : (await import('viem/accounts')).privateKeyToAccount
  const validators = validatorKeys.map((k) => ({ id: k.id, address: k.address ?? (derive as NonNullable<typeof derive>)(k.privateKey).address }))
  const linkProxies = new Map<string, TcpProxy>()
  const processes = new Map<number, Instance<{ rpc: string; p2p: string }>>()
  const nodes: DevnetNode[] = []
  let stopped = false

  const undo = onTeardown('devnet', () => down())

  // Links first: their ports are bound now, so node configs can name them; upstreams follow.
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++)
      if (i !== j)
        linkProxies.set(`${i}->${j}`, await createTcpProxy({ name: `link-${i}-${j}`, listen: '127.0.0.1:0', upstream: '127.0.0.1:9', enabled: true, prng: prng.fork(`link-${i}-${j}`) }))

  // Engine API clients (or a topology naming {genesis} / {jwt}): one post-merge genesis and one JWT secret for the whole devnet.
  const engineFiles = clients.every((c) => c === 'anvil') && !usedAnywhere('genesis') && !usedAnywhere('jwt') ? null : { genesisFile: writePostMergeGenesis(dir, g, genesisTimestampS), jwt: writeJwtSecret(dir) }
  const anvilGenesisFile = usedAnywhere('anvilGenesis') ? writeAnvilGenesis(dir, g, genesisTimestampS) : undefined

  async function launch(id: number, env: Record<string, string>, overrides: Record<string, unknown>) {
    const dataDir = path.join(dir, `validator-${id}`)
    fs.mkdirSync(dataDir, { recursive: true })
    const client = clients[id] as ClientKind
    const configFile = path.join(dataDir, 'config.json')
    // A port picked between `freePort` and the client's bind may be taken meanwhile: pick again (3 tries).
    let started: Awaited<ReturnType<typeof startElCommand>> | undefined
    let port = ports.get(id) ?? (await pickPorts(id))
    const values = () => ({
      ...fixed,
      dataDir,
      genesisTime: String(genesisTimestampS),
      ...(engineFiles ? { genesis: engineFiles.genesisFile, jwt: engineFiles.jwt.file } : {}),
      ...(anvilGenesisFile ? { anvilGenesis: anvilGenesisFile } : {}),
      peers: validators.filter((v) => v.id !== id).map((v) => linkProxies.get(`${id}->${v.id}`)?.listen).join(','),
      enginePort: String(port.enginePort ?? 0),
      // Not picked (not in a command): the consensus node's, known from its READY line.
      rpcPort: port.rpcPort === undefined ? '{rpcPort}' : String(port.rpcPort),
      p2pPort: port.p2pPort === undefined ? '{p2pPort}' : String(port.p2pPort),
    })
    const matchOf = (argv: string[]) => argv.find((a) => a.includes(configFile)) ?? argv.find((a) => a.includes(dataDir)) ?? (argv[0] as string)
    for (let attempt = 1; !started; attempt++) {
      const execution = renderValidator(plan.topology, id, { ...values(), engineUrl: '{engineUrl}' }).execution as { command: string[]; env: Record<string, string> }
      try {
        started = await startElCommand({ label: `devnet-${client === 'other' ? 'el' : client}-${id}`, client, command: execution.command, env: { ...execution.env, ...env }, logDir: path.join(dir, 'logs'), match: matchOf(execution.command), ...(port.rpcPort !== undefined && plan.uses(id, 'execution', 'rpcPort') ? { rpcPort: port.rpcPort } : {}), ...(port.enginePort ? { enginePort: port.enginePort } : {}) })
      } catch (error) {
        if (!(attempt < 3 && error instanceof InfraError && /EADDRINUSE/.test(error.message) && client !== 'anvil')) throw error
        port = await pickPorts(id)
      }
    }
    const anvil = started.anvil
    const execProxy = proxiedExec(id)
    // The exec proxy sits on the execution link: Anvil's JSON-RPC, or an Engine API client's engine port (the JWT passes through).
    const exec = execProxy ? await startRpcProxy({ upstream: started.engineUrl ?? anvil.url, prng: prng.fork(`exec-${id}`), name: `exec-${id}` }) : directExec(id)
    const executionUrl = execProxy ? exec.url : (started.engineUrl ?? anvil.url)
    const rendered = renderValidator(plan.topology, id, { ...values(), engineUrl: executionUrl })
    const consensusUses = (ph: Placeholder) => plan.uses(id, 'consensus', ph)
    const config = {
      id,
      privateKey: validatorKeys[id]?.privateKey,
      validators,
      p2pListen: `127.0.0.1:${consensusUses('p2pPort') ? port.p2pPort : 0}`,
      peers: validators.filter((v) => v.id !== id).map((v) => ({ id: v.id, address: linkProxies.get(`${id}->${v.id}`)?.listen })),
      rpcListen: `127.0.0.1:${consensusUses('rpcPort') ? port.rpcPort : 0}`,
      executionUrl,
      ...(engineFiles && started.engineUrl
        ? { execution: { kind: 'engine-api', engineUrl: executionUrl, rpcUrl: anvil.url, jwtSecretFile: engineFiles.jwt.file } }
        : {}),
      dataDir,
      slotMs,
      genesisTimestampS,
      chainId: g.chainId,
      // Unique per devnet (its state folder's name): a validator left over from another devnet on
      // this machine that dials a reused port is refused at hello, not taken for a peer.
      networkId: path.basename(dir).replace(/[^A-Za-z0-9_-]/g, '_').slice(-64) || 'devnet',
      maxDriftMs: Math.max(5_000, 3 * slotMs),
      mempool: { maxTotal: 20_000, maxPerSender: 256 },
      ...overrides,
    }
    fs.writeFileSync(configFile, JSON.stringify(config, null, 2))
    const consensus = rendered.consensus as { command: string[]; env: Record<string, string> }
    const logFile = path.join(dir, 'logs', `node-${id}.log`)
    const log = fs.openSync(logFile, 'a')
    // The process owner's: its own group, a pid file, the start timeout on its READY line.
    const child = createProcess<{ rpc: string; p2p: string }>({
      kind: 'validator',
      label: `devnet-node-${id}`,
      command: consensus.command[0] as string,
      args: consensus.command.slice(1),
      match: matchOf(consensus.command),
      env: { ...consensus.env, ...env },
      stderr: log,
      logFile,
      startTimeoutMs: options.startTimeoutMs ?? 10_000 + 2_500 * n,
      onOutput: (c) => fs.appendFileSync(logFile, c),
      ready: (output) => {
        const m = /READY (\{.*\})/.exec(output)
        return m ? (JSON.parse(m[1] as string) as { rpc: string; p2p: string }) : undefined
      },
    })
    processes.set(id, child)
    const ready = await child.start().catch(async (error) => {
      // A node that did not start leaves nothing behind: its execution client and proxy go too.
      if (execProxy) await exec.close().catch(() => {})
      await anvil.stop(0).catch(() => {})
      throw error
    }).finally(() => fs.closeSync(log))
    // Every link into this node now forwards to its (possibly new) p2p port.
    for (let i = 0; i < n; i++) if (i !== id) linkProxies.get(`${i}->${id}`)?.update({ upstream: ready.p2p })
    const existing = nodes[id]
    const rpcUrls = renderValidator(plan.topology, id, { ...values(), engineUrl: executionUrl, rpcPort: port.rpcPort ?? new URL(ready.rpc).port, p2pPort: port.p2pPort ?? new URL(`tcp://${ready.p2p}`).port }).rpc
    const node: DevnetNode = {
      id,
      address: validators[id]?.address as `0x${string}`,
      rpcUrl: ready.rpc,
      rpc: createRpc(ready.rpc, { owned: true }),
      p2p: ready.p2p,
      pid: child.pid as number,
      anvil,
      el: client,
      commands: { consensus: consensus.command, execution: started.command },
      rpcUrls,
      ...(started.engineUrl ? { engineUrl: started.engineUrl } : {}),
      exec,
      execProxied: execProxy,
      dataDir,
      env,
      overrides,
      running: true,
    }
    if (existing) Object.assign(existing, node)
    else nodes[id] = node
  }

  async function stopNode(id: number, signal: NodeJS.Signals = 'SIGKILL') {
    const node = nodes[id]
    const child = processes.get(id)
    if (!node) throw unknownValidator(id)
    if (!child) return
    node.running = false
    processes.delete(id)
    // SIGCONT first (a wedged node must see the signal), then `signal`, SIGKILL after 3 s.
    await child.stop({ signal, graceMs: signal === 'SIGKILL' ? 0 : 3_000 })
    if (node.execProxied) await node.exec.close()
    await node.anvil.stop(signal === 'SIGKILL' ? 0 : EL_GRACE_MS[node.el])
  }

  /** A fault or caller named a validator this devnet does not have. */
  function unknownValidator(id: number) {
    return new InputError(`No validator ${id}: this devnet has validators 0–${n - 1} (\`target.validators\`: ${n}).`)
  }

  async function down() {
    if (stopped) return
    stopped = true
    undo()
    // An Engine API client takes ~10 s to exit after SIGTERM: those validators stop together.
    if (clients.every((c) => c === 'anvil')) {
      for (const node of nodes) if (node?.running) await stopNode(node.id, 'SIGTERM').catch(() => {})
    } else {
      await Promise.all(nodes.filter((node) => node?.running).map((node) => stopNode(node.id, 'SIGTERM').catch(() => {})))
    }
    for (const proxy of linkProxies.values()) await proxy.stop().catch(() => {})
  }

  try {
    await Promise.all(validators.map((v) => launch(v.id, {}, options.overrides?.[v.id] ?? {})))
  } catch (error) {
    await down()
    throw error
  }

  return {
    nodes,
    slotMs,
    genesisTimestampS,
    dir,
    topology: plan.topology,
    prng,
    link: (from, to) => {
      const proxy = linkProxies.get(`${from}->${to}`)
      if (!proxy) throw new InputError(`No link ${from} → ${to}: validators are 0–${n - 1}.`)
      return proxy
    },
    links: () => [...linkProxies].map(([key, proxy]) => {
      const [from, to] = key.split('->').map(Number) as [number, number]
      return { from, to, proxy }
    }),
    async status() {
      return Promise.all(
        nodes.map(async (node) => {
          if (!node.running) return { id: node.id, down: true as const, error: 'stopped' }
          try {
            return await nodeStatus(node)
          } catch (error) {
            return { id: node.id, down: true as const, error: (error as Error).message.split('\n')[0] as string }
          }
        }),
      )
    },
    stopNode,
    async startNode(id, opts = {}) {
      const node = nodes[id]
      if (!node) throw unknownValidator(id)
      if (node.running) await stopNode(id)
      // A test build stays what it is across restarts; `opts.overrides` adds to it (a byzantine switch).
      await launch(id, opts.env ?? {}, { ...(options.overrides?.[id] ?? {}), ...(opts.overrides ?? {}) })
    },
    wedge(id, on) {
      const node = nodes[id]
      if (!node) throw unknownValidator(id)
      if (!node.running) return
      for (const pid of [node.pid, node.anvil.pid]) signalGroup(pid, on ? 'SIGSTOP' : 'SIGCONT')
    },
    down,
  }
}


