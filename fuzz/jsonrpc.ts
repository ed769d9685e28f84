/**
 * Fuzzes the JSON-RPC fault proxy: a real Anvil, and the proxy in front of it in a child process
 * (so a crash shows as a dead process, and is restarted), both on 127.0.0.1. Rules are installed
 * (`stale` 0 blocks on `eth_getBalance` / `eth_getBlockByNumber`, `latency` 1 ms on
 * `net_version`), so the paths that rebuild answers run, not only pass-through.
 *
 * Payloads come from fast-check with the run's seed: valid calls, wrong `jsonrpc` / `method` /
 * `params` types, extra fields, ids of every kind (huge, fractional, exponent, objects), deep
 * nesting (params, ids, whole bodies; up to 50,000 levels), batches (empty, small, mixed, up to
 * 10,000 elements), garbage and cut JSON. Most go over HTTP, one in ten over WebSocket.
 *
 * Counted:
 * - crashes: a 5xx, a reset or refused connection, an answer that is not complete, the proxy's
 *   process gone, a WebSocket closed by the proxy;
 * - hangs: no answer within 5 s;
 * - accepted-but-invalid, against Anvil's own behaviour (no model of what is valid):
 *   when no rule matches and nothing is nested past the proxy's limit, the proxy's answer must
 *   have the same class as Anvil's to the same payload (status, and per id: result or error
 *   code); when a rule matches, every call answered with a result must get a result from Anvil
 *   when sent to it alone, and each id is answered once; a call nested deeper than the limit
 *   must get -32600.
 * At the end the proxy, its process and Anvil are stopped.
 */
import { type ChildProcess, fork } from 'node:child_process'
import * as http from 'node:http'
import { fileURLToPath } from 'node:url'
import fc from 'fast-check'
import WebSocket from 'ws'
import { MAX_JSON_DEPTH } from '../src/proxy/jsonrpc/rules.js'
import { startAnvil } from '../src/targets/anvil.js'
import type { FuzzTally, FuzzTarget } from './types.js'
import { jsonDepth } from './oracle/json.js'

/**
 * An answer later than this is a hang, unless Anvil itself needs about as long for the same
 * payload (a 10,000-call batch on a busy 2-core machine does): then it is a hang only when the
 * proxy took `HANG_MS` longer than Anvil. No answer at all within `GIVE_UP_MS` is always one.
 */
const HANG_MS = 5_000
const GIVE_UP_MS = 30_000
const EXAMPLES_MAX = 8
const CONCURRENCY = 8
/** Methods the rules match. */
const RULED = ['eth_getBalance', 'eth_getBlockByNumber', 'net_version']
const READ_ONLY = ['eth_chainId', 'eth_blockNumber', 'eth_getBalance', 'eth_getBlockByNumber', 'eth_getCode', 'eth_call', 'eth_gasPrice', 'net_version', 'web3_clientVersion', 'eth_getTransactionCount', 'eth_getLogs']
/** Method names that could change Anvil's state: a generated name that starts so becomes eth_chainId. */
const WRITES = /^(anvil|evm|hardhat|eth_send|eth_sign|personal|miner|debug|admin|txpool|ots|eth_subscribe|eth_unsubscribe|eth_newFilter|eth_newBlockFilter|eth_newPendingTransactionFilter|eth_uninstallFilter)/i

// ─── The proxy's process ─────────────────────────────────────────────────────────────────────
const childUpstream = process.env.FORKCHAOS_FUZZ_JSONRPC_UPSTREAM
if (childUpstream) {
  const { startRpcProxy } = await import('../src/proxy/jsonrpc/proxy.js')
  const { createPrng } = await import('../src/util/prng.js')
  const proxy = await startRpcProxy({ upstream: childUpstream, prng: createPrng(Number(process.env.FORKCHAOS_FUZZ_SEED ?? 1)), name: 'fuzz' })
  proxy.addRule({ match: { methods: ['eth_getBalance', 'eth_getBlockByNumber'] }, action: { type: 'stale', blocks: 0 } })
  proxy.addRule({ match: { methods: ['net_version'] }, action: { type: 'latency', latencyMs: 1 } })
  process.send?.(proxy.url)
  process.on('disconnect', () => {
    void proxy.close().then(() => process.exit(0))
  })
}

