import { InputError } from '../../errors.js'
import type { Prng } from '../../util/prng.js'
import { isPlainObject, parseName, show, type Toxic } from '../toxics/toxic.js'
import { createTcpProxy, parseAddress, ProxyLimitError, type TcpProxy, type TcpProxyOptions } from './proxy.js'

/**
 * The TCP proxies of one control server, by name: what toxiproxy calls its proxy collection.
 * Creating goes through here so names stay unique (also under concurrent requests) and the
 * number of proxies stays under a limit.
 */
export type ProxyRegistry = {
  list(): TcpProxy[]
  get(name: string): TcpProxy | undefined
  /** The proxy, or `ProxyNotFoundError`. */
  require(name: string): TcpProxy
  /** Creates and (unless `enabled: false`) starts a proxy. `ProxyExistsError` if the name is taken. */
  create(config: ProxyConfig): Promise<TcpProxy>
  /**
   * Creates or replaces proxies, as toxiproxy's `/populate`: every entry is validated before
   * anything changes; a proxy whose listen and upstream are unchanged is kept as it is (with
   * its toxics), any other existing one of the same name is replaced. If a bind fails, the
   * proxies created by this call are removed again and the error is thrown.
   */
  populate(configs: ProxyConfig[]): Promise<TcpProxy[]>
  /** Stops and forgets a proxy. `ProxyNotFoundError` if there is none. */
  remove(name: string): Promise<void>
  /** Enables every proxy and removes every toxic (toxiproxy's `/reset`). */
  reset(): Promise<void>
  /** Stops and forgets every proxy. */
  close(): Promise<void>
  /**
   * Calls `listener` whenever a toxic leaves a proxy of this registry by any route: removed,
   * reset, or gone with its proxy (deleted, replaced by populate, closed). Returns the unsubscribe.
   */
  onToxicRemoved(listener: (proxy: string, toxic: Toxic) => void): () => void
  /** Calls `listener` whenever a toxic is added to a proxy of this registry (by any route). Returns the unsubscribe. */
  onToxicAdded(listener: (proxy: string, toxic: Toxic) => void): () => void
}

/** A proxy to create, as in toxiproxy's `POST /proxies` body. */
export type ProxyConfig = {
  name: string
  /** Default `127.0.0.1:0` (toxiproxy would listen on all interfaces). */
  listen?: string
  upstream: string
  /** Default true. */
  enabled?: boolean
}

/** Options of `createProxyRegistry`. */
export type ProxyRegistryOptions = {
  /** Each proxy forks its own stream from this one, in creation order. */
  prng: Prng
  /** Proxies at most. Default 256. */
  maxProxies?: number
  /** Limits passed to every proxy. */
  proxyLimits?: Pick<TcpProxyOptions, 'maxConnections' | 'maxToxics' | 'maxBufferedBytes'>
}

/** Where a proxy listens when no `listen` is given: loopback, a free port. */
export const DEFAULT_LISTEN = '127.0.0.1:0'
const DEFAULT_MAX_PROXIES = 256

