/**
 * Mixed WebSocket JSON-RPC traffic, the same for `bench/ws-proxy.ts` and `test/ws-proxy.test.ts`:
 * single calls, calls in binary frames, empty and small batches, one 10,000-element batch (on
 * connection 0), huge ids,
 * 50,000-deep nesting, notifications, garbage and subscriptions, drawn from a seed. Each message
 * says what answer it expects, so a client can check that every call was answered exactly once.
 */
import WebSocket from 'ws'
import type { Prng } from '../src/util/prng.js'

/** What one message should get back. */
export type Expect =
  /** One answer per id, each with a `result` (ok) or an `error` with this code. */
  | { kind: 'ids'; ids: readonly (string | number)[]; error: number | undefined }
  /** One answer with `id: null` and this error code (the text could not carry an id that can be echoed). */
  | { kind: 'null-id'; error: number }
  /** No answer (a notification). */
  | { kind: 'none' }

export type MixMessage = { label: MixLabel; data: string; binary: boolean; expect: Expect }
export type MixLabel = 'call' | 'binary' | 'empty-batch' | 'batch' | 'batch-10k' | 'long-id' | 'huge-number-id' | 'deep' | 'notification' | 'garbage' | 'subscribe'

/** How deep the `deep` messages nest their params. */
export const DEEP_LEVELS = 50_000
/** Elements of a `batch-10k` message. */
export const LARGE_BATCH = 10_000

const methods: readonly (readonly [string, unknown[]])[] = [
  ['eth_chainId', []],
  ['eth_blockNumber', []],
  ['net_version', []],
  ['eth_getBalance', ['0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266', 'latest']],
  ['eth_getBlockByNumber', ['latest', false]],
]

/**
 * `count` messages for connection `connection`. Ids are unique within the connection. `deepAnswer`
 * says how a 50,000-deep call is answered: `'id'` by the forkchaos proxy (its own -32600 with the
 * call's id), `'null-id'` by Anvil (-32600 with `id: null`, it cannot read the id).
 */
export function mixedMessages(prng: Prng, connection: number, count: number, deepAnswer: 'id' | 'null-id'): MixMessage[] {
  let next = 0
  const id = () => `c${connection}-${++next}`
  const call = (i: string | undefined) => {
    const [method, params] = methods[prng.int(0, methods.length - 1)] as (typeof methods)[number]
    return JSON.stringify(i === undefined ? { jsonrpc: '2.0', method, params } : { jsonrpc: '2.0', id: i, method, params })
  }
  const out: MixMessage[] = []
  for (let n = 0; n < count; n++) {
    const roll = prng.next()
    if (connection === 0 && n === Math.floor(count / 2)) {
      // One 10,000-element batch per run, mid-stream on the first connection.
      const ids = Array.from({ length: LARGE_BATCH }, id)
      out.push({ label: 'batch-10k', data: `[${ids.map(call).join(',')}]`, binary: false, expect: { kind: 'ids', ids, error: undefined } })
    } else if (roll < 0.5) {
      const i = id()
      out.push({ label: 'call', data: call(i), binary: false, expect: { kind: 'ids', ids: [i], error: undefined } })
    } else if (roll < 0.58) {
      const i = id()
      out.push({ label: 'binary', data: call(i), binary: true, expect: { kind: 'ids', ids: [i], error: undefined } })
    } else if (roll < 0.62) out.push({ label: 'empty-batch', data: '[]', binary: false, expect: { kind: 'null-id', error: -32600 } })
    else if (roll < 0.7) {
      const ids = Array.from({ length: prng.int(2, 20) }, id)
      out.push({ label: 'batch', data: `[${ids.map(call).join(',')}]`, binary: false, expect: { kind: 'ids', ids, error: undefined } })
    } else if (roll < 0.74) {
      const i = `${id()}-${'x'.repeat(prng.int(1_000, 20_000))}`
      out.push({ label: 'long-id', data: call(i), binary: false, expect: { kind: 'ids', ids: [i], error: undefined } })
    } else if (roll < 0.76) {
      // 400 digits: no JSON-RPC server can echo it as a number; Anvil refuses it with id null.
      out.push({ label: 'huge-number-id', data: `{"jsonrpc":"2.0","id":${'9'.repeat(400)},"method":"eth_chainId","params":[]}`, binary: false, expect: { kind: 'null-id', error: -32600 } })
    } else if (roll < 0.8) {
      const i = id()
      const data = `{"jsonrpc":"2.0","id":"${i}","method":"eth_call","params":${'['.repeat(DEEP_LEVELS)}${']'.repeat(DEEP_LEVELS)}}`
      out.push({ label: 'deep', data, binary: false, expect: deepAnswer === 'id' ? { kind: 'ids', ids: [i], error: -32600 } : { kind: 'null-id', error: -32600 } })
    } else if (roll < 0.86) out.push({ label: 'notification', data: call(undefined), binary: false, expect: { kind: 'none' } })
    else if (roll < 0.9) out.push({ label: 'garbage', data: '{"jsonrpc":"2.0","id":', binary: false, expect: { kind: 'null-id', error: -32600 } })
    else if (roll < 0.93) {
      const i = id()
      out.push({ label: 'subscribe', data: JSON.stringify({ jsonrpc: '2.0', id: i, method: 'eth_subscribe', params: ['newHeads'] }), binary: false, expect: { kind: 'ids', ids: [i], error: undefined } })
    } else {
      const i = id()
      out.push({ label: 'call', data: call(i), binary: false, expect: { kind: 'ids', ids: [i], error: undefined } })
    }
  }
  return out
}

