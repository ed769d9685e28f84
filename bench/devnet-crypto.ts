/**
 * The two per-message costs of an idle validator, alone (no devnet, no lock needed):
 * - checking a vote's signature: recovery (`recoverSigner`, what every check was) against the
 *   pinned public key's table (`signedBy` once the key is pinned), medians over fresh signatures;
 * - persisting the sign state before a vote: `openSignState(...).allow` (overwrite in place)
 *   against the previous write (temp file, fsync, rename, directory fsync), written here, in a
 *   folder under the OS temp dir; wall time (the event loop is blocked for it) and CPU.
 *   npx tsc -p tsconfig.json && node dist/bench/devnet-crypto.js [signatures] [writes]
 */
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { keccak256, stringToBytes } from 'viem'
import { addressOf, isPinned, recoverSigner, sign, signedBy } from '../src/devnet/node/crypto.js'
import { openSignState } from '../src/devnet/node/sign-state.js'
import type { Hex } from '../src/devnet/node/types.js'
import { median } from './stats.js'

const SIGNATURES = Number(process.argv[2] ?? 400)
const WRITES = Number(process.argv[3] ?? 100)
const key = `0x${'5c'.repeat(32)}` as Hex
const address = addressOf(key)

const signed = (tag: string) =>
  Array.from({ length: SIGNATURES }, (_, i) => {
    const digest = keccak256(stringToBytes(`bench/${tag}/${i}`))
    return [digest, sign(digest, key)] as const
  })
// Pin the key (12 recoveries), then time fresh signatures each way.
for (const [d, s] of signed('pin').slice(0, 12)) signedBy(d, s, address)
if (!isPinned(address)) throw new Error('the key did not get pinned')
const time = (xs: readonly (readonly [Hex, Hex])[], check: (d: Hex, s: Hex) => boolean) =>
  xs.map(([d, s]) => {
    const t = performance.now()
    if (!check(d, s)) throw new Error('a good signature was refused')
    return (performance.now() - t) * 1_000
  })
const recovery = time(signed('recover'), (d, s) => recoverSigner(d, s) === address)
const pinned = time(signed('pinned'), (d, s) => signedBy(d, s, address))
console.log(`\nsignature check, ${SIGNATURES} fresh signatures each (load ${os.loadavg()[0]?.toFixed(1)}, ${os.cpus().length} cores)`)
console.log(`  recovery:          median ${median(recovery).toFixed(0)} µs`)
console.log(`  pinned key table:  median ${median(pinned).toFixed(0)} µs  (${(median(recovery) / median(pinned)).toFixed(1)}× cheaper)`)

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forkchaos-bench-sign-state-'))
try {
  const value = `0x${'ab'.repeat(32)}` as Hex
  const measure = (write: (h: number) => void) => {
    const wall: number[] = []
    const cpu0 = process.cpuUsage()
    for (let h = 1; h <= WRITES; h++) {
      const t = performance.now()
      write(h)
      wall.push(performance.now() - t)
    }
    const cpu = process.cpuUsage(cpu0)
    return { wallMs: median(wall), cpuMs: (cpu.user + cpu.system) / 1_000 / WRITES }
  }
  const state = openSignState(path.join(dir, 'now'))
  const now = measure((h) => {
    if (!state.allow('prevote', h, 0, value)) throw new Error('refused')
  })
  // The previous write, for comparison: a temp file, fsync, rename, fsync of the directory.
  const file = path.join(dir, 'before.json')
  const before = measure((h) => {
    const fd = fs.openSync(`${file}.tmp`, 'w')
    fs.writeSync(fd, Buffer.from(JSON.stringify({ prevote: { height: h, round: 0, value } })))
    fs.fsyncSync(fd)
    fs.closeSync(fd)
    fs.renameSync(`${file}.tmp`, file)
    const d = fs.openSync(dir, 'r')
    fs.fsyncSync(d)
    fs.closeSync(d)
  })
  console.log(`\nsign-state write before a vote, ${WRITES} writes each, in ${os.tmpdir()}`)
  console.log(`  temp + fsync + rename + dir fsync: median ${before.wallMs.toFixed(2)} ms wall, ${before.cpuMs.toFixed(3)} ms CPU a write`)
  console.log(`  in place + fdatasync (now):        median ${now.wallMs.toFixed(2)} ms wall, ${now.cpuMs.toFixed(3)} ms CPU a write`)
} finally {
  fs.rmSync(dir, { recursive: true, force: true })
}
