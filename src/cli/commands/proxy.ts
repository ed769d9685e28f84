import * as fs from 'node:fs'
import type { Command } from 'commander'
import { parse } from 'yaml'
import { InputError } from '../../errors.js'
import { onTeardown } from '../../lifecycle.js'
import { createMetrics } from '../../metrics/metrics.js'
import { type ChaosApi, createChaosApi } from '../../proxy/chaos-api.js'
import { type RpcProxy, startRpcProxy } from '../../proxy/jsonrpc/proxy.js'
import { type ControlServer, startControlServer } from '../../proxy/server.js'
import { createProxyRegistry, type ProxyRegistry } from '../../proxy/tcp/registry.js'
import { createPrng } from '../../util/prng.js'
import { redactUrl } from '../../util/redact.js'
import { parseSeed } from '../options.js'

/** `--config` file: JSON-RPC proxies and TCP proxies to start with. */
export type Config = { rpc: { name: string; upstream: string; listen?: string }[]; tcp: { name: string; listen: string; upstream: string; enabled?: boolean }[] }

export function proxyCommand(program: Command) {
  program
    .command('proxy')
    .description('Start the fault proxies and the control server: toxiproxy-compatible API, chaos API (/chaos/*) and /metrics. Ctrl-C reverts every active fault.')
    .option('--listen <host:port>', 'control server address', '127.0.0.1:8474')
    .option('--config <file>', 'YAML/JSON: { rpc: [{name, upstream, listen?}], tcp: [{name, listen, upstream}] }')
    .option('--seed <n>', 'seed for every random choice of the proxies')
    .action(async (flags: { listen: string; config?: string; seed?: string }) => {
      const seed = parseSeed(flags.seed)
      const config = flags.config ? loadConfig(flags.config) : { rpc: [], tcp: [] }
      const running = await startProxyServer({ listen: flags.listen, seed, config })
      onTeardown('control server', () => running.close())
      const { server, rpc, tcp } = running
      process.stdout.write(`forkchaos proxy: control ${server.url} (toxiproxy API, /chaos/*, /metrics) · seed ${seed}\n`)
      for (const [name, p] of rpc) process.stdout.write(`  rpc ${name.padEnd(12)} ${p.url} (ws ${p.wsUrl}) → ${redactUrl(config.rpc.find((r) => r.name === name)?.upstream ?? '')}\n`)
      for (const p of tcp.list()) process.stdout.write(`  tcp ${p.name.padEnd(12)} ${p.listen} → ${p.upstream}\n`)
      process.stdout.write('Ctrl-C reverts every active fault and stops.\n')
      await new Promise<never>(() => {})
    })
}

/** What `forkchaos proxy` runs: the control server with its proxies, chaos API and metrics. */
export type ProxyServer = {
  server: ControlServer
  rpc: Map<string, RpcProxy>
  tcp: ProxyRegistry
  chaos: ChaosApi
  /** Reverts every active fault, stops every proxy and the control server. Idempotent. */
  close(): Promise<void>
}

/**
 * Starts what `forkchaos proxy` serves, in-process (the CLI and the fuzz harness both call
 * this): JSON-RPC proxies and TCP proxies from `config`, the toxiproxy API, the chaos API and
 * /metrics on `listen`. Every random choice derives from `seed`.
 */
export async function startProxyServer(options: { listen: string; seed: number; config?: Config }): Promise<ProxyServer> {
  const config = options.config ?? { rpc: [], tcp: [] }
  const prng = createPrng(options.seed)
  const metrics = createMetrics()
  const rpc = new Map<string, RpcProxy>()
  const tcp = createProxyRegistry({ prng: prng.fork('tcp') })
  const chaos = createChaosApi({ tcp, rpc, metrics, prng: prng.fork('chaos') })
  const server = await startControlServer({ listen: options.listen, proxies: tcp, registerRoutes: [chaos.register] })
  let closing: Promise<void> | undefined
  const close = () =>
    (closing ??= (async () => {
      await chaos.revertAll()
      for (const p of rpc.values()) await p.close()
      await server.close()
    })())
  try {
    for (const entry of config.rpc) {
      const proxy = await startRpcProxy({
        upstream: entry.upstream,
        prng: prng.fork(`rpc.${entry.name}`),
        name: entry.name,
        ...(entry.listen ? { listen: entry.listen } : {}),
        onRequest: (event) => metrics.observeRpc(entry.name, event),
      })
      metrics.watchRpcProxy(entry.name, () => proxy.stats().requests)
      rpc.set(entry.name, proxy)
    }
    if (config.tcp.length > 0) await tcp.populate(config.tcp)
  } catch (error) {
    await close()
    throw error
  }
  return { server, rpc, tcp, chaos, close }
}

function loadConfig(file: string): Config {
  let raw: unknown
  try {
    raw = parse(fs.readFileSync(file, 'utf8'))
  } catch (error) {
    throw new InputError(`${file}: cannot read the proxy config: ${(error as Error).message.split('\n')[0]}`)
  }
  const fail = (field: string, expected: string, got: unknown) =>
    new InputError(`${file}: \`${field}\` must be ${expected}. Got \`${JSON.stringify(got)}\`.`, { context: { File: file, Field: field } })
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw fail('(top level)', 'an object with `rpc` and/or `tcp` lists', raw)
  const { rpc = [], tcp = [], ...rest } = raw as Record<string, unknown>
  const unknown = Object.keys(rest)[0]
  if (unknown) throw new InputError(`${file}: \`${unknown}\` is not a known field (expected rpc, tcp).`, { context: { File: file, Field: unknown } })
  if (!Array.isArray(rpc)) throw fail('rpc', 'a list', rpc)
  if (!Array.isArray(tcp)) throw fail('tcp', 'a list', tcp)
  rpc.forEach((r, i) => {
    if (typeof r?.name !== 'string' || !r.name) throw fail(`rpc[${i}].name`, 'a non-empty string', r?.name)
    if (typeof r.upstream !== 'string' || !/^https?:\/\//.test(r.upstream)) throw fail(`rpc[${i}].upstream`, 'an http(s) URL', r.upstream)
    if (r.listen !== undefined && typeof r.listen !== 'string') throw fail(`rpc[${i}].listen`, 'a host:port string', r.listen)
  })
  tcp.forEach((t, i) => {
    for (const key of ['name', 'listen', 'upstream'])
      if (typeof t?.[key] !== 'string' || !t[key]) throw fail(`tcp[${i}].${key}`, key === 'name' ? 'a non-empty string' : 'a host:port string', t?.[key])
  })
  return { rpc, tcp } as Config
}