/** An empty registry. Proxies fork their PRNG streams from `prng` in creation order. */
export function createProxyRegistry(options: ProxyRegistryOptions): ProxyRegistry {
  const maxProxies = options.maxProxies ?? DEFAULT_MAX_PROXIES
  const proxies = new Map<string, TcpProxy>()
  // Names being created right now: taken, though not yet in `proxies`.
  const reserved = new Set<string>()
  const listeners = new Set<(proxy: string, toxic: Toxic) => void>()
  const toxicRemoved = (proxy: string, toxic: Toxic) => {
    for (const listener of listeners) listener(proxy, toxic)
  }
  const addedListeners = new Set<(proxy: string, toxic: Toxic) => void>()
  const toxicAdded = (proxy: string, toxic: Toxic) => {
    for (const listener of addedListeners) listener(proxy, toxic)
  }
  // A proxy that leaves the registry takes its toxics with it.
  const retire = async (proxy: TcpProxy) => {
    const gone = proxy.toxics
    await proxy.stop()
    for (const toxic of gone) toxicRemoved(proxy.name, toxic)
  }

  const reserve = (name: string) => {
    if (proxies.has(name) || reserved.has(name)) throw new ProxyExistsError(name)
    if (proxies.size + reserved.size >= maxProxies) throw new ProxyLimitError(`There are already ${maxProxies} proxies (the limit).`)
    reserved.add(name)
  }
  const build = async (config: ProxyConfig) => {
    try {
      const proxy = await createTcpProxy({
        ...options.proxyLimits,
        name: config.name,
        listen: config.listen ?? DEFAULT_LISTEN,
        upstream: config.upstream,
        enabled: config.enabled ?? true,
        prng: options.prng,
        onToxicRemoved: toxicRemoved,
        onToxicAdded: toxicAdded,
      })
      proxies.set(config.name, proxy)
      return proxy
    } finally {
      reserved.delete(config.name)
    }
  }

  const registry: ProxyRegistry = {
    list: () => [...proxies.values()],
    get: (name) => proxies.get(name),
    require(name) {
      const proxy = proxies.get(name)
      if (!proxy) throw new ProxyNotFoundError(name)
      return proxy
    },
    async create(input) {
      const config = parseProxyConfig(input)
      reserve(config.name)
      return build(config)
    },
    async populate(inputs) {
      if (!Array.isArray(inputs)) throw new ProxyInputError(`Populate takes an array of proxies. Got ${show(inputs)}.`, 'body')
      const configs = inputs.map((input, i) => parseProxyConfig(input, ` at proxy ${i + 1}`))
      const names = new Set<string>()
      for (const config of configs) {
        if (names.has(config.name)) throw new ProxyInputError(`Duplicate proxy name ${show(config.name)} in one populate request.`, 'name')
        names.add(config.name)
      }
      const replacing = configs.filter((c) => proxies.has(c.name)).length
      if (proxies.size + reserved.size - replacing + configs.length > maxProxies)
        throw new ProxyLimitError(`Populating ${configs.length} proxies would exceed the limit of ${maxProxies}.`)
      const result: TcpProxy[] = []
      const created: string[] = []
      try {
        for (const config of configs) {
          const existing = proxies.get(config.name)
          if (existing && existing.listen === (config.listen ?? DEFAULT_LISTEN) && existing.upstream === config.upstream) {
            result.push(existing)
            continue
          }
          if (existing) {
            proxies.delete(config.name)
            await retire(existing)
          }
          reserve(config.name)
          result.push(await build(config))
          created.push(config.name)
        }
      } catch (error) {
        for (const name of created) await registry.remove(name).catch(() => undefined)
        throw error
      }
      return result
    },
    async remove(name) {
      const proxy = registry.require(name)
      proxies.delete(name)
      await retire(proxy)
    },
    async reset() {
      for (const proxy of proxies.values()) {
        await proxy.start()
        proxy.resetToxics()
      }
    },
    async close() {
      const all = [...proxies.values()]
      proxies.clear()
      await Promise.all(all.map(retire))
    },
    onToxicRemoved(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    onToxicAdded(listener) {
      addedListeners.add(listener)
      return () => addedListeners.delete(listener)
    },
  }
  return registry
}

/**
 * Validates a proxy config from an API body (or code). Missing `name` or `upstream` is a
 * `MissingFieldError`, as toxiproxy reports it; `where` adds a position (" at proxy 2").
 */
export function parseProxyConfig(input: unknown, where = ''): ProxyConfig {
  if (!isPlainObject(input)) throw new ProxyInputError(`A proxy must be a JSON object${where}. Got ${show(input)}.`, 'body')
  if (input.name === undefined || input.name === '' || input.name === null) throw new MissingFieldError(`name${where}`)
  if (input.upstream === undefined || input.upstream === '' || input.upstream === null) throw new MissingFieldError(`upstream${where}`)
  const name = parseName(input.name, 'name')
  if (typeof input.upstream !== 'string') throw new ProxyInputError(`"upstream" must be a string${where}. Got ${show(input.upstream)}.`, 'upstream')
  parseAddress(input.upstream, 'upstream')
  const config: ProxyConfig = { name, upstream: input.upstream }
  if (input.listen !== undefined && input.listen !== '' && input.listen !== null) {
    if (typeof input.listen !== 'string') throw new ProxyInputError(`"listen" must be a string${where}. Got ${show(input.listen)}.`, 'listen')
    parseAddress(input.listen, 'listen')
    config.listen = input.listen
  }
  if (input.enabled !== undefined) {
    if (typeof input.enabled !== 'boolean') throw new ProxyInputError(`"enabled" must be true or false${where}. Got ${show(input.enabled)}.`, 'enabled')
    config.enabled = input.enabled
  }
  return config
}

/**
 * Validates a proxy update body (`{ listen?, upstream?, enabled? }`); unknown keys are
 * ignored, as toxiproxy ignores them.
 */
export function parseProxyUpdate(input: unknown): { listen?: string; upstream?: string; enabled?: boolean } {
  if (!isPlainObject(input)) throw new ProxyInputError(`A proxy update must be a JSON object. Got ${show(input)}.`, 'body')
  const update: { listen?: string; upstream?: string; enabled?: boolean } = {}
  if (input.listen !== undefined) {
    parseAddress(input.listen, 'listen')
    update.listen = input.listen as string
  }
  if (input.upstream !== undefined) {
    parseAddress(input.upstream, 'upstream')
    update.upstream = input.upstream as string
  }
  if (input.enabled !== undefined) {
    if (typeof input.enabled !== 'boolean') throw new ProxyInputError(`"enabled" must be true or false. Got ${show(input.enabled)}.`, 'enabled')
    update.enabled = input.enabled
  }
  return update
}

/** A proxy of that name exists (toxiproxy: 409). */
export class ProxyExistsError extends InputError {
  override name = 'ProxyExistsError'
  constructor(readonly proxy: string) {
    super(`Proxy "${proxy}" already exists.`)
  }
}

/** No proxy of that name (toxiproxy: 404). */
export class ProxyNotFoundError extends InputError {
  override name = 'ProxyNotFoundError'
  constructor(readonly proxy: string) {
    super(`No proxy "${proxy}".`)
  }
}

/** A required field (`name`, `upstream`) is missing. */
export class MissingFieldError extends InputError {
  override name = 'MissingFieldError'
  constructor(readonly field: string) {
    super(`Missing required field "${field}".`)
  }
}

/** A malformed proxy field; names it. */
export class ProxyInputError extends InputError {
  override name = 'ProxyInputError'
  constructor(
    message: string,
    readonly field: string,
  ) {
    super(message)
  }
}
