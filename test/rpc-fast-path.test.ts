import * as net from 'node:net'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { type RpcEvent, type RpcProxy, startRpcProxy } from '../src/proxy/jsonrpc/proxy.js'
import { type AnvilInstance, startAnvil } from '../src/targets/anvil.js'
import { createPrng } from '../src/util/prng.js'

// The HTTP/1.1 fast path (src/proxy/jsonrpc/fast-path.ts) against real Anvil over raw sockets:
// many connections, pipelining, chunked bodies, one byte at a time, keep-alive and close. Its
// answers are Anvil's bytes (head and body) with only Connection / Keep-Alive dropped, so these
// tests also tell it from Node's server (which adds `keep-alive: timeout=65`).

let anvil: AnvilInstance
const proxies: RpcProxy[] = []
const open: net.Socket[] = []

beforeAll(async () => {
  anvil = await startAnvil({ label: 'rpc-fast-path-test' })
})
afterAll(() => anvil?.stop())
afterEach(async () => {
  for (const s of open.splice(0)) s.destroy()
  await Promise.all(proxies.splice(0).map((p) => p.close()))
})

const start = async (onRequest?: (e: RpcEvent) => void) => {
  const proxy = await startRpcProxy({ upstream: anvil.url, prng: createPrng(1), ...(onRequest ? { onRequest } : {}) })
  proxies.push(proxy)
  return proxy
}

const portOf = (url: string) => Number(new URL(url).port)

type Answer = { head: string; status: number; body: string }

/** Reads HTTP/1.1 answers (Content-Length or chunked) off a socket in order. */
function reader(socket: net.Socket) {
  let buf = Buffer.alloc(0)
  const answers: Answer[] = []
  let ended = false
  const waiters: (() => void)[] = []
  const wake = () => {
    for (const w of waiters.splice(0)) w()
  }
  socket.on('data', (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk])
    for (;;) {
      const headEnd = buf.indexOf('\r\n\r\n')
      if (headEnd < 0) break
      const head = buf.toString('latin1', 0, headEnd)
      if (head[9] === '1') {
        // An interim answer (100 Continue): not one of the answers counted.
        buf = buf.subarray(headEnd + 4)
        continue
      }
      const length = /\r\ncontent-length: *(\d+)/i.exec(head)
      let body: Buffer
      let end: number
      if (length) {
        end = headEnd + 4 + Number(length[1])
        if (buf.length < end) break
        body = buf.subarray(headEnd + 4, end)
      } else if (/\r\ntransfer-encoding: *chunked/i.test(head)) {
        const parts: Buffer[] = []
        let i = headEnd + 4
        let done = false
        for (;;) {
          const eol = buf.indexOf('\r\n', i)
          if (eol < 0) break
          const n = Number.parseInt(buf.toString('latin1', i, eol), 16)
          if (n === 0) {
            if (buf.length < eol + 4) break
            i = eol + 4
            done = true
            break
          }
          if (buf.length < eol + 2 + n + 2) break
          parts.push(buf.subarray(eol + 2, eol + 2 + n))
          i = eol + 2 + n + 2
        }
        if (!done) break
        body = Buffer.concat(parts)
        end = i
      } else throw new Error(`answer without length: ${head}`)
      answers.push({ head, status: Number(head.slice(9, 12)), body: body.toString('utf8') })
      buf = buf.subarray(end)
    }
    wake()
  })
  socket.on('end', () => {
    ended = true
    wake()
  })
  socket.on('close', () => {
    ended = true
    wake()
  })
  return {
    answers,
    ended: () => ended,
    async until(n: number, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs
      while (answers.length < n) {
        if (ended || Date.now() > deadline) throw new Error(`got ${answers.length} of ${n} answers (ended: ${ended})`)
        await new Promise<void>((r) => {
          waiters.push(r)
          setTimeout(r, 200)
        })
      }
      return answers
    },
  }
}

const connect = (port: number) =>
  new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, noDelay: true }, () => resolve(s))
    s.on('error', reject)
    open.push(s)
  })

