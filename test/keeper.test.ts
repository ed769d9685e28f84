import * as http from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { keeperDefaults, runKeeper } from '../src/keeper/keeper.js'

/**
 * The keeper's load figures against a real HTTP server on 127.0.0.1 that answers every send with
 * 503 after `delayMs`: a slow endpoint starves the keeper, which reaches only a few of its
 * scheduled cycles. Its amplification is a rate (requests per scheduled cycle), so a retry
 * budget's bound holds however few cycles the keeper reached; a naive keeper's storm shows as
 * requests per reached cycle.
 */
let server: http.Server
let url = ''
let delayMs = 0
beforeAll(async () => {
  server = http.createServer((req, res) => {
    let body = ''
    req.on('data', (c) => (body += c))
    req.on('end', () => {
      const { id, method } = JSON.parse(body) as { id: number; method: string }
      const answer = () => {
        if (method === 'eth_blockNumber') return res.end(JSON.stringify({ jsonrpc: '2.0', id, result: '0x1' }))
        res.statusCode = 503
        res.end(JSON.stringify({ jsonrpc: '2.0', id, error: { code: -32000, message: 'unavailable' } }))
      }
      if (method === 'eth_blockNumber' || delayMs === 0) answer()
      else setTimeout(answer, delayMs)
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(() => new Promise<void>((r) => server.close(() => r())))

const keeper = (mode: 'naive' | 'budgeted') =>
  runKeeper({ ...keeperDefaults, rpcUrl: url, to: `0x${'11'.repeat(20)}`, from: `0x${'22'.repeat(20)}`, data: '0xc4d66de8', mode, intervalMs: 100, durationMs: 1_500, seed: 3 })

describe('keeper load', () => {
  it('a starved budgeted keeper stays within ×2 of its schedule, though each cycle it reached was retried', async () => {
    delayMs = 150
    const s = await keeper('budgeted')
    expect(s.scheduled).toBe(15)
    // 150 ms per send: a cycle retried to its budget takes ~0.75 s, so only a few are reached.
    expect(s.offered).toBeLessThan(8)
    // Per reached cycle it is over ×2 (8 requests for 2 cycles here idle): the bound a budget
    // cannot promise over two cycles, which a check on this figure failed on a busy machine.
    expect(s.requestsPerCycle).toBeGreaterThan(2)
    expect(s.amplification).toBe(Math.round((s.requests / 15) * 100) / 100)
    expect(s.amplification).toBeLessThanOrEqual(2)
  })

  it('a naive keeper against a fast 503 storms: many requests per cycle, many times the offered rate', async () => {
    delayMs = 0
    const s = await keeper('naive')
    expect(s.offered).toBe(1)
    expect(s.requestsPerCycle).toBe(s.requests)
    expect(s.requestsPerCycle).toBeGreaterThan(30)
    expect(s.amplification).toBeGreaterThan(2)
  })
})
