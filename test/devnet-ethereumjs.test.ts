import { spawn } from 'node:child_process'
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
import { advancesAndAgrees } from './el-heads.js'

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

describe('execution envelopes on the wire', () => {
  const base = {
    number: 1,
    parentHash: `0x${'11'.repeat(32)}`,
    timestampS: 1_700_000_001,
    feeRecipient: `0x${'22'.repeat(20)}`,
    transactions: [],
    blockHash: `0x${'33'.repeat(32)}`,
    stateRoot: `0x${'44'.repeat(32)}`,
    receiptsRoot: `0x${'55'.repeat(32)}`,
  }
  it('an Anvil payload (no envelope) encodes to the same bytes as before; an envelope is signed with the payload', async () => {
    const { encodePayload } = await import('../src/devnet/node/crypto.js')
    expect(encodePayload(base as never)).toBe(JSON.stringify([1, base.parentHash, base.timestampS, base.feeRecipient, [], base.blockHash, base.stateRoot, base.receiptsRoot]))
    const withEnvelope = { ...base, execution: { version: 4, payload: { gasUsed: '0x0' }, executionRequests: [] } }
    expect(encodePayload(withEnvelope as never)).toBe(JSON.stringify([1, base.parentHash, base.timestampS, base.feeRecipient, [], base.blockHash, base.stateRoot, base.receiptsRoot, withEnvelope.execution]))
  })
  it('a peer refuses an envelope over 16 KiB, with an unknown field or a bad version', async () => {
    const { decodePayload } = await import('../src/devnet/node/messages.js')
    const env = (payload: Record<string, unknown>, version = 4) => ({ ...base, execution: { version, payload, executionRequests: [] } })
    expect(decodePayload(env({ extraData: '0x' })).execution).toEqual({ version: 4, payload: { extraData: '0x' }, executionRequests: [] })
    expect(() => decodePayload(env({ extraData: `0x${'00'.repeat(8_200)}` }))).toThrow('execution is over 16384 bytes')
    expect(() => decodePayload(env({ mystery: '0x' }))).toThrow('unknown execution.payload.mystery')
    expect(() => decodePayload(env({}, 5))).toThrow('bad execution.version')
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
    // The independent checker refuses a chain that does not advance (nothing drives this one now).
    await expect(advancesAndAgrees([el.rpcUrl], { gapMs: 500, minBlocks: 1, withinMs: 2_000 })).rejects.toThrow('heights did not advance: 1 → 1 in 500 ms (wanted 1)')
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

// ---- the CLI: devnet up / down, a failing run, Ctrl-C, a missing client ----------------------

const root = path.resolve(import.meta.dirname, '..')

function cli(args: string[], stateDir: string, env: Record<string, string> = {}) {
  const child = spawn(process.execPath, ['bin/forkchaos.js', ...args], { cwd: root, env: { ...process.env, FORKCHAOS_STATE_DIR: stateDir, ...env } })
  let out = ''
  let err = ''
  child.stdout.on('data', (c: Buffer) => (out += c.toString()))
  child.stderr.on('data', (c: Buffer) => (err += c.toString()))
  const exit = new Promise<number | null>((r) => child.once('exit', (code, signal) => r(code ?? (signal ? 128 : null))))
  // A test that timed out: SIGTERM, so its teardown (and exit hook) stops what it started.
  cleanups.push(async () => {
    if (child.exitCode === null && child.pid) {
      process.kill(child.pid, 'SIGTERM')
      await Promise.race([exit, new Promise((r) => setTimeout(r, 20_000))])
    }
  })
  return { child, exit, out: () => out, err: () => err }
}

/** Pids whose command line names `dir` (every node config, Anvil log and ethereumjs data dir of a devnet is under its state dir). */
function processesUnder(dir: string): number[] {
  const pids: number[] = []
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue
    try {
      if (fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(dir)) pids.push(Number(entry))
    } catch {}
  }
  return pids
}

/** The pids the process owner recorded (pid files), by kind. */
function recorded(stateDir: string): { pid: number; kind: string }[] {
  try {
    return fs.readdirSync(path.join(stateDir, 'pids')).map((f) => JSON.parse(fs.readFileSync(path.join(stateDir, 'pids', f), 'utf8')) as { pid: number; kind: string })
  } catch {
    return []
  }
}

const waitUntil = async (predicate: () => boolean, ms: number) => {
  const end = Date.now() + ms
  while (!predicate() && Date.now() < end) await new Promise((r) => setTimeout(r, 100))
  return predicate()
}

describe('selecting the execution client', () => {
  it('target.el: a bad value is exit 2 naming the file, line, field and allowed values; a good one sets a 2 s default slot', async () => {
    const dir = tmp('fc-ejs-load-')
    const file = path.join(dir, 'bad-el.yaml')
    const body = (el: string) => ['name: el', 'hypothesis: h', `target: { kind: devnet, el: ${el} }`, 'inject: { duration: 1s, faults: [] }', ''].join('\n')
    fs.writeFileSync(file, body('geth'))
    const { loadScenario } = await import('../src/scenario/loader.js')
    expect(() => loadScenario(file)).toThrow(`${file}:3: \`target.el\` must be one of "anvil", "ethereumjs". Got \`"geth"\`.`)
    const run = cli(['run', file], dir)
    expect(await run.exit).toBe(2)
    expect(run.err()).toContain('Field: target.el')
    fs.writeFileSync(file, body('ethereumjs'))
    expect(loadScenario(file).target).toMatchObject({ kind: 'devnet', el: 'ethereumjs', slotMs: 2_000 })
    const badFlag = cli(['run', file, '--el', 'reth'], dir)
    expect(await badFlag.exit).toBe(2)
    expect(badFlag.err()).toContain('`--el` must be one of anvil, ethereumjs. Got `reth`.')
  })
})

describe('forkchaos devnet up --el ethereumjs', () => {
  it('runs 4 validators whose heights advance and agree on every ethereumjs (eth_getBlockByNumber only); devnet down leaves no process', async () => {
    const stateDir = tmp('fc-ejs-state-')
    const up = cli(['devnet', 'up', '--el', 'ethereumjs'], stateDir)
    expect(await waitUntil(() => up.out().includes('devnet ready.') || up.child.exitCode !== null, 90_000)).toBe(true)
    expect(up.out()).toMatch(/devnet up: 4 validators \(f = 1\), slot 2000 ms, first commit \d+ ms after start/)
    const urls = [...up.out().matchAll(/ethereumjs (http:\/\/127\.0\.0\.1:\d+)/g)].map((m) => m[1] as string)
    expect(urls).toHaveLength(4)
    const pids = [...recorded(stateDir).filter((r) => r.kind === 'execution' || r.kind === 'validator').map((r) => r.pid)]
    expect(pids).toHaveLength(8)
    // Over 8 s of 2 s slots, at least 2 blocks, the same hash on all four at one height.
    const { from, to } = await advancesAndAgrees(urls, { gapMs: 8_000, minBlocks: 2, withinMs: 10_000 })
    expect(to.number).toBeGreaterThanOrEqual(from.number + 2)
    const down = cli(['devnet', 'down'], stateDir)
    expect(await down.exit).toBe(0)
    expect(down.out()).toBe('devnet down\n')
    await up.exit
    // Gone within 5 s of the supervisor's exit (SIGKILLed groups are reaped by then).
    await waitUntil(() => pids.filter(isAlive).length === 0, 5_000)
    expect(pids.filter(isAlive)).toEqual([])
    expect(processesUnder(stateDir)).toEqual([])
  }, 150_000)

  it('Ctrl-C while the ethereumjs clients start leaves no process', async () => {
    const stateDir = tmp('fc-ejs-int-')
    const up = cli(['devnet', 'up', '--el', 'ethereumjs'], stateDir)
    // Interrupted once the execution clients run, before the validators are ready.
    expect(await waitUntil(() => recorded(stateDir).some((r) => r.kind === 'execution'), 60_000)).toBe(true)
    const pids = recorded(stateDir).map((r) => r.pid)
    up.child.kill('SIGINT')
    expect(await up.exit).toBe(130)
    expect(up.err()).toContain('forkchaos: SIGINT: reverting faults and stopping processes')
    await waitUntil(() => pids.filter(isAlive).length === 0, 5_000)
    expect(pids.filter(isAlive)).toEqual([])
    expect(processesUnder(stateDir)).toEqual([])
  })

  it('a failing run with --el ethereumjs exits 1 and leaves no process', async () => {
    const stateDir = tmp('fc-ejs-run-')
    const scenario = path.join(stateDir, 'stall.yaml')
    // A safety check that cannot hold: the chain must stall in baseline, and it commits.
    fs.writeFileSync(
      scenario,
      [
        'name: must-stall-in-baseline',
        'hypothesis: the chain stalls while nothing is wrong (it does not)',
        'target: { kind: devnet }',
        'checks:',
        '  - { name: stall, kind: safety, phases: [baseline], mustStall: true }',
        'baseline: { duration: 6s }',
        'inject: { duration: 1s, faults: [] }',
        'recover: { duration: 1s }',
        '',
      ].join('\n'),
    )
    const run = cli(['run', scenario, '--el', 'ethereumjs', '--seed', '3', '--report-dir', path.join(stateDir, 'reports')], stateDir)
    // The run's processes, by pid, while it runs.
    const seen = new Set<number>()
    const watch = setInterval(() => {
      for (const r of recorded(stateDir)) seen.add(r.pid)
    }, 200)
    const code = await run.exit
    clearInterval(watch)
    expect(seen.size).toBeGreaterThanOrEqual(8)
    await waitUntil(() => [...seen].filter(isAlive).length === 0, 5_000)
    expect([...seen].filter(isAlive)).toEqual([])
    const report = JSON.parse(fs.readFileSync(path.join(stateDir, 'reports', 'report.json'), 'utf8')) as { replay: string; scenarios: { verdict: string }[] }
    expect([code, report.scenarios[0]?.verdict]).toEqual([1, 'failed'])
    expect(report.replay).toContain('--el ethereumjs')
    expect(processesUnder(stateDir)).toEqual([])
    expect(recorded(stateDir)).toEqual([])
  }, 150_000)

  it('without @ethereumjs/client installed: exit 3 with the install command, no stack trace', async () => {
    const stateDir = tmp('fc-ejs-miss-')
    const up = cli(['devnet', 'up', '--el', 'ethereumjs'], stateDir, { FORKCHAOS_ETHEREUMJS: path.join(stateDir, 'no-such-cli.js') })
    expect(await up.exit).toBe(3)
    expect(up.err()).toContain('The ethereumjs execution client (@ethereumjs/client) is not usable: FORKCHAOS_ETHEREUMJS names no file')
    expect(up.err()).toContain('npm i --save-optional --save-exact @ethereumjs/client@0.10.5')
    expect(up.err()).not.toMatch(/\n\s+at /)
    expect(processesUnder(stateDir)).toEqual([])
  })
})