/** A request's bytes: Content-Length or chunked (in pieces of `piece` bytes). */
function request(body: string, options: { chunked?: number; close?: boolean; client?: string } = {}): Buffer {
  const data = Buffer.from(body)
  const lines = ['POST / HTTP/1.1', 'Host: 127.0.0.1', 'Content-Type: application/json']
  if (options.client) lines.push(`X-Forkchaos-Client: ${options.client}`)
  if (options.close) lines.push('Connection: close')
  if (!options.chunked) return Buffer.concat([Buffer.from(`${[...lines, `Content-Length: ${data.length}`].join('\r\n')}\r\n\r\n`), data])
  const parts = [Buffer.from(`${[...lines, 'Transfer-Encoding: chunked'].join('\r\n')}\r\n\r\n`)]
  for (let i = 0; i < data.length; i += options.chunked) {
    const piece = data.subarray(i, i + options.chunked)
    parts.push(Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n'))
  }
  parts.push(Buffer.from('0\r\n\r\n'))
  return Buffer.concat(parts)
}

const ADDRESSES = ['0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266', '0x70997970c51812dc3a010c7d01b50e0d17dc79c8', '0x0000000000000000000000000000000000000001']
/** A call per index: different methods and ids, so every answer is told apart. */
function callFor(i: number): string {
  const id = i % 3 === 0 ? `"c-${i}"` : String(i)
  switch (i % 4) {
    case 0:
      return `{"jsonrpc":"2.0","id":${id},"method":"eth_chainId","params":[]}`
    case 1:
      return `{"jsonrpc":"2.0","id":${id},"method":"eth_getBalance","params":["${ADDRESSES[i % 3]}","latest"]}`
    case 2:
      return `[{"jsonrpc":"2.0","id":${id},"method":"eth_blockNumber","params":[]},{"jsonrpc":"2.0","id":"b-${i}","method":"net_version","params":[]}]`
    default:
      return `{"jsonrpc":"2.0","id":${id},"method":"eth_getTransactionCount","params":["${ADDRESSES[0]}","latest"]}`
  }
}

/** The head without the lines that may differ: Date (the clock), Connection / Keep-Alive (hop by hop). */
const stable = (head: string) =>
  head
    .split('\r\n')
    .filter((l) => !/^(date|connection|keep-alive):/i.test(l))
    .join('\r\n')

async function direct(body: string): Promise<Answer> {
  const s = await connect(portOf(anvil.url))
  const r = reader(s)
  s.write(request(body))
  const [answer] = await r.until(1)
  s.destroy()
  return answer as Answer
}

describe('HTTP fast path', () => {
  it('16 connections × 24 pipelined calls (Content-Length, chunked, one byte at a time, close last): each answered once, in order, as Anvil answers it', async () => {
    const proxy = await start()
    const port = portOf(proxy.url)
    const CONNECTIONS = 16
    const PER = 24
    const expected = new Map<number, Answer>()
    for (let i = 0; i < PER * 4; i++) expected.set(i, await direct(callFor(i)))
    const prng = createPrng(13)
    const runs = Array.from({ length: CONNECTIONS }, async (_, c) => {
      const s = await connect(port)
      const r = reader(s)
      const indexes = Array.from({ length: PER }, (_, k) => (c * 7 + k) % (PER * 4))
      const bytes = Buffer.concat(
        indexes.map((i, k) => request(callFor(i), { ...(k % 3 === 1 ? { chunked: 1 + (k % 7) } : {}), ...(k === PER - 1 ? { close: true } : {}) })),
      )
      if (c % 4 === 0) {
        // One byte per write, with pauses so they leave as separate packets.
        for (let b = 0; b < bytes.length; b++) {
          s.write(bytes.subarray(b, b + 1))
          if (b % 64 === 0) await new Promise((res) => setImmediate(res))
        }
      } else if (c % 4 === 1) {
        // Random splits.
        let at = 0
        while (at < bytes.length) {
          const n = 1 + Math.floor(prng.next() * 200)
          s.write(bytes.subarray(at, at + n))
          at += n
          await new Promise((res) => setImmediate(res))
        }
      } else if (c % 4 === 2) s.write(bytes) // all pipelined in one write
      else {
        // One request at a time (keep-alive, no pipelining).
        let at = 0
        for (let k = 0; k < PER; k++) {
          const one = request(callFor(indexes[k] as number), { ...(k % 3 === 1 ? { chunked: 5 } : {}), ...(k === PER - 1 ? { close: true } : {}) })
          s.write(one)
          at += one.length
          await r.until(k + 1)
        }
      }
      const answers = await r.until(PER)
      // Connection: close on the last call: the proxy closes after its answer, and sent nothing more.
      await new Promise<void>((res) => (r.ended() ? res() : s.once('close', () => res())))
      expect(r.answers.length).toBe(PER)
      answers.forEach((a, k) => {
        const want = expected.get(indexes[k] as number) as Answer
        expect({ status: a.status, body: a.body, head: stable(a.head) }).toEqual({ status: want.status, body: want.body, head: stable(want.head) })
        expect(a.head).not.toMatch(/keep-alive/i) // Node's server would have added `keep-alive: timeout=65`
        if (k === PER - 1) expect(a.head).toMatch(/\r\nconnection: close$/)
      })
    })
    await Promise.all(runs)
    const stats = proxy.stats()
    // A batch of two counts two calls: indexes ≡ 2 (mod 4) are batches.
    const calls = Array.from({ length: CONNECTIONS }, (_, c) => Array.from({ length: PER }, (_, k) => ((c * 7 + k) % (PER * 4)) % 4 === 2 ? 2 : 1)).flat()
    const total = calls.reduce((a, b) => a + b, 0)
    expect({ requests: stats.requests, forwarded: stats.forwarded }).toEqual({ requests: total, forwarded: total })
    expect(Object.values(stats.byMethod).reduce((n, m) => n + m.errors, 0)).toBe(0)
  }, 60_000)

  it('a rule installed mid-stream takes effect on the next request of an open connection, and its removal too', async () => {
    const events: RpcEvent[] = []
    const proxy = await start((e) => events.push(e))
    const s = await connect(portOf(proxy.url))
    const r = reader(s)
    const chainId = '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}'
    const want = await direct(chainId)
    s.write(request(chainId, { client: 'alice' }))
    await r.until(1)
    const id = proxy.addRule({ match: { methods: ['eth_chainId'] }, action: { type: 'rpc-error', code: -32042, message: 'injected' } })
    s.write(request(chainId, { client: 'alice' }))
    await r.until(2)
    proxy.removeRule(id)
    s.write(request(chainId, { client: 'alice' }))
    await r.until(3)
    expect(r.answers.map((a) => a.body)).toEqual([want.body, '{"jsonrpc":"2.0","id":1,"error":{"code":-32042,"message":"injected"}}', want.body])
    expect(r.answers[0]?.head).not.toMatch(/keep-alive/i)
    expect(events.map((e) => [e.method, e.client, e.outcome, e.ruleIds])).toEqual([
      ['eth_chainId', 'alice', 'ok', []],
      ['eth_chainId', 'alice', 'error', [id]],
      ['eth_chainId', 'alice', 'ok', []],
    ])
    expect(events[0]?.bytesIn).toBe(Buffer.byteLength(chainId))
    expect(events[0]?.bytesOut).toBeGreaterThan(want.body.length)
  })

  it('a rule for another method leaves calls on the fast path; Expect: 100-continue goes to the full path and is answered', async () => {
    const proxy = await start()
    proxy.addRule({ match: { methods: ['eth_sendRawTransaction'] }, action: { type: 'http-error', status: 503 } })
    const s = await connect(portOf(proxy.url))
    const r = reader(s)
    const chainId = '{"jsonrpc":"2.0","id":7,"method":"eth_chainId","params":[]}'
    const want = await direct(chainId)
    s.write(request(chainId))
    await r.until(1)
    expect(r.answers[0]?.body).toBe(want.body)
    expect(r.answers[0]?.head).not.toMatch(/keep-alive/i)
    const data = Buffer.from(chainId)
    s.write(`POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: ${data.length}\r\n\r\n`)
    await new Promise((res) => setTimeout(res, 50))
    s.write(data)
    const answers = await r.until(2)
    const last = answers[1] as Answer
    expect({ status: last.status, body: last.body }).toEqual({ status: 200, body: want.body })
    expect(last.head).toMatch(/keep-alive: timeout=65/i) // the full path answered it
  })
})

// ─── Pipelined upstream connections ─────────────────────────────────────────────────────────
// A real HTTP/1.1 server on a raw socket, so what it does to a connection is exact: it answers
// pipelined requests in order (as Anvil's server does, so a slow one holds those behind it), and
// can close or reset a connection after some answers or in the middle of one.

type UpstreamOptions = {
  /** How long to wait before answering this request body. */
  delayMs?: (body: string) => number
  /** After this many answers on a connection: `close` answers with `Connection: close` and ends it; `destroy` drops it without a word (once per server). */
  after?: { answers: number; then: 'close' | 'destroy' }
  /** A body containing this is answered with half an answer, then the connection is reset. */
  cutOn?: string
}

async function pipelinedUpstream(options: UpstreamOptions) {
  const seen = { requests: 0, unanswered: 0, mostInFlight: 0, destroyed: 0, bodies: [] as string[] }
  const server = net.createServer((socket) => {
    let buf = Buffer.alloc(0)
    let answered = 0
    let inFlight = 0
    let chain = Promise.resolve()
    let done = false
    socket.on('error', () => {})
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk])
      for (;;) {
        const headEnd = buf.indexOf('\r\n\r\n')
        if (headEnd < 0) return
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(buf.toString('latin1', 0, headEnd))?.[1] ?? 0)
        if (buf.length < headEnd + 4 + length) return
        const body = buf.toString('utf8', headEnd + 4, headEnd + 4 + length)
        buf = buf.subarray(headEnd + 4 + length)
        seen.requests++
        seen.bodies.push(body)
        inFlight++
        seen.mostInFlight = Math.max(seen.mostInFlight, inFlight)
        chain = chain.then(async () => {
          if (done) {
            seen.unanswered++
            return
          }
          const ms = options.delayMs?.(body) ?? 0
          if (ms > 0) await new Promise((r) => setTimeout(r, ms))
          inFlight--
          const id = /"id":("[^"]*"|-?\d+)/.exec(body)?.[1] ?? 'null'
          const json = body.startsWith('[') ? `[{"jsonrpc":"2.0","id":${id},"result":"0xba7c4"}]` : `{"jsonrpc":"2.0","id":${id},"result":"0x1"}`
          const closing = options.after?.then === 'close' && answered + 1 === options.after.answers
          const answer = `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${json.length}\r\n${closing ? 'connection: close\r\n' : 'connection: keep-alive\r\n'}\r\n${json}`
          if (options.cutOn && body.includes(options.cutOn)) {
            done = true
            socket.write(answer.slice(0, answer.length - 5), () => socket.resetAndDestroy())
            return
          }
          socket.write(answer)
          answered++
          if (closing) {
            done = true
            socket.end()
          } else if (options.after?.then === 'destroy' && answered === options.after.answers && seen.destroyed === 0) {
            done = true
            seen.destroyed++
            socket.destroy()
          }
        })
      }
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  return { url, seen, close: () => new Promise<void>((r) => server.close(() => r())) }
}

