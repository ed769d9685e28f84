import * as fs from 'node:fs'
import * as http from 'node:http'
import * as os from 'node:os'
import * as path from 'node:path'
import { privateKeyToAccount } from 'viem/accounts'
import { afterEach, describe, expect, it } from 'vitest'
import { EngineApiEngine } from '../src/devnet/node/engine-api.js'
import type { Hex } from '../src/devnet/node/types.js'
import { startRpcProxy } from '../src/proxy/jsonrpc/proxy.js'
import { createPrng } from '../src/util/prng.js'
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

/** Anvil's dev account 0 (funded in devnet/genesis.json's mnemonic). */
const devKey = '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80' as const

async function oneEthereumjs() {
  const dir = tmp('fc-ejs-')
  const genesisFile = writePostMergeGenesis(dir, readDevnetGenesis(), Math.floor(Date.now() / 1000) - 10)
  const jwt = writeJwtSecret(dir)
  const el = await startEthereumjs({ label: 'ejs-engine', dataDir: path.join(dir, 'data'), genesisFile, jwtFile: jwt.file, logDir: dir })
  cleanups.push(() => el.stop(0))
  return { el, jwt }
}

describe('Engine API engine on a real ethereumjs', () => {
  it('negotiates V4, builds (fcU with attributes → getPayloadV4 → its own newPayloadV4), commits with fcU, through the exec proxy', async () => {
    const { el, jwt } = await oneEthereumjs()
    // The engine link goes through the per-validator JSON-RPC proxy, as on the devnet: it must pass the JWT on.
    const proxy = await startRpcProxy({ upstream: el.engineUrl, prng: createPrng(1), name: 'exec-test' })
    cleanups.push(() => proxy.close())
    const unauthenticated = await post(proxy.url, { jsonrpc: '2.0', id: 1, method: 'engine_exchangeCapabilities', params: [[]] })
    expect(unauthenticated.status).toBe(401)
    const engine = await EngineApiEngine.connect({ url: proxy.url, rpcUrl: el.rpcUrl, jwtSecretHex: jwt.secretHex })
    cleanups.push(() => engine.close())
    expect(engine.versions).toEqual({ newPayload: 4, getPayload: 4 })
    expect(engine.head().number).toBe(0)
    const account = privateKeyToAccount(devKey)
    const tx = (await account.signTransaction({ chainId: 31337, type: 'eip1559', nonce: 0, to: '0x000000000000000000000000000000000000dEaD', value: 1n, gas: 21_000n, maxFeePerGas: 10n ** 10n, maxPriorityFeePerGas: 1n })) as Hex
    const head = engine.head()
    const built = await engine.buildPayload({ parent: head.hash, timestampS: head.timestampS + 1, feeRecipient: '0x00000000000000000000000000000000000000fe', txs: [tx] })
    expect(built.number).toBe(1)
    expect(built.transactions).toEqual([tx.toLowerCase()])
    expect(built.rejected).toEqual([])
    expect(built.execution?.version).toBe(4)
    // The proposer's own block went through newPayloadV4 inside the build.
    expect(engine.verdicts.map((v) => [v.method, v.status, v.number])).toEqual([['engine_newPayloadV4', 'VALID', 1]])
    await engine.forkchoiceUpdated(built.blockHash)
    expect(engine.head()).toEqual({ number: 1, hash: built.blockHash, timestampS: head.timestampS + 1 })
    // The plain RPC port (no JWT) shows the block as latest.
    const latest = JSON.parse((await post(el.rpcUrl, { jsonrpc: '2.0', id: 1, method: 'eth_getBlockByNumber', params: ['latest', false] })).text).result
    expect([Number(latest.number), latest.hash, latest.transactions.length]).toEqual([1, built.blockHash, 1])
    // The proxy forwarded every engine call (JWT included): exchangeCapabilities, fcU, getPayload, newPayload, fcU.
    expect(proxy.stats().byMethod).toMatchObject({ engine_getPayloadV4: { requests: 1, errors: 0 }, engine_newPayloadV4: { requests: 1, errors: 0 } })
  })

  it('a second client validates the first one\'s block from the envelope a proposal carries, and refuses a tampered one', async () => {
    const a = await oneEthereumjs()
    const engineA = await EngineApiEngine.connect({ url: a.el.engineUrl, rpcUrl: a.el.rpcUrl, jwtSecretHex: a.jwt.secretHex })
    cleanups.push(() => engineA.close())
    const head = engineA.head()
    const built = await engineA.buildPayload({ parent: head.hash, timestampS: head.timestampS + 1, feeRecipient: '0x00000000000000000000000000000000000000fe', txs: [] })
    // The same genesis file on the second client: its own process, its own chain.
    const dir = tmp('fc-ejs-b-')
    const b = await startEthereumjs({ label: 'ejs-b', dataDir: path.join(dir, 'data'), genesisFile: path.join(path.dirname(a.jwt.file), 'genesis.json'), jwtFile: a.jwt.file, logDir: dir })
    cleanups.push(() => b.stop(0))
    const engineB = await EngineApiEngine.connect({ url: b.engineUrl, rpcUrl: b.rpcUrl, jwtSecretHex: a.jwt.secretHex })
    cleanups.push(() => engineB.close())
    expect(engineB.head().hash).toBe(head.hash)
    const { rejected: _, ...payload } = built
    // Over the wire: the proposal's JSON, decoded as a peer decodes it.
    const { decodePayload } = await import('../src/devnet/node/messages.js')
    const received = decodePayload(JSON.parse(JSON.stringify(payload)))
    expect(await engineB.newPayload(received)).toEqual({ status: 'VALID' })
    const flipped = `0x${(BigInt(received.stateRoot) ^ 1n).toString(16).padStart(64, '0')}` as Hex
    const tampered = decodePayload(JSON.parse(JSON.stringify({ ...payload, stateRoot: flipped, execution: { ...payload.execution, payload: { ...payload.execution?.payload, stateRoot: flipped } } })))
    const status = await engineB.newPayload(tampered)
    // Without a recomputed block hash the client refuses it on the hash.
    expect(status).toMatchObject({ status: 'INVALID', field: 'blockHash', engine: { method: 'engine_newPayloadV4' } })
    expect(status.status === 'INVALID' && status.engine?.status).toMatch(/^INVALID/)
  })
})
