import { type Hex, parseGwei } from 'viem'
import { mnemonicToAccount } from 'viem/accounts'
import { watchParent } from '../../process/parent.js'
import { createRpc } from '../../targets/rpc.js'

/**
 * The flooder as its own process: `node dist/src/faults/mempool/flooder.js '<options JSON>'`.
 * It signs every transaction first (prints `READY <n>`), then sends them at `ratePerS` in
 * JSON-RPC batches round-robin over `urls`, without waiting for earlier answers (up to 32 in
 * flight), until done or SIGTERM; then prints one JSON line of counts. It exits when forkchaos
 * is gone (src/process/parent.ts), and is in the pid files `forkchaos cleanup` reads. Its own process, so the
 * signing and sending never steal the event loop of the proxies that carry the devnet's traffic.
 */
type Options = { urls: string[]; chainId: number; ratePerS: number; durationMs: number; senders: number; mnemonic: string }

// It must not outlive forkchaos: it exits when forkchaos is gone (or its IPC channel closes).
const unwatch = watchParent()

const o = JSON.parse(process.argv[2] ?? '{}') as Options
const total = Math.ceil((o.ratePerS * o.durationMs) / 1000)
const accounts = Array.from({ length: o.senders }, (_, i) => mnemonicToAccount(o.mnemonic, { addressIndex: 100 + i }))
const signed: Hex[] = []
for (let i = 0; i < total; i++) {
  // Signing is CPU-bound: yield now and then, so the parent watch's timer and IPC still run.
  if (i % 64 === 63) await new Promise((r) => setImmediate(r))
  const account = accounts[i % accounts.length] as (typeof accounts)[number]
  signed.push(
    await account.signTransaction({
      chainId: o.chainId,
      type: 'eip1559',
      nonce: Math.floor(i / accounts.length),
      to: accounts[(i + 1) % accounts.length]?.address as Hex,
      value: 1n,
      gas: 21_000n,
      maxFeePerGas: parseGwei('50'),
      maxPriorityFeePerGas: parseGwei('1'),
    }),
  )
}
process.stdout.write(`READY ${signed.length}\n`)
await new Promise<void>((resolve) => process.once('message', () => resolve()).once('SIGUSR2', () => resolve()))

const rpcs = o.urls.map((url) => createRpc(url, { owned: false, timeoutMs: 10_000 }))
const counts = { sent: 0, accepted: 0, refused: 0 }
let running = true
process.once('SIGTERM', () => {
  running = false
})
const batch = 50
const inFlight = new Set<Promise<void>>()
const start = performance.now()
for (let i = 0; i < signed.length && running; i += batch) {
  const due = start + (i / o.ratePerS) * 1000
  if (due > performance.now()) await new Promise((r) => setTimeout(r, due - performance.now()))
  while (inFlight.size >= 32) await Promise.race(inFlight)
  const rpc = rpcs[(i / batch) % rpcs.length] as (typeof rpcs)[number]
  const chunk = signed.slice(i, i + batch)
  counts.sent += chunk.length
  const request: Promise<void> = rpc
    .batch(chunk.map((tx) => ({ method: 'eth_sendRawTransaction', params: [tx] })))
    .then((answers) => {
      for (const a of answers) (typeof a === 'string' ? counts.accepted++ : counts.refused++)
    })
    .catch(() => {
      counts.refused += chunk.length
    })
    .finally(() => inFlight.delete(request))
  inFlight.add(request)
}
await Promise.all(inFlight)
// The watch holds the IPC channel open; released, the process exits once its counts are out.
unwatch()
process.stdout.write(`${JSON.stringify({ ...counts, sendMs: Math.round(performance.now() - start) })}\n`)
