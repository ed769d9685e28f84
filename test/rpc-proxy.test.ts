import * as http from 'node:http'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { type RpcEvent, type RpcProxy, startRpcProxy } from '../src/proxy/jsonrpc/proxy.js'
import { MAX_JSON_DEPTH, type RuleSpec } from '../src/proxy/jsonrpc/rules.js'
import { type AnvilInstance, startAnvil } from '../src/targets/anvil.js'
import { createPrng, type Prng } from '../src/util/prng.js'

let anvil: AnvilInstance
const proxies: RpcProxy[] = []
const sockets: WebSocket[] = []

beforeAll(async () => {
  anvil = await startAnvil({ label: 'rpc-proxy-test' })
})
afterAll(() => anvil?.stop())
afterEach(async () => {
  for (const ws of sockets.splice(0)) ws.terminate()
  await Promise.all(proxies.splice(0).map((p) => p.close()))
})

const start = async (seed = 1, onRequest?: (e: RpcEvent) => void) => {
  const proxy = await startRpcProxy({ upstream: anvil.url, prng: createPrng(seed), ...(onRequest ? { onRequest } : {}) })
  proxies.push(proxy)
  return proxy
}

type Raw = { status: number; headers: http.IncomingHttpHeaders; body: Buffer; complete: boolean }

/** A raw POST that also reports answers cut short (truncate) instead of throwing. */
function post(url: string, body: string | Buffer, options: { headers?: Record<string, string>; timeoutMs?: number } = {}): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...options.headers },
        agent: false,
        ...(options.timeoutMs ? { signal: AbortSignal.timeout(options.timeoutMs) } : {}),
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        const done = (complete: boolean) => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), complete })
        res.on('end', () => done(res.complete))
        res.on('aborted', () => done(false))
        res.on('error', () => done(false))
      },
    )
    req.on('error', reject)
    req.end(body)
  })
}

const call = (method: string, params: unknown[] = [], id: unknown = 1) => JSON.stringify({ jsonrpc: '2.0', id, method, params })
const json = async (url: string, body: string, headers?: Record<string, string>) => JSON.parse((await post(url, body, headers ? { headers } : {})).body.toString())
const result = async (url: string, method: string, params: unknown[] = []) => {
  const reply = await json(url, call(method, params))
  if (reply.error) throw new Error(`${method}: ${JSON.stringify(reply.error)}`)
  return reply.result
}
const isJson = (b: Buffer) => {
  try {
    JSON.parse(b.toString())
    return true
  } catch {
    return false
  }
}
const waitFor = async (check: () => boolean, timeoutMs = 5_000) => {
  const until = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > until) throw new Error('condition not met in time')
    await new Promise((r) => setTimeout(r, 10))
  }
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('pass-through', () => {
  it('forwards single calls, batches and invalid JSON byte for byte', async () => {
    const proxy = await start()
    const bodies = [
      call('eth_chainId'),
      call('eth_getBlockByNumber', ['0x0', true], 'str-id'),
      call('eth_getBalance', ['0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266', '0x0']),
      `[${call('eth_chainId', [], 1)},${call('net_version', [], 2)},{"jsonrpc":"2.0","method":"eth_chainId"},5]`,
      '[]',
      '{"jsonrpc":',
      '  {"jsonrpc": "2.0", "id": 7, "method": "no_such_method"}  ',
      '',
      '{"jsonrpc":"2.0","method":"eth_chainId"}',
    ]
    for (const body of bodies) {
      const [direct, proxied] = await Promise.all([post(anvil.url, body), post(proxy.url, body)])
      expect({ status: proxied.status, type: proxied.headers['content-type'], body: proxied.body.toString('hex') }, body).toEqual({
        status: direct.status,
        type: direct.headers['content-type'],
        body: direct.body.toString('hex'),
      })
    }
    // 12 calls: the batch counts 4, each body that is not a call counts 1.
    expect(proxy.stats()).toMatchObject({ requests: 12, forwarded: 12 })
    // Anvil refuses the whole batch with the bare `5` in it: its two eth_chainId calls count as errors.
    expect(proxy.stats().byMethod.eth_chainId).toEqual({ requests: 4, errors: 2 })
  })

  it('refuses bodies over 5 MiB with 413 and a JSON-RPC error, and keeps serving', async () => {
    const proxy = await start()
    const reply = await post(proxy.url, Buffer.alloc(6 * 1024 * 1024, 0x20))
    expect(reply.status).toBe(413)
    expect(JSON.parse(reply.body.toString()).error.code).toBe(-32600)
    expect(await result(proxy.url, 'eth_chainId')).toBe('0x7a69')
  })
})

