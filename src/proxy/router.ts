import type { IncomingMessage, ServerResponse } from 'node:http'

/**
 * A tiny HTTP router for the control server (toxiproxy-compatible API, chaos API, metrics).
 * Handlers get parsed path params and the parsed JSON body; they return `{ status, body }`
 * (JSON unless `text` is set) or throw `HttpError`. Unknown routes get 404, bodies over the
 * limit 413, malformed JSON 400 — the server never crashes on input.
 */
export type Reply = { status: number; body?: unknown; text?: string; contentType?: string }
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

/** Request bodies larger than this are refused with 413. */
export const MAX_BODY_BYTES = 1_048_576

export function createRouter(options: { errorBody?: (status: number, message: string) => unknown } = {}): Router {
  const routes: Route[] = []
  const errorBody = options.errorBody ?? ((status: number, message: string) => ({ error: message, status }))
  const send = (res: ServerResponse, reply: Reply) => {
    if (reply.text !== undefined) {
      res.writeHead(reply.status, { 'content-type': reply.contentType ?? 'text/plain; charset=utf-8' })
      res.end(reply.text)
      return
    }
    if (reply.body === undefined) {
      res.writeHead(reply.status)
      res.end()
      return
    }
    res.writeHead(reply.status, { 'content-type': 'application/json' })
    res.end(JSON.stringify(reply.body))
  }
  return {
    route(method, pattern, handler) {
      routes.push({ method, parts: pattern.split('/').filter(Boolean), handler })
    },
    async handle(req, res) {
      try {
        const url = new URL(req.url ?? '/', 'http://local')
        const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent)
        let pathMatched = false
        for (const r of routes) {
          if (r.parts.length !== parts.length) continue
          const params: Record<string, string> = {}
          if (!r.parts.every((p, i) => (p.startsWith(':') ? ((params[p.slice(1)] = parts[i] as string), true) : p === parts[i]))) continue
          pathMatched = true
          if (r.method !== req.method) continue
          const body = await readJson(req)
          send(res, await r.handler({ params, body, query: url.searchParams, raw: req }))
          return
        }
        throw new HttpError(pathMatched ? 405 : 404, pathMatched ? `method ${req.method} not allowed on ${url.pathname}` : `no route for ${req.method} ${url.pathname}`)
      } catch (error) {
        const status = error instanceof HttpError ? error.status : 500
        const message = error instanceof Error ? error.message : String(error)
        if (!res.headersSent) send(res, { status, body: errorBody(status, message) })
        else res.end()
      }
    },
  }
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  if (req.method === 'GET' || req.method === 'DELETE' || req.method === 'HEAD') {
    req.resume()
    return undefined
  }
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > MAX_BODY_BYTES) throw new HttpError(413, `request body over ${MAX_BODY_BYTES} bytes`)
    chunks.push(chunk as Buffer)
  }
  const text = Buffer.concat(chunks).toString('utf8')
  if (text.trim() === '') return undefined
  try {
    return JSON.parse(text)
  } catch (error) {
    throw new HttpError(400, `malformed JSON body: ${(error as Error).message}`)
  }
}
