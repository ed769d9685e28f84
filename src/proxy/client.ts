import { ForkchaosError } from '../errors.js'
import { redactUrl } from '../util/redact.js'
import type { ProxyJson } from './tcp/proxy.js'
import type { Stream, Toxic } from './toxics/toxic.js'

/**
 * A small typed client for toxiproxy's HTTP API, for internal use. It speaks the 2.x API
 * (updates by POST, which every 2.x server accepts), so it works against a forkchaos control
 * server or a real toxiproxy. One free function per operation; `createToxiproxyClient` binds
 * them to a URL.
 */
export type ToxiproxyClient = {
  url: string
  /** Per-request timeout in milliseconds. */
  timeoutMs: number
}

/** A proxy to create; `listen` defaults server-side (forkchaos: `127.0.0.1:0`). */
export type ProxyCreate = { name: string; listen?: string; upstream: string; enabled?: boolean }
/** Proxy fields to change; absent ones stay. */
export type ProxyChanges = { listen?: string; upstream?: string; enabled?: boolean }
/** A toxic to add; `stream` defaults to downstream, `toxicity` to 1, `name` to `<type>_<stream>`. */
export type ToxicCreate = {
  name?: string
  type: string
  stream?: Stream
  toxicity?: number
  attributes?: Record<string, number | boolean | string>
}
/** Toxic fields to change: attributes are merged, toxicity replaced. */
export type ToxicChanges = { toxicity?: number; attributes?: Record<string, number | boolean | string> }

/** `GET /proxies`: every proxy by name. */
export const listProxies = (client: ToxiproxyClient) => request<Record<string, ProxyJson>>(client, 'GET', '/proxies')
/** `POST /proxies` (201). */
export const createProxy = (client: ToxiproxyClient, proxy: ProxyCreate) => request<ProxyJson>(client, 'POST', '/proxies', proxy)
/** `GET /proxies/{name}`. */
export const getProxy = (client: ToxiproxyClient, name: string) => request<ProxyJson>(client, 'GET', `/proxies/${enc(name)}`)
/** `POST /proxies/{name}`: a new listen or upstream restarts the proxy. */
export const updateProxy = (client: ToxiproxyClient, name: string, changes: ProxyChanges) =>
  request<ProxyJson>(client, 'POST', `/proxies/${enc(name)}`, changes)
/** `DELETE /proxies/{name}` (204). */
export const deleteProxy = (client: ToxiproxyClient, name: string) => request<void>(client, 'DELETE', `/proxies/${enc(name)}`)
/** `POST /populate` (201): creates or replaces proxies, returns them. */
export const populate = async (client: ToxiproxyClient, proxies: ProxyCreate[]) =>
  (await request<{ proxies: ProxyJson[] | null }>(client, 'POST', '/populate', proxies)).proxies ?? []
/** `POST /proxies/{proxy}/toxics`. */
export const addToxic = (client: ToxiproxyClient, proxy: string, toxic: ToxicCreate) =>
  request<Toxic>(client, 'POST', `/proxies/${enc(proxy)}/toxics`, toxic)
/** `POST /proxies/{proxy}/toxics/{toxic}`. */
export const updateToxic = (client: ToxiproxyClient, proxy: string, toxic: string, changes: ToxicChanges) =>
  request<Toxic>(client, 'POST', `/proxies/${enc(proxy)}/toxics/${enc(toxic)}`, changes)
/** `DELETE /proxies/{proxy}/toxics/{toxic}` (204). */
export const removeToxic = (client: ToxiproxyClient, proxy: string, toxic: string) =>
  request<void>(client, 'DELETE', `/proxies/${enc(proxy)}/toxics/${enc(toxic)}`)
/** `POST /reset` (204): enables every proxy, removes every toxic. */
export const reset = (client: ToxiproxyClient) => request<void>(client, 'POST', '/reset')

/** The operations above bound to one API URL. `timeoutMs` per request, default 10,000. */
export function createToxiproxyClient(url: string, options: { timeoutMs?: number } = {}) {
  const client: ToxiproxyClient = { url: url.replace(/\/+$/, ''), timeoutMs: options.timeoutMs ?? 10_000 }
  return {
    ...client,
    listProxies: () => listProxies(client),
    createProxy: (proxy: ProxyCreate) => createProxy(client, proxy),
    getProxy: (name: string) => getProxy(client, name),
    updateProxy: (name: string, changes: ProxyChanges) => updateProxy(client, name, changes),
    deleteProxy: (name: string) => deleteProxy(client, name),
    populate: (proxies: ProxyCreate[]) => populate(client, proxies),
    addToxic: (proxy: string, toxic: ToxicCreate) => addToxic(client, proxy, toxic),
    updateToxic: (proxy: string, toxic: string, changes: ToxicChanges) => updateToxic(client, proxy, toxic, changes),
    removeToxic: (proxy: string, toxic: string) => removeToxic(client, proxy, toxic),
    reset: () => reset(client),
  }
}

const enc = encodeURIComponent

async function request<T>(client: ToxiproxyClient, method: string, path: string, body?: unknown): Promise<T> {
  const url = `${client.url}${path}`
  let response: Response
  try {
    response = await fetch(url, {
      method,
      signal: AbortSignal.timeout(client.timeoutMs),
      ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
    })
  } catch (error) {
    throw new ToxiproxyApiError(`Toxiproxy API unreachable: ${method} ${path}.`, { url, status: undefined, cause: error })
  }
  const text = await response.text()
  let parsed: unknown
  try {
    parsed = text === '' ? undefined : JSON.parse(text)
  } catch {
    parsed = undefined
  }
  if (!response.ok) {
    const detail = typeof (parsed as { error?: unknown })?.error === 'string' ? (parsed as { error: string }).error : text.slice(0, 200)
    throw new ToxiproxyApiError(`Toxiproxy API ${method} ${path} failed with ${response.status}: ${detail}`, { url, status: response.status })
  }
  if (text !== '' && parsed === undefined)
    throw new ToxiproxyApiError(`Toxiproxy API ${method} ${path} answered with something other than JSON.`, { url, status: response.status })
  return parsed as T
}

/** The API answered with an error status (`status`), or could not be reached (`status` undefined). */
export class ToxiproxyApiError extends ForkchaosError {
  override name = 'ToxiproxyApiError'
  readonly status: number | undefined
  constructor(message: string, options: { url: string; status: number | undefined; cause?: unknown }) {
    super(message, {
      exitCode: options.status !== undefined && options.status < 500 ? 2 : 3,
      context: { URL: redactUrl(options.url), Status: options.status },
      cause: options.cause,
    })
    this.status = options.status
  }
}
