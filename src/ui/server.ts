import * as http from 'node:http'
import type { AddressInfo } from 'node:net'
import { InfraError, InputError } from '../errors.js'
import type { RunEvent } from '../experiment/events.js'
import { scenarioModel, toHtml } from '../report/html.js'
import type { RunReport, ScenarioReport } from '../report/types.js'

/**
 * The live view of `forkchaos run --ui`: report.html's page (src/report/html.ts) served on
 * `host:port` (127.0.0.1 unless `--ui-host` says otherwise), updated by server-sent events on
 * `/events`: phases, faults applied and reverted, commits, each scenario's model as it lands,
 * and the end of the run. A page that connects late gets the events so far first (at most
 * MAX_BACKLOG; scenario results are always kept). No control action unless `control`
 * (`--ui-control`): then `POST /control/stop` stops the run as Ctrl-C does (faults reverted).
 *
 * `forkchaos ui` (src/ui/proxy-watch.ts) serves the same page for a running `forkchaos proxy`
 * (`proxy`: its control URL): the Tests tab lists the chaos API's experiments, the Timeline its
 * faults and toxics; with `control`, `POST /control/revert/{id}` reverts one through the API.
 */

/** Events kept for a page that connects late (scenario results are never dropped). */
export const MAX_BACKLOG = 5_000
/** At most this many pages connected at once; one more gets 503. */
export const MAX_CLIENTS = 16

export type UiEvent =
  | { type: 'phase'; scenario: string; phase: string }
  | { type: 'fault'; scenario: string; fault: string; action: 'apply' | 'revert' }
  | { type: 'commit'; scenario: string; height: number }
  | { type: 'node'; scenario: string; node: number; state: 'down' | 'up' }
  | { type: 'scenario-done'; scenario: ReturnType<typeof scenarioModel> }
  | { type: 'end'; durationMs: number }
  /** `forkchaos ui`: a chaos API experiment's row on the Tests tab (`state`: active, recovering, ended). */
  | { type: 'experiment'; id: string; label: string; target: string; state: string; verdict: string | null; ms: number | null; mttrMs: number | null; reason: string | null }
  /** `forkchaos ui`: a toxic added to or removed from a TCP proxy. */
  | { type: 'toxic'; proxy: string; toxic: string; toxicType: string; stream: string; action: 'added' | 'removed' }
  /** A line on the Timeline tab (e.g. the proxy went away). */
  | { type: 'notice'; text: string }

export type UiServer = {
  url: string
  /** Passes a run event on to every page (the ones the page does not draw are dropped). */
  event(event: RunEvent | { type: 'scenario-done'; report: ScenarioReport }): void
  end(durationMs: number): void
  /** Sends one event to every page as it is. */
  send(event: UiEvent): void
  close(): Promise<void>
}

export type UiOptions = {
  host: string
  port: number
  control: boolean
  seed: number
  replay: string
  onStop?: () => void
  /** `forkchaos ui`: the control URL of the proxy watched (the page then shows experiments). */
  proxy?: string
  /** `forkchaos ui --ui-control`: reverts an experiment; answers what the chaos API answered. */
  onRevert?: (id: string) => Promise<{ status: number; body: unknown }>
}

/** Parses `--ui-port`: an integer 0–65535 (0: the kernel picks one, printed). */
export function parseUiPort(raw: string | undefined): number {
  if (raw === undefined) return 0
  const n = Number(raw)
  if (!/^\d+$/.test(raw) || n > 65_535) throw new InputError(`\`--ui-port\` must be an integer from 0 to 65535 (0: any free port). Got \`${raw}\`.`)
  return n
}

export async function startUi(options: UiOptions): Promise<UiServer> {
  const backlog: string[] = []
  const clients = new Set<http.ServerResponse>()
  const empty: RunReport = { tool: 'forkchaos', version: '', seed: options.seed, replay: options.replay, startedAt: new Date().toISOString(), durationMs: 0, target: { kind: 'fork', source: 'live', forkBlock: null }, scenarios: [] }
  const page = toHtml(empty, { live: true, control: options.control, ...(options.proxy ? { proxy: options.proxy } : {}) })
  const json = (res: http.ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' })
    res.end(`${JSON.stringify(body)}\n`)
  }
  const send = (event: UiEvent) => {
    const frame = `data: ${JSON.stringify(event)}\n\n`
    backlog.push(frame)
    if (backlog.length > MAX_BACKLOG) {
      const drop = backlog.findIndex((f) => !f.startsWith('data: {"type":"scenario-done"'))
      if (drop >= 0) backlog.splice(drop, 1)
    }
    for (const c of clients) c.write(frame)
  }
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://ui')
    if (req.method === 'GET' && url.pathname === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' })
      return res.end(page)
    }
    if (req.method === 'GET' && url.pathname === '/events') {
      if (clients.size >= MAX_CLIENTS) return json(res, 503, { error: `at most ${MAX_CLIENTS} pages may watch at once` })
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' })
      // The headers go now, not with the first event: a client sees the stream open at once.
      res.flushHeaders()
      for (const f of backlog) res.write(f)
      clients.add(res)
      req.on('close', () => clients.delete(res))
      return
    }
    const revert = /^\/control\/revert\/([^/]+)$/.exec(url.pathname)
    if (revert && options.proxy) {
      if (req.method !== 'POST') return json(res, 405, { error: 'POST /control/revert/{id}' })
      if (!options.control) return json(res, 403, { error: 'control actions are off: start forkchaos ui with --ui-control to allow them' })
      const id = decodeURIComponent(revert[1] as string)
      void (options.onRevert?.(id) ?? Promise.resolve({ status: 404, body: { error: 'no revert here' } })).then(
        (answer) => json(res, answer.status, answer.body),
        (error: Error) => json(res, 502, { error: `the proxy's control server did not answer the revert: ${error.message}` }),
      )
      return
    }
    if (url.pathname === '/control/stop' && !options.proxy) {
      if (req.method !== 'POST') return json(res, 405, { error: 'POST /control/stop' })
      if (!options.control) return json(res, 403, { error: 'control actions are off: start the run with --ui-control to allow them' })
      json(res, 202, { stopping: true })
      options.onStop?.()
      return
    }
    json(res, 404, { error: `no such page: ${req.method} ${url.pathname}`, pages: ['GET /', 'GET /events', options.proxy ? 'POST /control/revert/{id} (with --ui-control)' : 'POST /control/stop (with --ui-control)'] })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => reject(new InfraError(`The live view cannot listen on ${options.host}:${options.port}: ${e.code ?? e.message}.`, { hint: 'Pick another `--ui-port` (0: any free port).' })))
    server.listen(options.port, options.host, () => resolve())
  })
  const address = server.address() as AddressInfo
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
  return {
    url: `http://${host}:${address.port}/`,
    event(e) {
      if (e.type === 'phase' || e.type === 'fault' || e.type === 'commit' || e.type === 'node') send(e)
      else if (e.type === 'scenario-done') send({ type: 'scenario-done', scenario: scenarioModel(e.report) })
    },
    end: (durationMs) => send({ type: 'end', durationMs }),
    send,
    async close() {
      for (const c of clients) c.end()
      clients.clear()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
