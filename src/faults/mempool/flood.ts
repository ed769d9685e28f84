import { type Hex, parseGwei } from 'viem'
import { mnemonicToAccount } from 'viem/accounts'
import { define, num, seenIn } from '../../Fault.js'
import { devnetOf } from '../devnet-common.js'

type Params = { ratePerS: number; durationMs: number; senders: number }
type State = { stop: () => Promise<void>; counts: { sent: number; accepted: number; refused: number }; sendMs: number }

const MNEMONIC = 'test test test test test test test test test test test junk'

/**
 * A mempool flood: `ratePerS` signed transfers per second for `durationMs`, from `senders`
 * funded accounts (genesis indices 100+), sent in JSON-RPC batches round-robin to the
 * validators. Transactions are signed before the clock starts so the rate is the wire's, not
 * the signer's. Revert stops sending.
 */
export const flood = define<Params, State>({
  type: 'mempool.flood',
  summary: 'Send `ratePerS` transactions per second for `durationMs` from `senders` accounts to the validators.',
  paramsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      ratePerS: { type: 'integer', minimum: 1, maximum: 20_000, default: 1_000 },
      durationMs: { type: 'integer', minimum: 100, maximum: 600_000, default: 5_000 },
      senders: { type: 'integer', minimum: 1, maximum: 100, default: 50 },
    },
  },
  parse: (raw, where) => ({
    ratePerS: num(raw, 'ratePerS', where, { min: 1, max: 20_000, default: 1_000, integer: true }),
    durationMs: num(raw, 'durationMs', where, { min: 100, max: 600_000, default: 5_000, integer: true }),
    senders: num(raw, 'senders', where, { min: 1, max: 100, default: 50, integer: true }),
  }),
  async apply(ctx, _target, params) {
    const devnet = devnetOf(ctx, 'mempool.flood')
    const total = Math.ceil((params.ratePerS * params.durationMs) / 1000)
    const accounts = Array.from({ length: params.senders }, (_, i) => mnemonicToAccount(MNEMONIC, { addressIndex: 100 + i }))
    const chainId = Number(await devnet.nodes[0]?.rpc.request<Hex>('eth_chainId'))
    const signed: Hex[] = []
    for (let i = 0; i < total; i++) {
      const account = accounts[i % accounts.length] as (typeof accounts)[number]
      signed.push(
        await account.signTransaction({
          chainId,
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
    const counts = { sent: 0, accepted: 0, refused: 0 }
    let running = true
    const batch = 50
    // Batches leave on schedule without waiting for earlier answers (up to `maxInFlight`), so
    // the offered rate is the configured one even when validators answer slowly.
    const maxInFlight = 32
    const inFlight = new Set<Promise<void>>()
    const loop = (async () => {
      const start = performance.now()
      for (let i = 0; i < signed.length && running; i += batch) {
        const due = start + (i / params.ratePerS) * 1000
        if (due > performance.now()) await new Promise((r) => setTimeout(r, due - performance.now()))
        while (inFlight.size >= maxInFlight) await Promise.race(inFlight)
        const node = devnet.nodes[(i / batch) % devnet.nodes.length]
        if (!node?.running) continue
        const chunk = signed.slice(i, i + batch)
        counts.sent += chunk.length
        const request = node.rpc
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
    })()
    const sendStart = performance.now()
    const state: State = {
      counts,
      sendMs: 0,
      stop: async () => {
        running = false
        await loop
      },
    }
    loop.then(() => {
      state.sendMs = performance.now() - sendStart
    })
    return state
  },
  async revert(_ctx, state) {
    const stillSending = state.sendMs === 0
    await state.stop()
    if (stillSending) state.sendMs = state.sendMs || 1
  },
  async detect(_ctx, state, observations) {
    const s = (state.sendMs / 1000).toFixed(1)
    return { took: `${state.counts.sent} tx sent in ${s} s (${Math.round(state.counts.sent / (state.sendMs / 1000 || 1))}/s), ${state.counts.accepted} accepted, ${state.counts.refused} refused`, seen: seenIn(observations) }
  },
})
