import * as http from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { InfraError } from '../src/errors.js'
import { writeAll } from '../src/targets/chain.js'
import { coalescingCalls, createRpc, RPC_MAX_SOCKETS, RpcError, rpcRoundTrips } from '../src/targets/rpc.js'

// A real HTTP server on 127.0.0.1 that answers JSON-RPC the way each test needs.
let server: http.Server
let url = ''
const sockets = new Set<unknown>()
const bodies: string[] = []
let mode: 'echo' | 'hang' | 'text' | 'close-idle' | 'chunked' | 'http10' = 'echo'
const auths: (string | undefined)[] = []
const paths: (string | undefined)[] = []

beforeAll(async () => {
  server = http.createServer((req, res) => {
    sockets.add(req.socket)
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      bodies.push(Buffer.concat(chunks).toString('utf8'))
      auths.push(req.headers.authorization)
      paths.push(req.url)
      if (mode === 'hang') return
      if (mode === 'text') return void res.end('<html>bad gateway</html>')
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8'))
      const answer = (c: { id: number; method: string }) => (c.method === 'fail' ? { jsonrpc: '2.0', id: c.id, error: { code: -32000, message: 'no' } } : { jsonrpc: '2.0', id: c.id, result: c.method })
      res.setHeader('content-type', 'application/json')
      const text = JSON.stringify(Array.isArray(body) ? [...body].reverse().map(answer) : answer(body))
      // Written in pieces without a length: node:http sends it chunked.
      if (mode === 'chunked') {
        for (let i = 0; i < text.length; i += 7) res.write(text.slice(i, i + 7))
        return void res.end()
      }
      // An HTTP/1.0-style answer: no length, the end of the body is the connection's close.
      if (mode === 'http10') {
        req.socket.end(`HTTP/1.0 200 OK\r\ncontent-type: application/json\r\n\r\n${text}`)
        return
      }
      res.end(text)
      // The server drops the kept-alive connection right after answering: the next call finds it reset.
      if (mode === 'close-idle') res.on('finish', () => setTimeout(() => req.socket.destroy(), 20))
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(async () => {
  server.closeAllConnections()
  await new Promise((r) => server.close(r))
})

describe('createRpc over HTTP', () => {
  it('answers, batches in order (the server answers reversed), errors as RpcError, over one kept-alive connection', async () => {
    mode = 'echo'
    sockets.clear()
    const rpc = createRpc(url, { owned: false })
    for (let i = 0; i < 20; i++) expect(await rpc.request('eth_chainId')).toBe('eth_chainId')
    const out = await rpc.batch([{ method: 'a' }, { method: 'fail' }, { method: 'c' }])
    expect(out[0]).toBe('a')
    expect(out[1]).toBeInstanceOf(RpcError)
    expect((out[1] as RpcError).message).toBe('fail: no (code -32000)')
    expect(out[2]).toBe('c')
    await expect(rpc.request('fail')).rejects.toThrow('fail: no (code -32000)')
    expect(sockets.size).toBe(1)
  })

  it('a call with no answer fails at its timeout, naming it', async () => {
    mode = 'hang'
    const rpc = createRpc(url, { owned: false, timeoutMs: 300 })
    const error = await rpc.request('eth_chainId').catch((e: unknown) => e)
    expect(error).toBeInstanceOf(InfraError)
    expect((error as Error).message).toMatch(/^The JSON-RPC endpoint did not answer\./)
    expect((error as Error).message).toMatch(/no answer within 300 ms \(the client's timeout\)/)
  })

  it('an answer that is not JSON, and nobody listening: InfraError with status, body and reason', async () => {
    mode = 'text'
    await expect(createRpc(url, { owned: false }).request('x')).rejects.toThrow(/not JSON[\s\S]*<html>bad gateway/)
    const error = await createRpc('http://user:secret@127.0.0.1:1/key', { owned: false }).request('x').catch((e: unknown) => e)
    expect((error as Error).message).toMatch(/did not answer[\s\S]*ECONNREFUSED/)
    expect((error as Error).message).not.toContain('secret')
  })

  it('a kept-alive connection the server closed while idle is not reused: the next call opens a new one', async () => {
    mode = 'close-idle'
    sockets.clear()
    // More rounds than RPC_MAX_SOCKETS: a connection the server closed no longer counts against the limit.
    const rpc = createRpc(url, { owned: false, timeoutMs: 2_000 })
    for (let i = 0; i < RPC_MAX_SOCKETS + 8; i++) {
      expect(await rpc.request('eth_blockNumber')).toBe('eth_blockNumber')
      await new Promise((r) => setTimeout(r, 40))
    }
    expect(sockets.size).toBe(RPC_MAX_SOCKETS + 8)
  })

  it('reads chunked answers and answers ended by the close; sends the URL\'s path and credentials (basic auth)', async () => {
    mode = 'chunked'
    sockets.clear()
    const rpc = createRpc(url, { owned: false })
    for (let i = 0; i < 5; i++) expect(await rpc.request(`method_${'x'.repeat(i * 50)}`)).toBe(`method_${'x'.repeat(i * 50)}`)
    expect(await rpc.batch([{ method: 'a' }, { method: 'b' }])).toEqual(['a', 'b'])
    expect(sockets.size).toBe(1)
    mode = 'http10'
    sockets.clear()
    for (let i = 0; i < 3; i++) expect(await rpc.request('eth_chainId')).toBe('eth_chainId')
    expect(sockets.size).toBe(3)
    mode = 'echo'
    auths.length = 0
    paths.length = 0
    const u = new URL(url)
    expect(await createRpc(`http://us%40r:p%3Ass@${u.host}/key?x=1`, { owned: false }).request('eth_chainId')).toBe('eth_chainId')
    expect(paths).toEqual(['/key?x=1'])
    expect(auths).toEqual([`Basic ${Buffer.from('us@r:p:ss').toString('base64')}`])
  })

  it("coalescingCalls: the reads of one tick (eth_call, debug_traceTransaction) go in one batch, answered in order; a write goes alone, never in the reads' batch", async () => {
    mode = 'echo'
    const rpc = coalescingCalls(createRpc(url, { owned: true }))
    bodies.length = 0
    const trips = rpcRoundTrips.count
    const answers = await Promise.all([rpc.request('eth_call', [{}]), rpc.request('debug_traceTransaction', ['0x1']), rpc.request('anvil_setStorageAt', ['0x1', '0x0', '0x0']), rpc.request('eth_call', [{}])])
    expect(answers).toEqual(['eth_call', 'debug_traceTransaction', 'anvil_setStorageAt', 'eth_call'])
    expect(rpcRoundTrips.count - trips).toBe(2)
    expect(bodies.map((b) => [JSON.parse(b)].flat().map((c: { method: string }) => c.method))).toEqual([['anvil_setStorageAt'], ['eth_call', 'debug_traceTransaction', 'eth_call']])
  })

  it('writeAll: commuting writes in one batch, the first refusal thrown; two writes to one slot or one code refused before anything is sent', async () => {
    mode = 'echo'
    const rpc = createRpc(url, { owned: true })
    bodies.length = 0
    await writeAll(rpc, [
      { method: 'anvil_setStorageAt', params: ['0xAa', '0x1', '0x5'] },
      { method: 'anvil_setStorageAt', params: ['0xaa', '0x2', '0x5'] },
      { method: 'anvil_setCode', params: ['0xaa', '0x00'] },
    ])
    expect(bodies).toHaveLength(1)
    await expect(writeAll(rpc, [{ method: 'anvil_setCode', params: ['0x1', '0x'] }, { method: 'fail', params: [] }])).rejects.toThrow('fail: no (code -32000)')
    bodies.length = 0
    await expect(writeAll(rpc, [{ method: 'anvil_setStorageAt', params: ['0xAa', '0x1', '0x5'] }, { method: 'anvil_setStorageAt', params: ['0xaa', '0x1', '0x6'] }])).rejects.toThrow('do not commute')
    await expect(writeAll(rpc, [{ method: 'anvil_setCode', params: ['0xaa', '0x'] }, { method: 'anvil_setCode', params: ['0xAA', '0x00'] }])).rejects.toThrow('do not commute')
    expect(bodies).toHaveLength(0)
  })
})