describe('actions', () => {
  it('latency delays the answer by at least latencyMs and leaves it unchanged', async () => {
    const proxy = await start()
    proxy.addRule({ match: { methods: ['eth_chainId'] }, action: { type: 'latency', latencyMs: 250, jitterMs: 50 } })
    const t0 = performance.now()
    const reply = await post(proxy.url, call('eth_chainId'))
    const elapsed = performance.now() - t0
    expect(elapsed).toBeGreaterThanOrEqual(245)
    expect(elapsed).toBeLessThan(3_000)
    expect(reply.body.toString()).toBe((await post(anvil.url, call('eth_chainId'))).body.toString())
    const t1 = performance.now()
    await post(proxy.url, call('net_version'))
    expect(performance.now() - t1).toBeLessThan(200)
  })

  it('hang holds the call until the client gives up, and releases held calls on rule removal', async () => {
    const events: RpcEvent[] = []
    const proxy = await start(1, (e) => events.push(e))
    const id = proxy.addRule({ match: { methods: ['eth_chainId'] }, action: { type: 'hang' } })
    const t0 = performance.now()
    await expect(post(proxy.url, call('eth_chainId'), { timeoutMs: 300 })).rejects.toThrow(/abort|timeout/i)
    expect(performance.now() - t0).toBeGreaterThanOrEqual(290)
    await waitFor(() => proxy.stats().hanging === 0)
    expect(events.at(-1)).toMatchObject({ method: 'eth_chainId', outcome: 'dropped', ruleIds: [id] })

    const patient = post(proxy.url, call('eth_chainId'))
    await waitFor(() => proxy.stats().hanging === 1)
    expect(proxy.removeRule(id)).toBe(true)
    await expect(patient).rejects.toThrow(/socket hang up|ECONNRESET/)
    expect(proxy.stats().hanging).toBe(0)
    expect(await result(proxy.url, 'eth_chainId')).toBe('0x7a69')
  })

  it('http-error answers with the status, Retry-After on 429, and provider-shaped bodies', async () => {
    const proxy = await start()
    const id = proxy.addRule({ action: { type: 'http-error', status: 429, retryAfterS: 7 } })
    const limited = await post(proxy.url, call('eth_chainId', [], 42))
    expect(limited.status).toBe(429)
    expect(limited.headers['retry-after']).toBe('7')
    expect(JSON.parse(limited.body.toString())).toEqual({
      jsonrpc: '2.0',
      id: 42,
      error: { code: -32005, message: 'rate limit exceeded', data: { backoff_seconds: 7 } },
    })
    proxy.removeRule(id)
    for (const status of [500, 502, 503, 504] as const) {
      const rule = proxy.addRule({ action: { type: 'http-error', status } })
      const reply = await post(proxy.url, call('eth_chainId'))
      expect(reply.status).toBe(status)
      expect(reply.body.length).toBeGreaterThan(0)
      if (status === 503) expect(reply.headers['retry-after']).toBe('1')
      proxy.removeRule(rule)
    }
  })

  it('rpc-error answers the call with a JSON-RPC error: realistic default, or the code and message given', async () => {
    const proxy = await start()
    const id = proxy.addRule({ match: { methods: ['eth_chainId'] }, action: { type: 'rpc-error' } })
    expect(await json(proxy.url, call('eth_chainId', [], 'a'))).toEqual({ jsonrpc: '2.0', id: 'a', error: { code: -32005, message: 'request rate exceeded' } })
    proxy.removeRule(id)
    proxy.addRule({ match: { methods: ['eth_chainId'] }, action: { type: 'rpc-error', code: -32603, message: 'boom', data: { why: 'test' } } })
    expect((await json(proxy.url, call('eth_chainId'))).error).toEqual({ code: -32603, message: 'boom', data: { why: 'test' } })
    expect(proxy.stats().forwarded).toBe(0)
  })

  it('stale answers as a node N blocks behind', async () => {
    const proxy = await start()
    const fresh = '0x1111111111111111111111111111111111111111'
    const before = BigInt(await result(anvil.url, 'eth_blockNumber'))
    await anvil.rpc.request('anvil_mine', ['0x14'])
    const hash = await anvil.rpc.request<string>('eth_sendTransaction', [
      { from: '0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266', to: fresh, value: '0xde0b6b3a7640000' },
    ])
    await anvil.rpc.request('anvil_mine', ['0x2'])
    const head = BigInt(await result(anvil.url, 'eth_blockNumber'))
    expect(head).toBe(before + 23n)
    expect(await result(anvil.url, 'eth_getBalance', [fresh, 'latest'])).toBe('0xde0b6b3a7640000')

    proxy.addRule({ action: { type: 'stale', blocks: 10 } })
    const target = head - 10n
    expect(BigInt(await result(proxy.url, 'eth_blockNumber'))).toBe(target)
    expect(BigInt((await result(proxy.url, 'eth_getBlockByNumber', ['latest', false])).number)).toBe(target)
    expect(await result(proxy.url, 'eth_getBalance', [fresh, 'latest'])).toBe('0x0')
    expect(await result(proxy.url, 'eth_getBalance', [fresh])).toBe('0x0')
    expect(await result(proxy.url, 'eth_getTransactionReceipt', [hash])).toBeNull()
    expect(await result(proxy.url, 'eth_getBlockByNumber', [`0x${head.toString(16)}`, false])).toBeNull()
    expect((await json(proxy.url, call('eth_getBalance', [fresh, `0x${head.toString(16)}`]))).error).toEqual({ code: -32000, message: 'header not found' })
    expect(BigInt((await result(proxy.url, 'eth_getBlockByNumber', ['safe', false])).number)).toBeLessThanOrEqual(target)
    // In a batch, too, and only for the calls a rule matches.
    proxy.clearRules()
    proxy.addRule({ match: { methods: ['eth_blockNumber'] }, action: { type: 'stale', blocks: 3 } })
    const batch = await json(proxy.url, `[${call('eth_blockNumber', [], 1)},${call('eth_getBalance', [fresh, 'latest'], 2)}]`)
    expect(batch).toEqual([
      { jsonrpc: '2.0', id: 1, result: `0x${(head - 3n).toString(16)}` },
      { jsonrpc: '2.0', id: 2, result: '0xde0b6b3a7640000' },
    ])
  })

  it('partial fails a seeded share of a batch, the same elements for the same seed', async () => {
    const body = `[${Array.from({ length: 100 }, (_, i) => call('eth_chainId', [], i)).join(',')}]`
    const failedWith = async (seed: number) => {
      const proxy = await start(seed)
      proxy.addRule({ action: { type: 'partial', failProbability: 0.5 } })
      const replies = (await json(proxy.url, body)) as { id: number; result?: string; error?: { code: number } }[]
      expect(replies).toHaveLength(100)
      for (const r of replies) expect(r.result === '0x7a69' || r.error?.code === -32005).toBe(true)
      expect(proxy.stats().forwarded).toBe(replies.filter((r) => r.result).length)
      return replies.filter((r) => r.error).map((r) => r.id)
    }
    const first = await failedWith(7)
    expect(first.length).toBeGreaterThanOrEqual(25)
    expect(first.length).toBeLessThanOrEqual(75)
    expect(await failedWith(7)).toEqual(first)
    expect(await failedWith(8)).not.toEqual(first)
    // A single call fails like rpc-error, with that probability.
    const proxy = await start(3)
    proxy.addRule({ action: { type: 'partial', failProbability: 1, code: -32603 } })
    expect((await json(proxy.url, call('eth_chainId'))).error.code).toBe(-32603)
  })

  it('truncate cuts the body and closes; malformed sends broken JSON with 200', async () => {
    const proxy = await start()
    const body = call('eth_getBlockByNumber', ['0x0', false])
    const full = (await post(anvil.url, body)).body
    const id = proxy.addRule({ action: { type: 'truncate' } })
    const cut = await post(proxy.url, body)
    expect(cut.complete).toBe(false)
    expect(cut.body.length).toBeLessThan(full.length)
    expect(cut.body.toString()).toBe(full.subarray(0, cut.body.length).toString())
    expect(isJson(cut.body)).toBe(false)
    proxy.removeRule(id)
    const ten = proxy.addRule({ action: { type: 'truncate', bytes: 10 } })
    expect((await post(proxy.url, body)).body.toString()).toBe(full.subarray(0, 10).toString())
    proxy.removeRule(ten)

    proxy.addRule({ action: { type: 'malformed' } })
    const broken = await post(proxy.url, body)
    expect(broken.status).toBe(200)
    expect(broken.headers['content-type']).toBe('application/json')
    expect(isJson(broken.body)).toBe(false)
  })

  it('slow-consumer throttles the body to bytesPerSecond without changing it', async () => {
    const proxy = await start()
    const body = call('eth_getBlockByNumber', ['0x0', true])
    const full = (await post(anvil.url, body)).body
    proxy.addRule({ action: { type: 'slow-consumer', bytesPerSecond: 4_000 } })
    const t0 = performance.now()
    const slow = await post(proxy.url, body)
    expect(performance.now() - t0).toBeGreaterThanOrEqual((full.length / 4_000) * 1000 * 0.8)
    expect(slow.body.equals(full)).toBe(true)
  })

  it("rewrite flips a bit of a block's stateRoot and leaves the rest alone", async () => {
    const proxy = await start()
    const flip = (v: unknown) => {
      const hex = v as string
      const last = Number.parseInt(hex.slice(-1), 16) ^ 1
      return hex.slice(0, -1) + last.toString(16)
    }
    const seen: unknown[] = []
    proxy.addRule({
      match: { methods: ['eth_getBlockByNumber'] },
      action: { type: 'rewrite', path: 'result.stateRoot', with: (v, ctx) => (seen.push(ctx.params), flip(v)) },
    })
    const direct = await result(anvil.url, 'eth_getBlockByNumber', ['0x1', false])
    const byzantine = await result(proxy.url, 'eth_getBlockByNumber', ['0x1', false])
    expect(byzantine.stateRoot).not.toBe(direct.stateRoot)
    expect(BigInt(byzantine.stateRoot) ^ BigInt(direct.stateRoot)).toBe(1n)
    expect({ ...byzantine, stateRoot: direct.stateRoot }).toEqual(direct)
    expect(seen).toEqual([['0x1', false]])
    // Without the prefix, too; other methods untouched.
    proxy.clearRules()
    proxy.addRule({ action: { type: 'rewrite', path: 'stateRoot', with: flip } })
    expect(BigInt((await result(proxy.url, 'eth_getBlockByNumber', ['0x1', false])).stateRoot) ^ BigInt(direct.stateRoot)).toBe(1n)
    expect(await result(proxy.url, 'eth_chainId')).toBe('0x7a69')
  })
})

