import * as http from 'node:http'
import type { AddressInfo } from 'node:net'
import { InfraError } from '../errors.js'
import { createPrng, type Prng } from '../util/prng.js'
import { createRouter, HttpError, type Router } from './router.js'
import { formatAddress, parseAddress } from './tcp/proxy.js'
import { createProxyRegistry, type ProxyRegistry } from './tcp/registry.js'
import { registerToxiproxyRoutes, toxiproxyErrorBody } from './toxiproxy-api.js'

/** A request's headers must arrive within 10 s. */
export const HEADERS_TIMEOUT_MS = 10_000
/** A whole request (headers and body) must arrive within 15 s (toxiproxy's read timeout). */
export const REQUEST_TIMEOUT_MS = 15_000
/** An idle keep-alive connection is closed after 60 s (toxiproxy's idle timeout). */
export const KEEP_ALIVE_TIMEOUT_MS = 60_000

/**
 * As toxiproxy: any `User-Agent` starting with `Mozilla/` (every browser) gets a 403, so a web
 * page cannot drive the API from a browser on the same machine (CSRF). Clients, curl and
 * scripts send other agents.
 */
export function refuseBrowsers(req: http.IncomingMessage): void {
  if (req.headers['user-agent']?.startsWith('Mozilla/')) throw new HttpError(403, 'User agent not allowed')
}

/** Options of `startControlServer`. */
export type ControlServerOptions = {
  /** `host:port` for the HTTP API. Default `127.0.0.1:8474` (toxiproxy's port); port 0 picks one. */
  listen?: string
  /** More routes on the same server (chaos API, /metrics), registered after toxiproxy's. */
  registerRoutes?: ((router: Router) => void)[]
  /** The proxies to serve. Default: a new registry drawing from `prng`. */
  proxies?: ProxyRegistry
  /** Seeds a new registry's proxies when `proxies` is not given. Default `createPrng(0)`. */
  prng?: Prng
}

/** A running control server. */
export type ControlServer = {
  /** `http://host:port` of the API. */
  url: string
  proxies: ProxyRegistry
  /** Stops the HTTP server and every proxy in the registry. Idempotent. */
  close(): Promise<void>
}

/**
 * Starts the control server: toxiproxy's HTTP API over a proxy registry, plus whatever
 * `registerRoutes` adds, on one node:http server.
 */
export async function startControlServer(options: ControlServerOptions = {}): Promise<ControlServer> {
  const listen = options.listen ?? '127.0.0.1:8474'
  const address = parseAddress(listen, 'listen')
  const proxies = options.proxies ?? createProxyRegistry({ prng: options.prng ?? createPrng(0) })
  const router = createRouter({ errorBody: toxiproxyErrorBody, guard: refuseBrowsers })
  registerToxiproxyRoutes(router, proxies)
  for (const register of options.registerRoutes ?? []) register(router)

  const server = http.createServer({ connectionsCheckingInterval: 1_000 }, (req, res) => void router.handle(req, res))
  // A limit on everything: a client that trickles its headers or body is cut off.
  server.headersTimeout = HEADERS_TIMEOUT_MS
  server.requestTimeout = REQUEST_TIMEOUT_MS
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS
  // A request Node cannot even parse (bad framing, oversized headers, a timeout) still gets a
  // JSON error body, then the connection is closed: nothing after the bad bytes can be trusted.
  server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
    // As Node's own handler: answer unless an answer has already begun on this socket.
    if (!socket.writable || (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent) {
      socket.destroy()
      return
    }
    const [status, reason] =
      error.code === 'HPE_HEADER_OVERFLOW' ? [431, 'Request Header Fields Too Large'] : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'Request Timeout'] : [400, 'Bad Request']
    const body = JSON.stringify(toxiproxyErrorBody(status, `malformed HTTP request: ${error.code ?? error.message}`))
    socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen({ port: address.port, ...(address.host ? { host: address.host } : {}) }, () => {
      server.off('error', reject)
      resolve()
    })
  }).catch(async (error: NodeJS.ErrnoException) => {
    await proxies.close()
    throw new InfraError(`The control server could not listen on ${listen}: ${error.code ?? error.message}.`, {
      context: { Listen: listen },
      hint: 'Pick another port with --listen, or port 0 for a free one.',
      cause: error,
    })
  })
  const bound = server.address() as AddressInfo
  let closing: Promise<void> | undefined
  return {
    url: `http://${formatAddress(address.host === '' ? '127.0.0.1' : bound.address, bound.port)}`,
    proxies,
    close() {
      closing ??= (async () => {
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()))
        server.closeAllConnections()
        await proxies.close()
        await stopped
      })()
      return closing
    },
  }
}
