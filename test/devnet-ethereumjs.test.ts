import * as fs from 'node:fs'
import * as http from 'node:http'
import * as os from 'node:os'
import * as path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { type EthereumjsInstance, startEthereumjs } from '../src/el/ethereumjs.js'
import { postMergeGenesis, readDevnetGenesis, writeJwtSecret, writePostMergeGenesis } from '../src/el/genesis.js'
import { systemContracts } from '../src/el/system-contracts.js'
import { isAlive } from '../src/process/registry.js'

// The ethereumjs execution client (npm @ethereumjs/client, an optional dependency) under the
// devnet: real processes on 127.0.0.1, stopped by pid and checked gone by pid.

const cleanups: (() => unknown)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

function tmp(prefix: string) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** A raw POST: status code and body text (no client library: what the port itself answers). */
function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      let text = ''
      res.on('data', (c) => (text += c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }))
    })
    req.on('error', reject)
    req.end(JSON.stringify(body))
  })
}

describe('post-merge genesis', () => {
  it('activates every fork at 0 with TTD 0, holds the four system contracts and the devnet accounts', () => {
    const g = readDevnetGenesis()
    const genesis = postMergeGenesis(g, 1_700_000_000) as { config: Record<string, unknown>; alloc: Record<string, { balance: string; code?: string }>; gasLimit: string; timestamp: string }
    expect(genesis.config).toMatchObject({ chainId: 31337, terminalTotalDifficulty: 0, terminalTotalDifficultyPassed: true, shanghaiTime: 0, cancunTime: 0, pragueTime: 0 })
    expect(genesis.gasLimit).toBe('0x1c9c380')
    expect(genesis.timestamp).toBe(`0x${(1_700_000_000).toString(16)}`)
    // Anvil's dev account 0 of the mnemonic, with devnet/genesis.json's 10,000 ETH.
    expect(genesis.alloc['0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266']?.balance).toBe(`0x${(10_000n * 10n ** 18n).toString(16)}`)
    expect(Object.keys(genesis.alloc)).toHaveLength(g.accounts + 4)
    expect(systemContracts.map((c) => [c.eip, c.code.length])).toEqual([
      [4788, 2 + 2 * 97],
      [2935, 2 + 2 * 83],
      [7002, 2 + 2 * 504],
      [7251, 2 + 2 * 414],
    ])
    for (const c of systemContracts) expect(genesis.alloc[c.address]?.code).toBe(c.code)
  })
})

describe('ethereumjs', () => {
  it('starts on 127.0.0.1, answers eth_chainId on its RPC port, refuses a missing JWT with 401 on its engine port, and stops leaving no process', async () => {
    const dir = tmp('fc-ejs-')
    const g = readDevnetGenesis()
    const genesisFile = writePostMergeGenesis(dir, g, Math.floor(Date.now() / 1000))
    const jwt = writeJwtSecret(dir)
    let el: EthereumjsInstance | undefined
    cleanups.push(() => el?.stop(0))
    el = await startEthereumjs({ label: 'ejs-test', dataDir: path.join(dir, 'data'), genesisFile, jwtFile: jwt.file, logDir: dir })
    expect(el.rpcUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect(el.engineUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    const chainId = await post(el.rpcUrl, { jsonrpc: '2.0', id: 1, method: 'eth_chainId', params: [] })
    expect(chainId.status).toBe(200)
    expect(JSON.parse(chainId.text).result).toBe('0x7a69')
    const noJwt = await post(el.engineUrl, { jsonrpc: '2.0', id: 1, method: 'engine_exchangeCapabilities', params: [[]] })
    expect(noJwt.status).toBe(401)
    expect(noJwt.text).toMatch(/Missing auth header/)
    const pid = el.pid
    expect(isAlive(pid)).toBe(true)
    const t0 = performance.now()
    await el.stop()
    const stopMs = performance.now() - t0
    expect(isAlive(pid)).toBe(false)
    // Its exit after SIGTERM takes ~10 s; the grace (15 s) covers it, so it is SIGTERM, not SIGKILL, that ended it.
    expect(stopMs).toBeLessThan(16_000)
  })
})