// ─── Payloads ────────────────────────────────────────────────────────────────────────────────
/** A payload as text, and what the oracle needs to know about it. */
type Payload = { text: string; ws: boolean }

const nest = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`
const rawId = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: -1_000_000, max: 1_000_000 }).map(String) },
  { weight: 4, arbitrary: fc.string({ maxLength: 16 }).map((s) => JSON.stringify(s)) },
  { weight: 1, arbitrary: fc.constantFrom('null', '1.5', '-0', '1e3', '1.0', '9007199254740993', '18446744073709551616', '9'.repeat(400), '{}', '[]', 'true', '[1,2]', '{"a":1}') },
  { weight: 1, arbitrary: fc.integer({ min: 10, max: 12_000 }).map(nest) },
  { weight: 1, arbitrary: fc.string({ minLength: 1_000, maxLength: 20_000, unit: 'grapheme-ascii' }).map((s) => JSON.stringify(s)) },
)
const method = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(...READ_ONLY).map((m) => JSON.stringify(m)) },
  { weight: 2, arbitrary: fc.string({ maxLength: 12 }).map((s) => JSON.stringify(WRITES.test(s) ? 'eth_chainId' : s)) },
  { weight: 1, arbitrary: fc.constantFrom('5', 'null', '["eth_chainId"]', '{}', 'true') },
)
const params = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('[]', '["latest"]', '["0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266","latest"]', '["latest",false]', '["0x0",true]', '[{"to":"0x0000000000000000000000000000000000000000"},"latest"]') },
  { weight: 2, arbitrary: fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 4 }).map((v) => JSON.stringify(v)) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)) },
  { weight: 1, arbitrary: fc.constantFrom(10, MAX_JSON_DEPTH - 2, MAX_JSON_DEPTH - 1, MAX_JSON_DEPTH, MAX_JSON_DEPTH + 1, 127, 1_000, 10_000, 50_000).map(nest) },
)
/** One batch element or single call, as text. */
const element: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 10,
    arbitrary: fc
      .record(
        {
          jsonrpc: fc.oneof({ weight: 9, arbitrary: fc.constant('"2.0"') }, { weight: 1, arbitrary: fc.constantFrom('"1.0"', '2', 'null', '"2"') }),
          id: rawId,
          method,
          params,
          extra: fc.constantFrom('"x"', '1'),
        },
        { requiredKeys: [] },
      )
      .map((r) => {
        // Mostly well formed: a field is left out only sometimes (the record drops each half the time).
        const fields = Object.entries(r).map(([k, v]) => `"${k}":${v}`)
        return `{${fields.join(',')}}`
      }),
  },
  {
    weight: 10,
    arbitrary: fc.record({ id: rawId, method, params }).map((r) => `{"jsonrpc":"2.0","id":${r.id},"method":${r.method},"params":${r.params}}`),
  },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v)) },
)
const payload: fc.Arbitrary<Payload> = fc
  .tuple(
    fc.oneof(
      { weight: 10, arbitrary: element },
      { weight: 5, arbitrary: fc.array(element, { maxLength: 20 }).map((xs) => `[${xs.join(',')}]`) },
      { weight: 1, arbitrary: fc.constantFrom('[]', '', ' ', '{}', 'null', '[[]]', '[1]') },
      { weight: 1, arbitrary: fc.integer({ min: 1_000, max: 10_000 }).map((n) => `[${Array.from({ length: n }, (_, i) => `{"jsonrpc":"2.0","id":${i},"method":"eth_chainId"}`).join(',')}]`) },
      { weight: 1, arbitrary: fc.integer({ min: 100, max: 50_000 }).map((n) => (n % 2 ? nest(n) : '['.repeat(n))) },
      { weight: 2, arbitrary: fc.tuple(element, fc.nat()).map(([e, n]) => e.slice(0, n % (e.length + 1))) },
      { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
    ),
    fc.nat(9),
  )
  .map(([text, n]) => ({ text, ws: n === 0 }))

// ─── What an answer says ─────────────────────────────────────────────────────────────────────
type Answer = { status: number; body: string }

/** The class of an HTTP answer: status, and per id result or error code (sorted), or the text's kind. */
function classOf(a: Answer): string {
  const value = parse(a.body)
  if (value === undefined) return `${a.status} ${a.body.length === 0 ? 'empty' : 'text'}`
  return `${a.status} ${JSON.stringify(answersOf(value).map(([id, kind]) => `${id}:${kind}`).sort())}`
}
/** [id as text, 'ok' | 'error:<code>'] per answer object. */
function answersOf(value: unknown): [string, string][] {
  const list = Array.isArray(value) ? value : [value]
  return list.map((r) => {
    if (!isRecord(r)) return ['?', 'not-an-answer']
    const kind = 'result' in r && !('error' in r) ? 'ok' : isRecord(r.error) ? `error:${String(r.error.code)}` : 'not-an-answer'
    return [safeStringify(r.id), kind]
  })
}
const parse = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}
const safeStringify = (v: unknown) => {
  try {
    return JSON.stringify(v) ?? 'undefined'
  } catch {
    return 'too-deep'
  }
}
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/** Splits a payload into element texts the way the proxy does (undefined when it is not JSON). */
function elementsOf(text: string): { batch: boolean; elements: string[] } | undefined {
  const value = parse(text)
  // Deep text JSON.parse still reads; elements are re-split by text so deep ones stay whole.
  if (value === undefined) return undefined
  if (!Array.isArray(value)) return { batch: false, elements: [text] }
  const parts: string[] = []
  let depth = 0
  let start = -1
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text[i]
    if (inString) {
      if (c === '\\') i++
      else if (c === '"') inString = false
      continue
    }
    if (c === '"') inString = true
    if (c === '[' || c === '{') {
      depth++
      if (depth === 2 && start < 0) start = i
      continue
    }
    if (c === ']' || c === '}') {
      depth--
      if (depth === 0 && start >= 0) parts.push(text.slice(start, i))
      continue
    }
    if (depth === 1 && c === ',') {
      if (start >= 0) parts.push(text.slice(start, i))
      start = -1
    } else if (depth === 1 && start < 0 && !/\s/.test(c as string)) start = i
  }
  return { batch: true, elements: parts }
}

/**
 * The element's `id` if it can be given back exactly (a string, null, or a safe integer written
 * as one: `1e3` parses to 1000 but no node reads it as an id), else undefined. `text` is the element's.
 */
function echoableId(el: unknown, text: string): string | undefined {
  if (!isRecord(el) || !Object.hasOwn(el, 'id')) return undefined
  const id = el.id
  if (typeof id === 'string' || id === null) return JSON.stringify(id)
  return Number.isSafeInteger(id) && new RegExp(`"id":${id === 0 ? '-?0' : String(id)}[,}]`).test(text) ? String(id) : undefined
}
/** An answer's id that names one call exactly (not a number rounded on the way through JSON.parse). */
const exactId = (id: string) => {
  const v = parse(id)
  return typeof v !== 'number' || Number.isSafeInteger(v)
}

// ─── Transport ───────────────────────────────────────────────────────────────────────────────
type Outcome = { kind: 'answer'; answer: Answer; ms: number } | { kind: 'crash'; reason: string } | { kind: 'hang' }

function post(url: string, body: string, agent: http.Agent): Promise<Outcome> {
  return new Promise((resolve) => {
    const t0 = performance.now()
    const req = http.request(url, { method: 'POST', headers: { 'content-type': 'application/json' }, agent, signal: AbortSignal.timeout(GIVE_UP_MS) }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const status = res.statusCode ?? 0
        if (!res.complete) resolve({ kind: 'crash', reason: 'incomplete answer' })
        else if (status >= 500) resolve({ kind: 'crash', reason: `status ${status}: ${Buffer.concat(chunks).toString().slice(0, 120)}` })
        else resolve({ kind: 'answer', answer: { status, body: Buffer.concat(chunks).toString() }, ms: performance.now() - t0 })
      })
      res.on('error', (e) => resolve(e.name === 'AbortError' ? { kind: 'hang' } : { kind: 'crash', reason: e.message }))
    })
    req.on('error', (e: NodeJS.ErrnoException) => resolve(e.name === 'AbortError' || e.name === 'TimeoutError' ? { kind: 'hang' } : { kind: 'crash', reason: e.code ?? e.message }))
    req.end(body)
  })
}

/**
 * One payload over a fresh WebSocket, then a sentinel call: answers until the sentinel's and the
 * payload's echoable ids arrived (answers to other parts of the payload are collected as they come).
 */
async function overWs(url: string, text: string, expectIds: readonly string[]): Promise<Outcome & { answers?: [string, string][] }> {
  const ws = new WebSocket(url, { maxPayload: 64 * 1024 * 1024 })
  try {
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve())
      ws.once('error', reject)
    })
  } catch (error) {
    return { kind: 'crash', reason: `ws connect: ${(error as Error).message}` }
  }
  ws.on('error', () => {})
  const answers: [string, string][] = []
  const waiting = new Map<string, number>()
  for (const id of expectIds) waiting.set(id, (waiting.get(id) ?? 0) + 1)
  waiting.set('"fuzz-sentinel"', 1)
  const result = await new Promise<Outcome>((resolve) => {
    const timer = setTimeout(() => resolve({ kind: 'hang' }), HANG_MS)
    ws.on('message', (data) => {
      const value = parse(String(data))
      if (value === undefined) return answers.push(['?', 'text'])
      for (const [id, kind] of answersOf(value)) {
        const left = waiting.get(id)
        if (left !== undefined) left <= 1 ? waiting.delete(id) : waiting.set(id, left - 1)
        if (id !== '"fuzz-sentinel"') answers.push([id, kind])
      }
      if (waiting.size === 0) {
        clearTimeout(timer)
        resolve({ kind: 'answer', answer: { status: 101, body: '' }, ms: 0 })
      }
    })
    ws.on('close', (code) => {
      clearTimeout(timer)
      resolve({ kind: 'crash', reason: `ws closed ${code}` })
    })
    ws.send(text)
    ws.send('{"jsonrpc":"2.0","id":"fuzz-sentinel","method":"eth_chainId"}')
  })
  ws.removeAllListeners('close')
  ws.terminate()
  return { ...result, answers }
}

// ─── The target ──────────────────────────────────────────────────────────────────────────────
export const jsonrpcTarget: FuzzTarget = {
  name: 'jsonrpc',
  async run({ count, seed }) {
    const tally: FuzzTally = { inputs: 0, crashes: 0, hangs: 0, acceptedInvalid: 0, examples: [] }
    const note = (kind: 'crashes' | 'hangs' | 'acceptedInvalid', why: string, p: Payload) => {
      tally[kind]++
      if (tally.examples.length < EXAMPLES_MAX) tally.examples.push(`${kind} (${p.ws ? 'ws' : 'http'}): ${why} · payload ${JSON.stringify(p.text.length > 300 ? `${p.text.slice(0, 300)}… (${p.text.length} chars)` : p.text)}`)
    }
    const anvil = await startAnvil({ label: 'fuzz-jsonrpc' })
    let child: ChildProcess | undefined
    /** The end of the proxy process's stderr, for a death's reproducer. */
    let lastStderr = ''
    const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY })
    const direct = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY * 2 })
    const startChild = async () => {
      const here = fileURLToPath(import.meta.url)
      const c = fork(here, [], {
        env: { ...process.env, FORKCHAOS_FUZZ_JSONRPC_UPSTREAM: anvil.url, FORKCHAOS_FUZZ_SEED: String(seed) },
        execArgv: here.endsWith('.ts') ? ['--import', 'tsx'] : [],
        stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      })
      child = c
      c.stderr?.on('data', (chunk: Buffer) => {
        lastStderr = (lastStderr + chunk.toString()).slice(-2_000)
      })
      return new Promise<string>((resolve, reject) => {
        c.once('message', (m) => resolve(String(m)))
        c.once('exit', (code) => reject(new Error(`the proxy's process exited (${code}) before it listened`)))
      })
    }
    try {
      let url = await startChild()
      const anvilWs = anvil.url.replace(/^http/, 'ws')
      const inputs = fc.sample(payload, { seed, numRuns: count })
      let next = 0
      let restarting: Promise<void> | undefined
      const alive = async () => {
        if (child && child.exitCode === null && child.signalCode === null) return true
        restarting ??= startChild().then((u) => {
          url = u
          restarting = undefined
        })
        await restarting
        return false
      }

      const check = async (p: Payload) => {
        const split = elementsOf(p.text)
        const elements = split?.elements ?? []
        const values = elements.map(parse)
        const tooDeep = elements.map((e) => jsonDepth(e) > MAX_JSON_DEPTH)
        const ruled = values.some((v) => isRecord(v) && typeof v.method === 'string' && RULED.includes(v.method))
        const changed = ruled || tooDeep.some(Boolean)

        if (p.ws) {
          // Anvil answers each element by its id only when it can read every element's id and the
          // whole text (else it refuses the batch with one id-null answer): only then are ids awaited.
          const perElement =
            split !== undefined && values.every((v, i) => isRecord(v) && (!Object.hasOwn(v, 'id') || echoableId(v, elements[i] as string) !== undefined)) && jsonDepth(p.text) < 127
          const ids = perElement
            ? values.flatMap((v, i) => {
                const id = echoableId(v, elements[i] as string)
                return id !== undefined && id !== 'null' ? [id] : []
              })
            : []
          const proxied = await overWs(url.replace(/^http/, 'ws'), p.text, ids)
          if (proxied.kind === 'crash') return (await alive()) ? note('crashes', proxied.reason, p) : note('crashes', `the proxy process died: ${lastStderr.trim().split('\n').slice(-3).join(' | ')}`, p)
          if (proxied.kind === 'hang') return note('hangs', `no answer to the sentinel${ids.length ? ' or an id' : ''} in ${HANG_MS} ms`, p)
          if (changed) return checkChanged(p, elements, values, tooDeep, proxied.answers ?? [])
          if (!perElement) return
          const straight = await overWs(anvilWs, p.text, ids)
          if (straight.kind !== 'answer') return
          const keyed = (xs: [string, string][] | undefined) => JSON.stringify((xs ?? []).filter(([id]) => id !== 'null' && id !== '?').sort())
          const a = keyed(proxied.answers)
          const b = keyed(straight.answers)
          if (a !== b) note('acceptedInvalid', `answers differ from Anvil's: proxy ${a.slice(0, 200)} · anvil ${b.slice(0, 200)}`, p)
          return
        }

        const proxied = await post(url, p.text, agent)
        if (proxied.kind === 'crash') return (await alive()) ? note('crashes', proxied.reason, p) : note('crashes', `the proxy process died: ${lastStderr.trim().split('\n').slice(-3).join(' | ')}`, p)
        if (proxied.kind === 'hang') return note('hangs', `no answer in ${GIVE_UP_MS} ms`, p)
        if (proxied.ms > HANG_MS) {
          const straight = await post(anvil.url, p.text, direct)
          const anvilMs = straight.kind === 'answer' ? straight.ms : GIVE_UP_MS
          if (proxied.ms > anvilMs + HANG_MS) return note('hangs', `answered in ${proxied.ms.toFixed(0)} ms, Anvil directly in ${anvilMs.toFixed(0)} ms`, p)
        }
        if (!changed) {
          const straight = await post(anvil.url, p.text, direct)
          if (straight.kind !== 'answer') return
          const a = classOf(proxied.answer)
          const b = classOf(straight.answer)
          if (a !== b) note('acceptedInvalid', `answer class differs from Anvil's: proxy ${a.slice(0, 200)} · anvil ${b.slice(0, 200)}`, p)
          return
        }
        const value = parse(proxied.answer.body)
        if (proxied.answer.status !== 200 && proxied.answer.status !== 204) return note('acceptedInvalid', `status ${proxied.answer.status}`, p)
        if (proxied.answer.status === 200 && value === undefined) return note('crashes', `a 200 whose body is not JSON: ${proxied.answer.body.slice(0, 100)}`, p)
        return checkChanged(p, elements, values, tooDeep, value === undefined ? [] : answersOf(value))
      }

      /** Rule path or refused elements: deep ones -32600, no result where Anvil alone refuses, each id at most once per asking. */
      const checkChanged = async (p: Payload, elements: string[], values: unknown[], tooDeep: boolean[], answers: [string, string][]) => {
        const byId = new Map<string, string[]>()
        for (const [id, kind] of answers) byId.set(id, [...(byId.get(id) ?? []), kind])
        const asked = new Map<string, number>()
        values.forEach((v, i) => {
          const id = echoableId(v, elements[i] as string)
          if (id !== undefined) asked.set(id, (asked.get(id) ?? 0) + 1)
        })
        for (const [id, kinds] of byId)
          if (id !== 'null' && exactId(id) && kinds.length > (asked.get(id) ?? 0)) return note('acceptedInvalid', `id ${id.slice(0, 40)} answered ${kinds.length} times, asked ${asked.get(id) ?? 0}`, p)
        // Per element with an id only it has: its answer against Anvil's answer to it alone.
        const sample = values.length > 20 ? values.slice(0, 20) : values
        for (let i = 0; i < sample.length; i++) {
          const v = sample[i]
          const id = echoableId(v, elements[i] as string)
          if (id === undefined || id === 'null' || asked.get(id) !== 1) continue
          const kinds = byId.get(id)
          if (!kinds) continue // Anvil may answer a batch as one id-null error; then no id is answered
          if (tooDeep[i]) {
            if (kinds[0] !== 'error:-32600') note('acceptedInvalid', `a call nested past ${MAX_JSON_DEPTH} levels got ${kinds[0]}, not -32600`, p)
            continue
          }
          if (kinds[0] !== 'ok') continue
          const alone = await post(anvil.url, JSON.stringify(v), direct)
          if (alone.kind !== 'answer') continue
          const verdict = answersOf(parse(alone.answer.body))[0]?.[1]
          if (verdict !== 'ok') return note('acceptedInvalid', `element ${i} answered with a result; Anvil alone answers ${verdict}`, p)
        }
      }

      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          while (next < inputs.length) {
            const p = inputs[next++] as Payload
            tally.inputs++
            await check(p)
          }
        }),
      )
      if (!(await alive())) note('crashes', 'the proxy process died at the end', { text: '', ws: false })
    } finally {
      agent.destroy()
      direct.destroy()
      if (child && child.exitCode === null) {
        const c = child
        const exited = new Promise((resolve) => c.once('exit', resolve))
        c.disconnect()
        await Promise.race([exited, new Promise((r) => setTimeout(r, 3_000))])
        if (c.exitCode === null) c.kill('SIGKILL')
      }
      await anvil.stop()
    }
    return tally
  },
}

export default jsonrpcTarget