describe('matching', () => {
  it("matches method prefixes ('eth_*'), batch positions and clients; probability 0 never applies", async () => {
    const events: RpcEvent[] = []
    const proxy = await start(1, (e) => events.push(e))
    const prefix = proxy.addRule({ match: { methods: ['eth_*'] }, action: { type: 'rpc-error' } })
    expect((await json(proxy.url, call('eth_chainId'))).error.code).toBe(-32005)
    expect((await json(proxy.url, call('net_version'))).result).toBe('31337')
    proxy.removeRule(prefix)

    const indexed = proxy.addRule({ match: { batchIndex: [1] }, action: { type: 'rpc-error', code: -32603 } })
    events.length = 0
    const replies = await json(proxy.url, `[${[0, 1, 2].map((i) => call('eth_chainId', [], i)).join(',')}]`)
    expect(replies.map((r: { result?: string; error?: { code: number } }) => r.result ?? r.error?.code)).toEqual(['0x7a69', -32603, '0x7a69'])
    expect(events.map((e) => [e.method, e.outcome, e.ruleIds])).toEqual([
      ['eth_chainId', 'ok', []],
      ['eth_chainId', 'error', [indexed]],
      ['eth_chainId', 'ok', []],
    ])
    expect((await json(proxy.url, call('eth_chainId'))).result).toBe('0x7a69') // batchIndex never matches a single call
    proxy.removeRule(indexed)

    proxy.addRule({ match: { clients: ['alice'] }, action: { type: 'rpc-error' } })
    expect((await json(proxy.url, call('eth_chainId'), { 'x-forkchaos-client': 'alice' })).error.code).toBe(-32005)
    expect((await json(proxy.url, call('eth_chainId'), { 'x-forkchaos-client': 'bob' })).result).toBe('0x7a69')
    expect(events.at(-1)?.client).toBe('bob')
    proxy.clearRules()

    proxy.addRule({ probability: 0, action: { type: 'rpc-error' } })
    const many = await json(proxy.url, `[${Array.from({ length: 200 }, (_, i) => call('eth_chainId', [], i)).join(',')}]`)
    expect(many.every((r: { result?: string }) => r.result === '0x7a69')).toBe(true)
  })

  it('validates rules with errors that name the field and the value', async () => {
    const proxy = await start()
    expect(() => proxy.addRule({ action: { type: 'latency', latencyMs: 'x' } } as unknown as RuleSpec)).toThrowErrorMatchingInlineSnapshot(`
      [InputError: \`latencyMs\` must be a number ≥ 0. Got \`"x"\`.

      Action: latency]
    `)
    expect(() => proxy.addRule({ action: { type: 'partial', failProbability: 1.5 } })).toThrow('`failProbability` must be between 0 and 1. Got `1.5`.')
    expect(() => proxy.addRule({ action: { type: 'http-error', status: 418 } } as unknown as RuleSpec)).toThrow(
      '`status` must be one of 429, 500, 502, 503, 504. Got `418`.',
    )
    expect(() => proxy.addRule({ action: { type: 'nope' } } as unknown as RuleSpec)).toThrow(/`action.type` must be one of `latency`, `hang`/)
    expect(() => proxy.addRule({ action: { type: 'rewrite', path: 'x', with: 'f' } } as unknown as RuleSpec)).toThrow(/`with` must be a function/)
    expect(() => proxy.addRule({ match: { methods: ['e*th'] }, action: { type: 'hang' } })).toThrow(/`methods` must be/)
    expect(() => proxy.addRule({ action: { type: 'latency', latencyMS: 5 } } as unknown as RuleSpec)).toThrow('Unknown field `latencyMS` in a `latency` action.')
    expect(proxy.rules()).toEqual([])
  })
})

