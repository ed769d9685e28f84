import * as http from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { startProbe } from '../src/scenario/devnet-probe.js'
import type { Devnet } from '../src/targets/devnet.js'
import { createRpc } from '../src/targets/rpc.js'

/**
 * The devnet probe samples every validator each tick. A validator that answers its status and
 * then stops answering (SIGSTOPped between two reads: a wedge landing mid-tick) must not stall the
 * sampling of the others: on a busy machine that race once cost a wedge drill 6 s of samples, and
 * its progress check read 0 commits while the chain committed 7 (issue 7, topology-byo).
 *
 * Each "validator" here is a real HTTP server on 127.0.0.1 speaking the node's fc_* methods; the
 * second one answers `fc_status` and the first `fc_block`, and never answers anything else.
 */
type Node = { server: http.Server; url: string; height: number; hung: http.ServerResponse[] }

const nodes: Node[] = []
afterEach(async () => {
  for (const n of nodes.splice(0)) {
    for (const r of n.hung) r.destroy()
    n.server.closeAllConnections()
    await new Promise((r) => n.server.close(r))
  }
})

async function validator(hangsAfterStatus: boolean): Promise<Node> {
  const node: Node = { server: http.createServer(), url: '', height: 1, hung: [] }
  node.server.on('request', (req, res) => {
    let body = ''
    req.on('data', (c: Buffer) => (body += c.toString()))
    req.on('end', () => {
      const calls = JSON.parse(body) as { id: number; method: string; params?: unknown[] }[]
      const isTick = calls[0]?.method === 'fc_status'
      if (hangsAfterStatus && !isTick) return void node.hung.push(res) // the follow-up: never answered
      const answer = (c: (typeof calls)[number]) => {
        if (c.method === 'fc_status') return { height: node.height }
        if (c.method === 'fc_block') return { height: c.params?.[0], hash: `0x${String(c.params?.[0]).padStart(64, '0')}`, stateRoot: '0x00', proposer: 0, certificate: { votes: [] } }
        return []
      }
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify(calls.map((c) => ({ jsonrpc: '2.0', id: c.id, result: answer(c) }))))
    })
  })
  await new Promise<void>((r) => node.server.listen(0, '127.0.0.1', r))
  node.url = `http://127.0.0.1:${(node.server.address() as AddressInfo).port}`
  nodes.push(node)
  return node
}

// `rpc` as the devnet gives each node (its default 30 s timeout): the probe must not sample through it.
const devnetOf = (list: Node[]) => ({ nodes: list.map((n, id) => ({ id, running: true, rpcUrl: n.url, rpc: createRpc(n.url, { owned: true }), pid: process.pid })) }) as unknown as Devnet

describe('devnet probe', () => {
  it('keeps sampling every validator while one of them never answers its follow-up reads', async () => {
    const honest = await validator(false)
    const stuck = await validator(true)
    // Both ahead of what the probe has read: each tick schedules a follow-up (blocks 2…height).
    honest.height = 30
    stuck.height = 30
    const probe = startProbe(devnetOf([honest, stuck]), 100)
    const t0 = performance.now()
    while (performance.now() - t0 < 2_000) {
      await new Promise((r) => setTimeout(r, 100))
      honest.height++
    }
    const stopAt = performance.now()
    await probe.stop()
    const stopMs = performance.now() - stopAt
    // At 100 ms a tick, 2 s gives ~20 samples; a busy machine still gives well over 8. A probe that
    // awaited the stuck follow-up (a 30 s timeout before) would have 1 or 2.
    expect(probe.samples.length).toBeGreaterThan(8)
    const heights = probe.samples.map((s) => s.heights[0] as number)
    expect(heights.at(-1)).toBeGreaterThan(heights[0] as number)
    // The stuck validator is still sampled too: it answers its status.
    expect(probe.samples.every((s) => s.heights[1] === 30)).toBe(true)
    // The honest one's follow-ups kept reading its blocks, every height once.
    const read = probe.blocks.filter((b) => b.node === 0).map((b) => b.height)
    expect(new Set(read).size).toBe(read.length)
    expect(Math.max(...read)).toBeGreaterThan(30)
    // stop() waits for the stuck follow-up, but no longer than its timeout (3 s) and some slack.
    expect(stopMs).toBeLessThan(10_000)
    expect(stuck.hung.length).toBeGreaterThan(0)
  }, 30_000)
})