/** What one connection saw. */
export type ConnectionRun = {
  /** First message sent → last expected answer received, ms. */
  spanMs: number
  /** Per message with ids: sent → answered, ms (a batch counts once). */
  latenciesMs: number[]
  /** Answers per id (should all be 1), and what each said. */
  answers: Map<string | number, { count: number; ok: boolean; code: number | undefined }>
  /** `id: null` answers, by error code. */
  nullIdAnswers: Map<number, number>
  /** Frames that were neither an answer nor a subscription notification. */
  strays: string[]
  notifications: number
  /** The close code the client saw, when it closed (`closeAfterMs`). */
  closeCode: number | undefined
  /** All expected answers arrived before `timeoutMs`. */
  complete: boolean
}

/**
 * Opens one connection, sends every message at once (as a client pipelining calls does),
 * and collects answers until all expected ones arrived or `timeoutMs` passed; then closes.
 */
export async function runConnection(url: string, messages: readonly MixMessage[], timeoutMs: number): Promise<ConnectionRun> {
  const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 })
  await new Promise<void>((resolve, reject) => ws.once('open', () => resolve()).once('error', reject))
  ws.on('error', () => {})
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)))
  const sentAt = new Map<string | number, number>()
  /** A message's latency is its first id's: a batch counts once. */
  const firstIds = new Set<string | number>()
  let expectedFrames = 0
  const answers: ConnectionRun['answers'] = new Map()
  const nullIdAnswers = new Map<number, number>()
  const latenciesMs: number[] = []
  const strays: string[] = []
  let notifications = 0
  let frames = 0
  let last = 0
  for (const m of messages) if (m.expect.kind !== 'none') expectedFrames++
  const run = new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs)
    const done = () => {
      clearTimeout(timer)
      resolve(true)
    }
    ws.on('message', (data) => {
      const now = performance.now()
      const text = String(data)
      let value: unknown
      try {
        value = JSON.parse(text)
      } catch {
        strays.push(text.slice(0, 200))
        return
      }
      if (isRecord(value) && value.method === 'eth_subscription') {
        notifications++
        return
      }
      frames++
      last = now
      for (const r of Array.isArray(value) ? value : [value]) {
        if (!isRecord(r) || !('id' in r)) {
          strays.push(text.slice(0, 200))
          continue
        }
        const code = isRecord(r.error) && typeof r.error.code === 'number' ? r.error.code : undefined
        if (r.id === null) {
          nullIdAnswers.set(code ?? 0, (nullIdAnswers.get(code ?? 0) ?? 0) + 1)
          continue
        }
        const key = r.id as string | number
        const seen = answers.get(key)
        if (seen) seen.count++
        else answers.set(key, { count: 1, ok: 'result' in r && !('error' in r), code })
        const t = sentAt.get(key)
        if (t !== undefined && !seen && firstIds.has(key)) latenciesMs.push(now - t)
      }
      if (frames >= expectedFrames) done()
    })
    ws.on('close', () => done())
  })
  const t0 = performance.now()
  for (const m of messages) {
    const t = performance.now()
    if (m.expect.kind === 'ids') {
      for (const id of m.expect.ids) sentAt.set(id, t)
      if (m.expect.ids[0] !== undefined) firstIds.add(m.expect.ids[0])
    }
    ws.send(m.data, { binary: m.binary })
  }
  const complete = (await run) && frames >= expectedFrames
  if (ws.readyState === WebSocket.OPEN) ws.close()
  const closeCode = await Promise.race([closed, new Promise<undefined>((r) => setTimeout(() => r(undefined), 5_000))])
  if (ws.readyState !== WebSocket.CLOSED) ws.terminate()
  return { spanMs: last - t0, latenciesMs, answers, nullIdAnswers, strays, notifications, closeCode, complete }
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