describe('WebSocket', () => {
  type Message = { id?: unknown; result?: unknown; error?: { code: number; message: string }; method?: string; params?: { subscription: string; result: { number: string } } }
  const connect = async (url: string) => {
    const ws = new WebSocket(url)
    sockets.push(ws)
    const notifications: Message[] = []
    const waiting = new Map<unknown, (m: Message) => void>()
    ws.on('message', (data) => {
      const m = JSON.parse(String(data)) as Message
      if (m.method === 'eth_subscription') notifications.push(m)
      else waiting.get(m.id)?.(m)
    })
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject))
    let id = 0
    const request = (method: string, params: unknown[] = []) =>
      new Promise<Message>((resolve) => {
        const key = ++id
        waiting.set(key, resolve)
        ws.send(call(method, params, key))
      })
    return { ws, notifications, request }
  }

  it('answers calls over WebSocket through the rules', async () => {
    const proxy = await start()
    const { ws, request } = await connect(proxy.wsUrl)
    const head = await result(anvil.url, 'eth_blockNumber')
    expect((await request('eth_blockNumber')).result).toBe(head)
    const rule = proxy.addRule({ match: { methods: ['eth_chainId'] }, action: { type: 'rpc-error', code: -32603 } })
    expect((await request('eth_chainId')).error).toEqual({ code: -32603, message: 'Internal error' })
    proxy.removeRule(rule)
    proxy.addRule({ match: { methods: ['eth_blockNumber'] }, action: { type: 'stale', blocks: 5 } })
    expect(BigInt((await request('eth_blockNumber')).result as string)).toBe(BigInt(head) - 5n)
    expect((await request('eth_chainId')).result).toBe('0x7a69')
    // A batch whose answer is put together from local errors and upstream answers, ids restored.
    proxy.addRule({ match: { batchIndex: [2] }, action: { type: 'rpc-error' } })
    const answer = new Promise<Message[]>((resolve) => ws.once('message', (data) => resolve(JSON.parse(String(data)))))
    ws.send(`[${['a', 'b', 'c', 'd'].map((id) => call('eth_chainId', [], id)).join(',')}]`)
    expect((await answer).map((m) => [m.id, m.result ?? m.error?.code])).toEqual([
      ['a', '0x7a69'],
      ['b', '0x7a69'],
      ['c', -32005],
      ['d', '0x7a69'],
    ])
  })

  it('passes newHeads notifications through, and drop-subscription silences them with the socket open', async () => {
    const proxy = await start()
    const live = await connect(proxy.wsUrl)
    const sub = await live.request('eth_subscribe', ['newHeads'])
    expect(typeof sub.result).toBe('string')
    await anvil.rpc.request('anvil_mine', ['0x3'])
    await waitFor(() => live.notifications.length === 3)
    expect(live.notifications.every((n) => n.params?.subscription === sub.result)).toBe(true)

    proxy.addRule({ action: { type: 'drop-subscription', afterMessages: 2 } })
    const quiet = await connect(proxy.wsUrl)
    await quiet.request('eth_subscribe', ['newHeads'])
    for (let i = 0; i < 5; i++) await anvil.rpc.request('evm_mine')
    await waitFor(() => proxy.stats().notificationsDropped >= 3 + 3)
    await sleep(100)
    expect(quiet.notifications).toHaveLength(2)
    expect(quiet.ws.readyState).toBe(WebSocket.OPEN)
    expect((await quiet.request('eth_chainId')).result).toBe('0x7a69')
  })
})

