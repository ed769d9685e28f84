import type { IncomingMessage, ServerResponse } from 'node:http'

/**
 * A tiny HTTP router for the control server (toxiproxy-compatible API, chaos API, metrics).
 * Handlers get parsed path params and the parsed JSON body; they return `{ status, body }`
 * (JSON unless `text` is set; `stream` hands the response to a server-sent event stream) or
 * throw `HttpError`.
 *
 * Bad input never reaches a handler and never gets a 500: a path that is not absolute, has an
 * empty segment (`///`) or a malformed percent-escape (`%ZZ`) is a 400; unknown routes a 404
 * (405 for a known path with another method); a body over `MAX_BODY_BYTES` a 413; malformed
 * JSON, or JSON nested deeper than `MAX_JSON_DEPTH`, a 400. Every error has a JSON body. A
 * request whose body was not read to its end (a 413, or an error answered before the body
 * was needed) gets `Connection: close` and the connection is closed after the answer, so
 * unread bytes can never be taken for the next request.
 */
export type Reply = {
  status: number
  body?: unknown
  text?: string
  contentType?: string
  /** A long-lived answer (server-sent events): headers are written, then `stream` owns the response. */
  stream?: (res: ServerResponse) => void
}
export type Handler = (req: { params: Record<string, string>; body: unknown; query: URLSearchParams; raw: IncomingMessage }) => Promise<Reply> | Reply

export class HttpError extends Error {
  override name = 'HttpError'
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message)
  }
}

type Route = { method: string; parts: string[]; handler: Handler }

export type Router = {
  route(method: 'GET' | 'POST' | 'DELETE' | 'PUT' | 'PATCH', pattern: string, handler: Handler): void
  handle(req: IncomingMessage, res: ServerResponse): Promise<void>
}

/** Request bodies larger than this (1 MiB) are refused with 413 and the connection is closed. */
export const MAX_BODY_BYTES = 1_048_576
/** JSON bodies nested deeper than this (objects and arrays) are refused with 400. */
export const MAX_JSON_DEPTH = 32

export type RouterOptions = {
  /** The JSON body of an error answer. Default `{ error, status }`. */
  errorBody?: (status: number, message: string) => unknown
  /** Runs before routing; throw `HttpError` to refuse a request (e.g. by its headers). */
  guard?: (req: IncomingMessage) => void
}

