import { InfraError } from '../errors.js'
import type { ChaosEvent, ExperimentView } from '../proxy/chaos-api.js'
import type { UiEvent, UiServer } from './server.js'

/**
 * `forkchaos ui`: follows a running `forkchaos proxy` through its control server's event
 * stream (`GET /chaos/events`, pushed by the proxy: no polling) and passes each change on to
 * the live view (src/ui/server.ts): the snapshot and every experiment change as a Tests-tab
 * row, faults applied and reverted and toxics added and removed as Timeline lines.
 *
 * The first connection must succeed (else `InfraError`, exit 3, saying why). If the stream ends
 * later (the proxy stopped), the page is told and a new connection is tried every `retryMs`
 * (one at a time) until `close()`; the new snapshot brings the rows up to date.
 */

/** How long the control server may take to answer the event stream's headers. */
export const CONNECT_TIMEOUT_MS = 5_000
/** How often a lost stream is tried again. */
export const RETRY_MS = 2_000

export type ProxyWatch = { close(): Promise<void> }

export type WatchOptions = { retryMs?: number; say?: (line: string) => void }

/** An experiment as the page's Tests tab shows it. */
export function experimentEvent(x: ExperimentView): UiEvent {
  const done = x.verdict === 'held' || x.verdict === 'failed'
  return {
    type: 'experiment',
    id: x.id,
    label: x.type,
    target: x.target,
    state: x.verdict === 'active' ? 'active' : x.verdict === 'recovering' ? 'recovering' : 'ended',
    verdict: done ? x.verdict : null,
    ms: x.tStop === null ? null : x.tStop - x.tStart,
    mttrMs: x.mttrMs,
    reason: x.reason,
  }
}

/** What the page gets for one event of the proxy's stream. */
export function uiEventsOf(e: ChaosEvent): UiEvent[] {
  if (e.type === 'snapshot') return [...e.history, ...e.active].sort((a, b) => a.tStart - b.tStart).map(experimentEvent)
  if (e.type === 'experiment') return [experimentEvent(e.experiment)]
  if (e.type === 'fault') return [{ type: 'fault', scenario: e.id, fault: `${e.fault} @ ${e.target}`, action: e.action }]
  return [{ type: 'toxic', proxy: e.proxy, toxic: e.toxic, toxicType: e.toxicType, stream: e.stream, action: e.action }]
}

export async function watchProxy(control: string, ui: Pick<UiServer, 'send'>, options: WatchOptions = {}): Promise<ProxyWatch> {
  const retryMs = options.retryMs ?? RETRY_MS
  const say = options.say ?? (() => {})
  let closed = false
  let current: AbortController | undefined
  let retry: NodeJS.Timeout | undefined

  const first = await connect(control, (c) => (current = c))
  const follow = async (body: ReadableStream<Uint8Array>) => {
    await readEvents(body, (e) => {
      for (const u of uiEventsOf(e)) ui.send(u)
    }).catch(() => undefined)
    if (closed) return
    const text = `the control server at ${control} closed the event stream (the proxy stopped?); trying again every ${retryMs / 1000} s`
    say(text)
    ui.send({ type: 'notice', text })
    const again = () => {
      retry = setTimeout(async () => {
        if (closed) return
        try {
          const body = await connect(control, (c) => (current = c))
          if (closed) return void body.cancel().catch(() => undefined)
          const back = `connected again to ${control}`
          say(back)
          ui.send({ type: 'notice', text: back })
          void follow(body)
        } catch {
          again()
        }
      }, retryMs)
    }
    again()
  }
  void follow(first)
  return {
    async close() {
      closed = true
      clearTimeout(retry)
      current?.abort()
    },
  }
}

/** Opens the event stream; a clear `InfraError` when it cannot. */
async function connect(control: string, onController: (c: AbortController) => void): Promise<ReadableStream<Uint8Array>> {
  const url = `${control}/chaos/events`
  const controller = new AbortController()
  onController(controller)
  const timer = setTimeout(() => controller.abort(new Error(`no answer within ${CONNECT_TIMEOUT_MS / 1000} s`)), CONNECT_TIMEOUT_MS)
  const hint = 'Start `forkchaos proxy` first (its control server listens on 127.0.0.1:8474 by default), or point `--control` at its `--listen` address.'
  let res: Response
  try {
    res = await fetch(url, { headers: { accept: 'text/event-stream', 'user-agent': 'forkchaos-ui' }, signal: controller.signal })
  } catch (error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause
    const why = controller.signal.aborted ? String((controller.signal.reason as Error)?.message ?? 'aborted') : (cause?.code ?? cause?.message ?? (error as Error).message)
    throw new InfraError(`Cannot reach the proxy's control server at ${control}: ${why}.`, { hint })
  } finally {
    clearTimeout(timer)
  }
  if (res.status !== 200 || !res.body || !res.headers.get('content-type')?.startsWith('text/event-stream')) {
    const text = (await res.text().catch(() => '')).slice(0, 300)
    let message = text
    try {
      message = String((JSON.parse(text) as { error?: unknown }).error ?? text)
    } catch {
      // not JSON: the text as it came
    }
    const what = res.status === 404 ? `${control} does not look like a forkchaos proxy's control server (GET /chaos/events answered 404)` : `GET ${url} answered ${res.status}${message ? `: ${message}` : ''}`
    throw new InfraError(`${what}.`, { hint })
  }
  return res.body
}

/** Reads server-sent events (`data:` lines, frames split by a blank line) until the stream ends. */
async function readEvents(body: ReadableStream<Uint8Array>, onEvent: (e: ChaosEvent) => void): Promise<void> {
  const decoder = new TextDecoder()
  let buffer = ''
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true })
    let end = buffer.indexOf('\n\n')
    while (end !== -1) {
      const frame = buffer.slice(0, end)
      buffer = buffer.slice(end + 2)
      const data = frame
        .split('\n')
        .filter((l) => l.startsWith('data: '))
        .map((l) => l.slice(6))
        .join('\n')
      if (data) onEvent(JSON.parse(data) as ChaosEvent)
      end = buffer.indexOf('\n\n')
    }
  }
}
