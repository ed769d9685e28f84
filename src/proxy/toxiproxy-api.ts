import { InputError } from '../errors.js'
import { type Handler, HttpError, type Router } from './router.js'
import { ListenError, ProxyLimitError, ToxicExistsError, ToxicNotFoundError } from './tcp/proxy.js'
import {
  MissingFieldError,
  ProxyExistsError,
  ProxyNotFoundError,
  parseProxyConfig,
  parseProxyUpdate,
  type ProxyRegistry,
} from './tcp/registry.js'
import { UnknownToxicTypeError } from './toxics/toxic.js'

/**
 * Toxiproxy's HTTP API (2.x) over a `ProxyRegistry`, so toxiproxy clients (the npm
 * `toxiproxy-node-client`, the Go and Ruby clients) drive forkchaos proxies unchanged.
 *
 * Same routes, JSON shapes and status codes as toxiproxy: 201 for a created proxy and for
 * `/populate` (`{ proxies: [...] }`), 200 for a created toxic, 204 for deletes and `/reset`,
 * errors as `{ "error": "...", "status": N }` with 400 / 404 / 409 (and 429 for forkchaos's
 * limits, 403 for a browser's `User-Agent`). Updates accept POST and PATCH. Error texts start
 * like toxiproxy's ("proxy not found", "invalid toxic type", "bad request body: …") and add
 * the offending name or value. Names follow `NAME_PATTERN`; every number has a stated bound.
 */
export function registerToxiproxyRoutes(router: Router, proxies: ProxyRegistry): void {
  const proxyJson = (name: string) => proxies.require(name).toJSON()

  router.route(
    'GET',
    '/proxies',
    api(() => ({ status: 200, body: Object.fromEntries(proxies.list().map((p) => [p.name, p.toJSON()])) })),
  )
  router.route(
    'POST',
    '/proxies',
    api(async ({ body }) => {
      const proxy = await proxies.create(parseProxyConfig(body))
      return { status: 201, body: proxy.toJSON() }
    }),
  )
  router.route(
    'POST',
    '/populate',
    api(async ({ body }) => {
      if (!Array.isArray(body)) throw new HttpError(400, `bad request body: /populate takes a JSON array of proxies`)
      const created = await proxies.populate(body.map((entry, i) => parseProxyConfigAt(entry, i)))
      return { status: 201, body: { proxies: created.map((p) => p.toJSON()) } }
    }),
  )
  router.route(
    'GET',
    '/proxies/:proxy',
    api(({ params }) => ({ status: 200, body: proxyJson(params.proxy as string) })),
  )
  const updateProxy = api(async ({ params, body }) => {
    const proxy = proxies.require(params.proxy as string)
    await proxy.update(parseProxyUpdate(body))
    return { status: 200, body: proxy.toJSON() }
  })
  router.route('POST', '/proxies/:proxy', updateProxy)
  router.route('PATCH', '/proxies/:proxy', updateProxy)
  router.route(
    'DELETE',
    '/proxies/:proxy',
    api(async ({ params }) => {
      await proxies.remove(params.proxy as string)
      return { status: 204 }
    }),
  )
  router.route(
    'GET',
    '/proxies/:proxy/toxics',
    api(({ params }) => ({ status: 200, body: proxies.require(params.proxy as string).toxics })),
  )
  router.route(
    'POST',
    '/proxies/:proxy/toxics',
    api(({ params, body }) => ({ status: 200, body: proxies.require(params.proxy as string).addToxic(body) })),
  )
  router.route(
    'GET',
    '/proxies/:proxy/toxics/:toxic',
    api(({ params }) => {
      const proxy = proxies.require(params.proxy as string)
      const toxic = proxy.toxics.find((t) => t.name === params.toxic)
      if (!toxic) throw new ToxicNotFoundError(proxy.name, params.toxic as string)
      return { status: 200, body: toxic }
    }),
  )
  const updateToxic = api(({ params, body }) => ({
    status: 200,
    body: proxies.require(params.proxy as string).updateToxic(params.toxic as string, body),
  }))
  router.route('POST', '/proxies/:proxy/toxics/:toxic', updateToxic)
  router.route('PATCH', '/proxies/:proxy/toxics/:toxic', updateToxic)
  router.route(
    'DELETE',
    '/proxies/:proxy/toxics/:toxic',
    api(({ params }) => {
      proxies.require(params.proxy as string).removeToxic(params.toxic as string)
      return { status: 204 }
    }),
  )
  router.route(
    'POST',
    '/reset',
    api(async () => {
      await proxies.reset()
      return { status: 204 }
    }),
  )
  router.route(
    'GET',
    '/version',
    api(() => ({ status: 200, body: { version: TOXIPROXY_API_VERSION } })),
  )
}

/**
 * What `GET /version` reports: the toxiproxy API generation served, with forkchaos's own
 * version as build metadata.
 */
export const TOXIPROXY_API_VERSION = '2.0.0+forkchaos.0.1.0'

/** The error body toxiproxy sends; pass to `createRouter({ errorBody })`. */
export const toxiproxyErrorBody = (status: number, message: string) => ({ error: message, status })

function parseProxyConfigAt(entry: unknown, index: number) {
  return parseProxyConfig(entry, ` at proxy ${index + 1}`)
}

/** Wraps a handler so domain errors become toxiproxy's status codes and error texts. */
function api(handler: Handler): Handler {
  return async (request) => {
    try {
      return await handler(request)
    } catch (error) {
      throw toHttpError(error)
    }
  }
}

/** The one place that maps errors to HTTP statuses. Anything unknown stays a 500. */
export function toHttpError(error: unknown): unknown {
  if (error instanceof HttpError) return error
  if (error instanceof ProxyNotFoundError) return new HttpError(404, `proxy not found: ${error.proxy}`)
  if (error instanceof ToxicNotFoundError) return new HttpError(404, `toxic not found: ${error.toxic}`)
  if (error instanceof ProxyExistsError) return new HttpError(409, `proxy already exists: ${error.proxy}`)
  if (error instanceof ToxicExistsError) return new HttpError(409, `toxic already exists: ${error.toxic}`)
  if (error instanceof UnknownToxicTypeError) return new HttpError(400, `invalid toxic type: ${error.shortMessage}`)
  if (error instanceof MissingFieldError) return new HttpError(400, `missing required field: ${error.field}`)
  // toxiproxy answers 500 for a failed bind; a port in use is a conflict and any other
  // bind failure a bad listen address, so say so.
  if (error instanceof ListenError) return new HttpError(error.code === 'EADDRINUSE' ? 409 : 400, `listen failed: ${error.shortMessage}`)
  // toxiproxy has no limits; ours (256 proxies, 64 toxics a proxy) answer 429 with the limit.
  if (error instanceof ProxyLimitError) return new HttpError(429, `limit reached: ${error.shortMessage}`)
  if (error instanceof InputError) return new HttpError(400, `bad request body: ${error.shortMessage}`)
  return error
}