export function createRouter(options: RouterOptions = {}): Router {
  const routes: Route[] = []
  const errorBody = options.errorBody ?? ((status: number, message: string) => ({ error: message, status }))
  const send = (req: IncomingMessage, res: ServerResponse, reply: Reply) => {
    if (reply.stream) {
      res.writeHead(reply.status, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' })
      res.flushHeaders()
      reply.stream(res)
      return
    }
    // Serialize first: if that throws, nothing has been written and the caller answers 500.
    const payload = reply.text ?? (reply.body === undefined ? undefined : JSON.stringify(reply.body))
    const headers: Record<string, string> = {}
    if (payload !== undefined) headers['content-type'] = reply.text !== undefined ? (reply.contentType ?? 'text/plain; charset=utf-8') : 'application/json'
    headers['content-length'] = String(payload === undefined ? 0 : Buffer.byteLength(payload))
    if (!req.complete) headers.connection = 'close'
    res.writeHead(reply.status, headers)
    res.end(payload)
  }
  return {
    route(method, pattern, handler) {
      routes.push({ method, parts: pattern.split('/').filter(Boolean), handler })
    },
    async handle(req, res) {
      try {
        options.guard?.(req)
        const { parts, pathname, query } = parseTarget(req.url ?? '/')
        let pathMatched = false
        for (const r of routes) {
          if (r.parts.length !== parts.length) continue
          const params: Record<string, string> = {}
          if (!r.parts.every((p, i) => (p.startsWith(':') ? ((params[p.slice(1)] = parts[i] as string), true) : p === parts[i]))) continue
          pathMatched = true
          if (r.method !== req.method) continue
          const text = await readBody(req)
          const body = req.method === 'GET' || req.method === 'DELETE' ? undefined : parseJson(text)
          send(req, res, await r.handler({ params, body, query, raw: req }))
          return
        }
        throw new HttpError(
          pathMatched ? 405 : 404,
          pathMatched ? `method ${req.method} not allowed on ${clip(pathname)}` : `no route for ${req.method} ${clip(pathname)}`,
        )
      } catch (error) {
        const status = error instanceof HttpError ? error.status : 500
        const message = error instanceof Error ? error.message : String(error)
        if (res.headersSent) {
          res.end()
          return
        }
        try {
          send(req, res, { status, body: errorBody(status, message) })
        } catch {
          send(req, res, { status: 500, body: errorBody(500, 'the answer could not be serialized') })
        }
      }
    },
  }
}

/**
 * Splits a request target into decoded path segments. Only origin-form (`/a/b?q`) is
 * accepted; `/` alone has no segments; an empty segment or a malformed escape is a 400.
 */
function parseTarget(target: string): { parts: string[]; pathname: string; query: URLSearchParams } {
  const q = target.indexOf('?')
  const pathname = q === -1 ? target : target.slice(0, q)
  const query = new URLSearchParams(q === -1 ? '' : target.slice(q + 1))
  if (!pathname.startsWith('/')) throw new HttpError(400, `bad path ${clip(pathname)}: it must start with "/"`)
  if (pathname === '/') return { parts: [], pathname, query }
  const raw = pathname.slice(1).split('/')
  if (raw.includes('')) throw new HttpError(400, `bad path ${clip(pathname)}: empty path segment`)
  const parts = raw.map((segment) => {
    try {
      return decodeURIComponent(segment)
    } catch {
      throw new HttpError(400, `bad path ${clip(pathname)}: malformed percent-escape in ${clip(segment)}`)
    }
  })
  return { parts, pathname, query }
}

/** Reads the whole body, at most `MAX_BODY_BYTES`; past that, stops reading and throws 413. */
function readBody(req: IncomingMessage): Promise<string> {
  const declared = Number(req.headers['content-length'])
  if (declared > MAX_BODY_BYTES) {
    req.pause()
    return Promise.reject(new HttpError(413, `request body of ${declared} bytes is over the limit of ${MAX_BODY_BYTES} bytes`))
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    let settled = false
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size <= MAX_BODY_BYTES) {
        chunks.push(chunk)
        return
      }
      settled = true
      req.off('data', onData)
      req.pause()
      reject(new HttpError(413, `request body is over the limit of ${MAX_BODY_BYTES} bytes`))
    }
    req.on('data', onData)
    req.once('end', () => {
      if (settled) return
      settled = true
      resolve(Buffer.concat(chunks).toString('utf8'))
    })
    req.once('error', (error) => {
      if (settled) return
      settled = true
      reject(new HttpError(400, `request body could not be read: ${error.message}`))
    })
  })
}

/** Parses a JSON body (empty = undefined); malformed or too deep is a 400. */
function parseJson(text: string): unknown {
  if (text.trim() === '') return undefined
  const at = depthExceededAt(text, MAX_JSON_DEPTH)
  if (at !== -1) throw new HttpError(400, `malformed JSON body: nested deeper than ${MAX_JSON_DEPTH} levels (at offset ${at})`)
  try {
    return JSON.parse(text)
  } catch (error) {
    throw new HttpError(400, `malformed JSON body: ${(error as Error).message}`)
  }
}

/**
 * The offset of the first `{` or `[` that opens level `limit + 1`, or -1. One pass over the
 * text, outside strings; it runs before `JSON.parse`, so nothing recursive ever sees a
 * deeper value (no stack overflow anywhere later: validation, error messages, listings).
 */
export function depthExceededAt(text: string, limit: number): number {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c) i++
      else if (c === 0x22) inString = false
    } else if (c === 0x22) inString = true
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > limit) return i
    } else if (c === 0x7d || c === 0x5d) depth--
  }
  return -1
}

/** A path or segment as it appears in an error message: JSON-quoted, cut short. */
function clip(text: string): string {
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 77)}...` : text)
}
