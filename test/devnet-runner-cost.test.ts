import * as fs from 'node:fs'
import * as path from 'node:path'
import { describe, expect, it } from 'vitest'
import { InfraError } from '../src/errors.js'
import { startProbe } from '../src/scenario/devnet-probe.js'
import { startAnvil } from '../src/targets/anvil.js'
import { execProxiesFor, startDevnet } from '../src/targets/devnet.js'

/**
 * What the runner puts on the devnet's path: an Anvil's output is logged and its last part kept
 * at O(chunk) per chunk; a drill with no fault on the execution link runs its validators
 * straight to their Anvils (`execProxy`: only the validators a fault acts on get a proxy), `devnet up` keeps the proxies; the probe
 * samples every validator in one batch per tick and still sees every block.
 */
describe('Anvil output after start-up', () => {
  it('goes to the log call by call, and the last of it is kept for exitInfo', async () => {
    const anvil = await startAnvil({ label: 'output' })
    const calls = 400
    try {
      for (let i = 0; i < calls; i++) await anvil.rpc.request('eth_gasPrice')
      // Anvil logs each call's method; give its last lines a moment to arrive.
      await new Promise((r) => setTimeout(r, 300))
    } finally {
      await anvil.stop()
    }
    const log = fs.readFileSync(anvil.logFile, 'utf8')
    expect(log).toMatch(/Listening on 127\.0\.0\.1:\d+/)
    expect(log.match(/^eth_gasPrice$/gm)?.length).toBe(calls)
    const exit = anvil.exitInfo()
    expect(exit).not.toBeNull()
    expect(exit?.lastOutput).toMatch(/eth_gasPrice\s*$/)
    expect(exit?.lastOutput.length).toBeLessThanOrEqual(4_000)
  }, 60_000)
})

describe('execution proxies on the devnet', () => {
  it('are needed exactly for the validators a fault on the execution link targets, all when a soak draws the target', () => {
    expect(execProxiesFor([{ type: 'byzantine.state-root-flip', target: 1 }])).toEqual([1])
    expect(execProxiesFor([{ type: 'mempool.flood' }, { type: 'byzantine.state-root-flip', target: 'validator-3' }, { type: 'byzantine.state-root-flip', target: '0' }])).toEqual([0, 3])
    expect(execProxiesFor([{ type: 'byzantine.state-root-flip' }])).toBe(true)
    expect(execProxiesFor([{ type: 'mempool.flood' }, { type: 'node.kill', target: 2 }, { type: 'net.partition', target: 3 }])).toBe(false)
    expect(execProxiesFor([])).toBe(false)
  })

  it('execProxy: [1] — validator 1 goes through its proxy, the others call their own Anvil and node.exec says why it is not there; the chain commits; the probe sees every block', async () => {
    const devnet = await startDevnet({ slotMs: 1_000, seed: 5, execProxy: [1] })
    const probe = startProbe(devnet)
    try {
      for (const node of devnet.nodes) {
        const config = JSON.parse(fs.readFileSync(path.join(node.dataDir, 'config.json'), 'utf8')) as { executionUrl: string }
        expect(node.execProxied).toBe(node.id === 1)
        expect(config.executionUrl).toBe(node.id === 1 ? node.exec.url : node.anvil.url)
      }
      const node = devnet.nodes[2]
      expect(() => node?.exec.addRule).toThrow(InfraError)
      expect(() => node?.exec.stats()).toThrow('Validator 2 calls its Anvil directly: this devnet was started without an execution proxy for it (`execProxy`).')
      // Inspecting the node (a log line, a promise resolve) does not throw.
      expect(JSON.stringify({ exec: node?.exec })).toBe('{"exec":{}}')
      const deadline = performance.now() + 30_000
      while ((probe.samples.at(-1)?.heights.every((h) => h !== null && h >= 3) ?? false) === false && performance.now() < deadline) await new Promise((r) => setTimeout(r, 100))
    } finally {
      await probe.stop()
      await devnet.down()
    }
    const last = probe.samples.at(-1)
    expect(last?.heights.every((h) => h !== null && h >= 3)).toBe(true)
    // Every validator's blocks, each height once and in order from 1, up to (at most one behind) what it reported.
    for (const id of [0, 1, 2, 3]) {
      const heights = probe.blocks.filter((b) => b.node === id).map((b) => b.height)
      expect(heights).toEqual(Array.from({ length: heights.length }, (_, i) => i + 1))
      expect(heights.length).toBeGreaterThanOrEqual(((last?.heights[id] as number) ?? 0) - 1)
    }
    expect(probe.rssMb.length).toBeGreaterThan(0)
    expect(devnet.nodes[1]?.exec.stats().requests).toBeGreaterThan(0)
  }, 90_000)

  it('by default (devnet up) each validator goes through its proxy', async () => {
    const devnet = await startDevnet({ slotMs: 1_000, seed: 6 })
    try {
      const deadline = performance.now() + 30_000
      while ((await devnet.status()).some((s) => 'down' in s || s.height < 1) && performance.now() < deadline) await new Promise((r) => setTimeout(r, 200))
      for (const node of devnet.nodes) {
        const config = JSON.parse(fs.readFileSync(path.join(node.dataDir, 'config.json'), 'utf8')) as { executionUrl: string }
        expect(node.execProxied).toBe(true)
        expect(config.executionUrl).toBe(node.exec.url)
        expect(config.executionUrl).not.toBe(node.anvil.url)
        expect(node.exec.stats().requests).toBeGreaterThan(0)
      }
    } finally {
      await devnet.down()
    }
  }, 90_000)
})
