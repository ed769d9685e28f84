import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { type NodeHandle, startNode } from '../src/devnet/node/node.js'
import { createTcpProxy, type TcpProxy } from '../src/proxy/tcp/proxy.js'
import { type AnvilInstance, startAnvil } from '../src/targets/anvil.js'
import { createPrng } from '../src/util/prng.js'

/**
 * A devnet's first height: round 0 waits until a validator has heard every peer (at most two
 * slots). In the embedded devnet each link i → j is a TCP proxy that gets j's p2p port only once
 * j is up, as here: what a validator sent into it before (its first status) is lost, and its next
 * status comes half a slot later. A peer's hello, which arrives as soon as its link works, counts
 * as hearing it. 10 s slots: a validator that waited for a status would start round 0 about
 * 5 s after its peers were up; one that counts hellos, within a second or so of its links (asserted: 3 s).
 */
const keys = (JSON.parse(fs.readFileSync(path.join(import.meta.dirname, '..', 'devnet', 'keys.json'), 'utf8')) as { validators: { id: number; privateKey: `0x${string}`; address: `0x${string}` }[] }).validators
const slotMs = 10_000
const cleanups: (() => Promise<unknown>)[] = []
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined)
})

describe('devnet start-up through link proxies', () => {
  it("round 0 starts once every peer's hello came, not at its next status", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forkchaos-startup-'))
    cleanups.push(async () => fs.rmSync(dir, { recursive: true, force: true }))
    const genesisS = Math.floor(Date.now() / 1_000)
    const anvils: AnvilInstance[] = await Promise.all(keys.map((k) => startAnvil({ label: `startup-${k.id}`, extraArgs: ['--no-mining', '--timestamp', String(genesisS)] })))
    for (const a of anvils) cleanups.push(() => a.stop())
    const prng = createPrng(1)
    const links = new Map<string, TcpProxy>()
    for (const i of keys) for (const j of keys) if (i.id !== j.id) links.set(`${i.id}->${j.id}`, await createTcpProxy({ name: `link-${i.id}-${j.id}`, listen: '127.0.0.1:0', upstream: '127.0.0.1:9', prng: prng.fork(`${i.id}-${j.id}`) }))
    for (const l of links.values()) cleanups.push(() => l.stop())
    const started = new Map<number, { atMs: number; line: string }>()
    // All at once, and their links are pointed at them only a moment later (a launcher reads each
    // READY line when it gets to it): what they send at start-up goes nowhere.
    const nodes: NodeHandle[] = await Promise.all(
      keys.map((k) =>
        startNode(
          {
            id: k.id,
            privateKey: k.privateKey,
            validators: keys.map((v) => ({ id: v.id, address: v.address })),
            p2pListen: '127.0.0.1:0',
            peers: keys.filter((v) => v.id !== k.id).map((v) => ({ id: v.id, address: links.get(`${k.id}->${v.id}`)?.listen })),
            rpcListen: '127.0.0.1:0',
            executionUrl: anvils[k.id]?.url,
            dataDir: path.join(dir, `validator-${k.id}`),
            slotMs,
            genesisTimestampS: genesisS,
            chainId: 31337,
            maxDriftMs: 3 * slotMs,
            mempool: { maxTotal: 1_000, maxPerSender: 16 },
          },
          {
            log: (line) => {
              if (line.includes('consensus: started') && !started.has(k.id)) started.set(k.id, { atMs: performance.now(), line })
            },
          },
        ),
      ),
    )
    for (const node of nodes) cleanups.push(() => node.stop())
    await new Promise((r) => setTimeout(r, 300))
    for (const [key, link] of links) await link.update({ upstream: nodes[Number(key.split('->')[1])]?.p2p as string })
    const upAtMs = performance.now()
    const deadline = upAtMs + 3 * slotMs
    while (started.size < keys.length && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    expect([...started.keys()].sort()).toEqual([0, 1, 2, 3])
    for (const [id, s] of started) {
      expect(s.line, `validator ${id}`).toContain('3 of 3 peers heard')
      expect(s.atMs - upAtMs, `validator ${id}: round 0 started ${Math.round(s.atMs - upAtMs)} ms after the last peer was up`).toBeLessThan(3_000)
    }
  }, 60_000)
})