describe('depth limit and ids (issue 7)', () => {
  const nest = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`
  const tooDeep = { code: -32600, message: `Invalid request: nested deeper than ${MAX_JSON_DEPTH} levels (forkchaos proxy limit)` }
  const raw = (id: string, params: string) => `{"jsonrpc":"2.0","id":${JSON.stringify(id)},"method":"eth_chainId","params":${params}}`

  it('params nested 10,000 deep with a rule installed get -32600 naming the limit, not a 502', async () => {
    const proxy = await start()
    proxy.addRule({ match: { methods: ['eth_chainId'] }, action: { type: 'stale', blocks: 1 } })
    const reply = await post(proxy.url, raw('x', nest(10_000)))
    expect(reply.status).toBe(200)
    expect(JSON.parse(reply.body.toString())).toEqual({ jsonrpc: '2.0', id: 'x', error: tooDeep })
    expect(await result(proxy.url, 'eth_chainId')).toBe('0x7a69')
  })

  it('refuses per element in a batch, with and without rules; one level less goes upstream', async () => {
    for (const withRule of [false, true]) {
      const proxy = await start()
      if (withRule) proxy.addRule({ action: { type: 'stale', blocks: 0 } })
      const body = `[${raw('a', '[]')},${raw('deep', nest(50_000))},${raw('limit', nest(MAX_JSON_DEPTH - 1))},${raw('over', nest(MAX_JSON_DEPTH))}]`
      const reply = await post(proxy.url, body)
      expect(reply.status, `rule: ${withRule}`).toBe(200)
      expect(JSON.parse(reply.body.toString()), `rule: ${withRule}`).toEqual([
        { jsonrpc: '2.0', id: 'a', result: '0x7a69' },
        { jsonrpc: '2.0', id: 'deep', error: tooDeep },
        { jsonrpc: '2.0', id: 'limit', error: { code: -32602, message: expect.any(String) } },
        { jsonrpc: '2.0', id: 'over', error: tooDeep },
      ])
    }
  })

  it('an id or a whole body nested 10,000 deep: -32600 with id null; unbalanced deep text goes upstream as text that is not JSON', async () => {
    const proxy = await start()
    proxy.addRule({ action: { type: 'latency', latencyMs: 1 } })
    expect(JSON.parse((await post(proxy.url, `{"jsonrpc":"2.0","id":${nest(10_000)},"method":"eth_chainId"}`)).body.toString())).toEqual({
      jsonrpc: '2.0',
      id: null,
      error: tooDeep,
    })
    expect(JSON.parse((await post(proxy.url, nest(10_000))).body.toString())).toEqual([{ jsonrpc: '2.0', id: null, error: tooDeep }])
    const broken = '['.repeat(10_000)
    const [direct, proxied] = await Promise.all([post(anvil.url, broken), post(proxy.url, broken)])
    expect([proxied.status, proxied.body.toString()]).toEqual([direct.status, direct.body.toString()])
  })

  it('on calls a rule changes, ids upstream would refuse are refused, not accepted under a proxy id', async () => {
    const proxy = await start()
    proxy.addRule({ action: { type: 'stale', blocks: 0 } })
    for (const id of ['{}', '[1]', 'true', '1.5', '1e400', '9007199254740993']) {
      const body = `{"jsonrpc":"2.0","id":${id},"method":"eth_chainId"}`
      const reply = JSON.parse((await post(proxy.url, body)).body.toString())
      expect(reply, body).toMatchObject({ id: null, error: { code: -32600 } })
    }
    // Ids it can give back exactly go through.
    for (const id of ['"s"', '-1', '0', 'null', String(2 ** 53 - 1)])
      expect(JSON.parse((await post(proxy.url, `{"jsonrpc":"2.0","id":${id},"method":"eth_chainId"}`)).body.toString())).toEqual({
        jsonrpc: '2.0',
        id: JSON.parse(id),
        result: '0x7a69',
      })
  })
})

describe('fuzz findings (fuzz/jsonrpc.ts), fixed', () => {
  const body = async (url: string, text: string) => JSON.parse((await post(url, text)).body.toString())
  const ruled = async () => {
    const proxy = await start()
    proxy.addRule({ match: { methods: ['eth_getBalance', 'eth_getBlockByNumber'] }, action: { type: 'stale', blocks: 0 } })
    return proxy
  }

  it('stale answers null only for a block number a node reads; an address as block tag is refused upstream, as directly', async () => {
    const proxy = await ruled()
    const text = '{"jsonrpc":"2.0","id":1,"method":"eth_getBlockByNumber","params":["0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266","latest"]}'
    const [direct, proxied] = await Promise.all([body(anvil.url, text), body(proxy.url, text)])
    expect(direct.error.code).toBe(-32602)
    expect(proxied).toEqual(direct)
    // A well-formed block number past the (stale) head is still null.
    expect(await body(proxy.url, '{"jsonrpc":"2.0","id":2,"method":"eth_getBlockByNumber","params":["0xffff",false]}')).toEqual({ jsonrpc: '2.0', id: 2, result: null })
  })

  it('on a rule path, elements that are not calls are answered here, per element, their ids untouched', async () => {
    const proxy = await ruled()
    const text = `[{"jsonrpc":"2.0","id":"a","method":"eth_getBalance","params":["0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266","latest"]},{"jsonrpc":2,"id":18446744073709551616,"method":null},{"jsonrpc":"2.0","id":7},5]`
    const answers = (await body(proxy.url, text)) as { id: unknown; result?: unknown; error?: { code: number } }[]
    expect(answers.map((a) => [a.id, a.result === undefined ? a.error?.code : 'ok'])).toEqual([
      ['a', 'ok'],
      [null, -32600],
      [7, -32600],
      [null, -32600],
    ])
  })

  it('ids written 1e3 or 1.0 are refused on a rule path, as Anvil refuses them (JSON.parse had made them integers)', async () => {
    const proxy = await ruled()
    const zero = '{"jsonrpc":"2.0","id":-0,"method":"eth_getBalance","params":["0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266","latest"]}'
    expect((await body(proxy.url, zero)).id).toBe((await body(anvil.url, zero)).id) // Anvil reads -0 as 0
    for (const id of ['1e3', '1.0']) {
      const text = `{"jsonrpc":"2.0","id":${id},"method":"eth_getBalance","params":["0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266","latest"]}`
      expect((await body(anvil.url, text)).id, id).toBe(null)
      expect(await body(proxy.url, text), id).toMatchObject({ id: null, error: { code: -32600 } })
    }
  })

  it('a call nested too deep gets id null when its id is a number it cannot give back exactly', async () => {
    const proxy = await start()
    const deep = `${'['.repeat(100)}${']'.repeat(100)}`
    for (const id of ['9007199254740993', '1e3']) expect((await body(proxy.url, `{"jsonrpc":"2.0","id":${id},"method":"eth_call","params":${deep}}`)).id, id).toBe(null)
    expect((await body(proxy.url, `{"jsonrpc":"2.0","id":12,"method":"eth_call","params":${deep}}`)).id).toBe(12)
  })

  it('deep text whose brackets do not balance is not JSON: it goes upstream, it is not refused as too deep', async () => {
    const proxy = await start()
    const text = `{"jsonrpc":"2.0","id":5,"method":"eth_call","params":${'['.repeat(5_000)}`
    const [direct, proxied] = await Promise.all([post(anvil.url, text), post(proxy.url, text)])
    expect(proxied.body.toString()).toBe(direct.body.toString())
    expect(JSON.parse(proxied.body.toString()).id).toBe(null)
  })
})

describe('fuzz', () => {
  const readOnly = [
    'eth_chainId',
    'eth_blockNumber',
    'eth_getBalance',
    'eth_call',
    'eth_getBlockByNumber',
    'eth_getCode',
    'eth_getTransactionCount',
    'eth_gasPrice',
    'net_version',
    'web3_clientVersion',
    'eth_getLogs',
  ]
  const pick = <T>(prng: Prng, xs: readonly T[]) => xs[prng.int(0, xs.length - 1)] as T
  const word = (prng: Prng, max = 12) => Array.from({ length: prng.int(0, max) }, () => pick(prng, [...'abcdefghijklmnopqrstuvwxyz_é€"\\'])).join('')
  const value = (prng: Prng, depth = 0): unknown => {
    const kind = prng.int(0, depth > 2 ? 4 : 6)
    if (kind === 0) return null
    if (kind === 1) return prng.next() < 0.5
    if (kind === 2) return pick(prng, [0, -1, 1.5, 2 ** 53, 1e308, prng.int(-1e6, 1e6)])
    if (kind === 3) return word(prng)
    if (kind === 4) return pick(prng, ['latest', 'earliest', '0x0', '0x', '0xzz', `0x${prng.int(0, 1e6).toString(16)}`, '0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266'])
    if (kind === 5) return Array.from({ length: prng.int(0, 4) }, () => value(prng, depth + 1))
    return Object.fromEntries(Array.from({ length: prng.int(0, 4) }, () => [word(prng, 6), value(prng, depth + 1)]))
  }
  const rpcShaped = (prng: Prng) => {
    const o: Record<string, unknown> = {}
    if (prng.next() < 0.9) o.jsonrpc = pick(prng, ['2.0', '2.0', '2.0', 2, null, '1.0'])
    if (prng.next() < 0.85) o.id = pick(prng, [1, 2, 'x', null, {}, [], 1.5, -1, prng.int(0, 1e9)])
    if (prng.next() < 0.95) o.method = prng.next() < 0.7 ? pick(prng, readOnly) : pick(prng, [5, null, word(prng), '', ['eth_chainId']])
    if (prng.next() < 0.8) o.params = prng.next() < 0.5 ? Array.from({ length: prng.int(0, 3) }, () => value(prng)) : value(prng)
    return o
  }
  const bodyFor = (prng: Prng): { body: Buffer; json: boolean } => {
    const kind = prng.int(0, 9)
    if (kind <= 1) return { body: Buffer.from(Array.from({ length: prng.int(0, 200) }, () => prng.int(0, 255))), json: false }
    if (kind <= 3) return { body: Buffer.from(JSON.stringify(value(prng))), json: true }
    if (kind <= 6) return { body: Buffer.from(JSON.stringify(rpcShaped(prng))), json: true }
    if (kind <= 7) return { body: Buffer.from(JSON.stringify(Array.from({ length: prng.int(1, 20) }, () => rpcShaped(prng)))), json: true }
    if (kind === 8 && prng.next() < 0.1)
      return { body: Buffer.from(JSON.stringify(Array.from({ length: prng.int(1_000, 20_000) }, () => (prng.next() < 0.5 ? prng.int(0, 9) : rpcShaped(prng))))), json: true }
    const text = JSON.stringify(rpcShaped(prng))
    return { body: Buffer.from(prng.next() < 0.5 ? text.slice(0, prng.int(0, text.length)) : `${text}${word(prng, 3)}`), json: false }
  }

  const run = async (proxy: RpcProxy, prng: Prng, count: number, compareEvery: number) => {
    let compared = 0
    const bodies = Array.from({ length: count }, () => bodyFor(prng))
    let next = 0
    const worker = async () => {
      while (next < bodies.length) {
        const index = next++
        const { body, json } = bodies[index] as { body: Buffer; json: boolean }
        const reply = await post(proxy.url, body)
        expect(reply.complete, `body #${index}`).toBe(true)
        expect(reply.status, `body #${index}`).toBeGreaterThanOrEqual(200)
        if (compareEvery > 0 && json && index % compareEvery === 0) {
          const direct = await post(anvil.url, body)
          expect([reply.status, reply.body.toString()], `body #${index}: ${body.toString().slice(0, 200)}`).toEqual([direct.status, direct.body.toString()])
          compared++
        }
      }
    }
    await Promise.all(Array.from({ length: 16 }, worker))
    return compared
  }

  it('3,000 seeded random bodies never crash the proxy, all get answers, JSON ones equal the upstream answer', async () => {
    const seed = 20_240_601
    const proxy = await start(seed)
    const compared = await run(proxy, createPrng(seed), 3_000, 10)
    expect(compared, `replay: seed ${seed}`).toBeGreaterThan(100)
    expect(proxy.stats().requests).toBeGreaterThanOrEqual(3_000)
    expect(await result(proxy.url, 'eth_chainId')).toBe('0x7a69')
  })

  it('random bodies through rules that rewrite answers still always get answers', async () => {
    const seed = 99
    const proxy = await start(seed)
    proxy.addRule({ probability: 0.3, action: { type: 'stale', blocks: 2 } })
    proxy.addRule({ action: { type: 'partial', failProbability: 0.2 } })
    proxy.addRule({ match: { methods: ['eth_getBlockByNumber'] }, action: { type: 'rewrite', path: 'stateRoot', with: () => '0x00' } })
    proxy.addRule({ match: { batchIndex: [0] }, probability: 0.1, action: { type: 'rpc-error' } })
    await run(proxy, createPrng(seed), 1_000, 0)
    proxy.clearRules()
    expect(await result(proxy.url, 'net_version')).toBe('31337')
  })
})