/** Each body from its own client connection, all written in one tick (so the proxy reads them in one turn): the answers, and the order they came in. */
async function burst(proxy: RpcProxy, bodies: string[]) {
  const sockets = await Promise.all(bodies.map(() => connect(portOf(proxy.url))))
  await new Promise((r) => setTimeout(r, 100)) // the proxy has accepted them all and reads them
  const order: number[] = []
  const readers = sockets.map((s, i) => {
    const r = reader(s)
    return r.until(1).then((answers) => {
      order.push(i)
      return answers[0] as Answer
    })
  })
  sockets.forEach((s, i) => s.write(request(bodies[i] as string)))
  const answers = await Promise.all(readers)
  for (const s of sockets) s.destroy()
  return { answers, order }
}

const small = (id: number) => `{"jsonrpc":"2.0","id":${id},"method":"eth_chainId","params":[]}`

describe('HTTP fast path, pipelined upstream connections', () => {
  const upstreams: { close(): Promise<void> }[] = []
  afterEach(async () => {
    await Promise.all(proxies.splice(0).map((p) => p.close()))
    await Promise.all(upstreams.splice(0).map((u) => u.close()))
  })
  const startOn = async (options: UpstreamOptions) => {
    const up = await pipelinedUpstream(options)
    upstreams.push(up)
    const proxy = await startRpcProxy({ upstream: up.url, prng: createPrng(1) })
    proxies.push(proxy)
    return { proxy, seen: up.seen }
  }

  it('a batch, and a large call, read in the same turn as 24 small calls are sent alone: the small calls are pipelined, and answered before them', async () => {
    // The upstream takes 2 s over a batch or a large body; a small call sent behind one on its connection would wait for it.
    const { proxy, seen } = await startOn({ delayMs: (body) => (body.startsWith('[') || body.length > 4_096 ? 2_000 : 0) })
    const batch = `[${Array.from({ length: 10 }, (_, i) => small(i)).join(',')}]` // under 1 KiB: a batch is solo whatever its size
    const large = `{"jsonrpc":"2.0","id":99,"method":"eth_call","params":[{"data":"0x${'ab'.repeat(4_000)}"},"latest"]}`
    for (const first of [batch, large]) {
      const { answers, order } = await burst(proxy, [first, ...Array.from({ length: 24 }, (_, i) => small(100 + i))])
      expect(answers.map((a) => a.status)).toEqual(answers.map(() => 200))
      expect(answers.slice(1).map((a) => JSON.parse(a.body).id)).toEqual(Array.from({ length: 24 }, (_, i) => 100 + i))
      expect(order.indexOf(0)).toBe(24) // its answer came last
    }
    expect(seen.mostInFlight).toBeGreaterThan(1) // and the small calls did share connections
  })

  it('nothing is pipelined behind a call that has waited 20 ms: with 8 connections each holding a slow call, 24 small calls are answered before any of them', async () => {
    const { proxy } = await startOn({ delayMs: (body) => (body.includes('"slow_call"') ? 2_500 : 0) })
    const sockets = await Promise.all(Array.from({ length: 8 }, () => connect(portOf(proxy.url))))
    const order: string[] = []
    const slow = sockets.map((s) =>
      reader(s)
        .until(1)
        .then((answers) => {
          order.push('slow')
          return answers[0] as Answer
        }),
    )
    // 40 ms apart: each lands on a connection of its own (the one before has waited too long to share).
    for (const [i, s] of sockets.entries()) {
      s.write(request(`{"jsonrpc":"2.0","id":${i},"method":"slow_call","params":[]}`))
      await new Promise((r) => setTimeout(r, 40))
    }
    const { answers } = await burst(proxy, Array.from({ length: 24 }, (_, i) => small(100 + i)))
    order.push('small')
    expect(answers.map((a) => [a.status, JSON.parse(a.body).id])).toEqual(Array.from({ length: 24 }, (_, i) => [200, 100 + i]))
    expect((await Promise.all(slow)).map((a) => a.status)).toEqual(Array(8).fill(200))
    expect(order.indexOf('small')).toBe(0) // the small calls all came back before the first slow one
  })

  it('an upstream that answers `Connection: close` mid-pipeline: the calls it did not read are sent again, every call answered once', async () => {
    const { proxy, seen } = await startOn({ after: { answers: 3, then: 'close' } })
    for (let round = 0; round < 3; round++) {
      const ids = Array.from({ length: 32 }, (_, i) => round * 100 + i)
      const { answers } = await burst(proxy, ids.map(small))
      expect(answers.map((a) => [a.status, JSON.parse(a.body).id])).toEqual(ids.map((id) => [200, id]))
      expect(answers[0]?.head).not.toMatch(/connection/i)
    }
    expect(seen.unanswered).toBeGreaterThan(0) // calls were pipelined past the closing answer
  })

  it('an upstream connection dropped mid-pipeline without a word: the calls behind the last answer are sent again and answered', async () => {
    const { proxy, seen } = await startOn({ after: { answers: 2, then: 'destroy' } })
    const ids = Array.from({ length: 32 }, (_, i) => i)
    const { answers } = await burst(proxy, ids.map(small))
    expect(answers.map((a) => [a.status, JSON.parse(a.body).id])).toEqual(ids.map((id) => [200, id]))
    expect(seen.destroyed).toBe(1)
    expect(seen.unanswered).toBeGreaterThan(0)
  })

  it('an upstream connection dropped mid-pipeline: calls that may write are never sent twice, they get a 502 saying so', async () => {
    const { proxy, seen } = await startOn({ after: { answers: 2, then: 'destroy' } })
    const ids = Array.from({ length: 32 }, (_, i) => i)
    const send = (id: number) => `{"jsonrpc":"2.0","id":${id},"method":"eth_sendTransaction","params":[{"nonce":"0x${id.toString(16)}"}]}`
    const { answers } = await burst(proxy, ids.map(send))
    expect(seen.destroyed).toBe(1)
    // Each transaction reached the upstream at most once.
    for (const id of ids) expect(seen.bodies.filter((b) => b === send(id)).length).toBeLessThanOrEqual(1)
    const failed = answers.filter((a) => a.status === 502)
    expect(failed.length).toBeGreaterThan(0)
    for (const a of failed) expect(JSON.parse(a.body).error.message).toMatch(/not sent again: the upstream may have run it/)
    // The rest were answered by the upstream, each once.
    expect(answers.filter((a) => a.status === 200).length + failed.length).toBe(32)
  })

  it('an upstream that resets in the middle of an answer: that call gets a 502 naming the reset, the calls pipelined behind it are answered', async () => {
    const { proxy, seen } = await startOn({ cutOn: '"id":5,' })
    const ids = Array.from({ length: 24 }, (_, i) => i)
    const { answers } = await burst(proxy, ids.map(small))
    const cut = answers[5] as Answer
    expect(cut.status).toBe(502)
    expect(JSON.parse(cut.body).error.message).toMatch(/^forkchaos proxy: upstream request failed \(ECONNRESET/)
    expect(answers.filter((_, i) => i !== 5).map((a) => [a.status, JSON.parse(a.body).id])).toEqual(ids.filter((i) => i !== 5).map((id) => [200, id]))
    expect(seen.unanswered).toBeGreaterThan(0)
  })
})
