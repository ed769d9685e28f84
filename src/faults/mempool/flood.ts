import * as path from 'node:path'
import type { Hex } from 'viem'
import { packageRoot } from '../../contracts.js'
import { define, devnetOf, seenIn } from '../../Fault.js'
import { onTeardown } from '../../lifecycle.js'
import { define as defineProcess } from '../../process/Instance.js'
import * as P from '../../Params.js'
import { seenOnDevnet } from '../../experiment/observations.js'

type Params = { ratePerS: number; durationMs: number; senders: number }
type Counts = { sent: number; accepted: number; refused: number; sendMs: number }
type State = { stop: () => Promise<Counts> }

const MNEMONIC = 'test test test test test test test test test test test junk'

const flooderMain = () => path.join(packageRoot, 'dist', 'src', 'faults', 'mempool', 'flooder.js')

/**
 * The flooder (src/faults/mempool/flooder.ts) as a process of the process owner: its own group,
 * a pid file for `forkchaos cleanup`, an IPC channel for its `go`, and a watch on forkchaos
 * (it exits when forkchaos is gone). Ready once it has signed every transaction (`READY <n>`);
 * signing thousands takes a while on a busy machine, hence the timeout grows with the count.
 */
const flooderProcess = defineProcess((options: Record<string, unknown>) => ({
  kind: 'flooder' as const,
  label: 'flooder',
  command: process.execPath,
  args: [flooderMain(), JSON.stringify(options)],
  match: flooderMain(),
  ipc: true,
  // A minute, plus 10 ms per transaction to sign (8,000 for the shipped drill: 140 s), at most
  // the owner's 10 minutes: signing is ~1 ms each idle, several times that with the cores busy.
  startTimeoutMs: Math.min(600_000, 60_000 + 10 * Math.ceil((Number(options.ratePerS) * Number(options.durationMs)) / 1_000)),
  ready: (output: string) => (/^READY \d+$/m.test(output) ? true : undefined),
}))

/**
 * A mempool flood: `ratePerS` signed transfers per second for `durationMs`, from `senders`
 * funded accounts (genesis indices 100+), sent in JSON-RPC batches round-robin to the
 * validators by a flooder process of its own (src/faults/mempool/flooder.ts). Transactions are
 * signed before the clock starts, so the rate is the wire's, not the signer's. Revert stops it.
 */
export const flood = define<Params, State>({
  type: 'mempool.flood',
  summary: 'Send `ratePerS` transactions per second for `durationMs` from `senders` accounts to the validators.',
  target: 'devnet',
  params: P.object({
    ratePerS: P.integer({ min: 1, max: 20_000, default: 1_000, description: 'Transactions sent per second.' }),
    durationMs: P.integer({ min: 100, max: 600_000, default: 5_000, description: 'How long the flood lasts, in ms.' }),
    senders: P.integer({ min: 1, max: 100, default: 50, description: 'Funded accounts that send (genesis indices 100+).' }),
  }),
  async apply(ctx, _target, params) {
    const devnet = devnetOf(ctx, 'mempool.flood')
    const chainId = Number(await devnet.nodes[0]?.rpc.request<Hex>('eth_chainId'))
    const options = { urls: devnet.nodes.map((n) => n.rpcUrl), chainId, ...params, mnemonic: MNEMONIC }
    const flooder = flooderProcess(options)
    // SIGKILL, as before: a fault being torn down must not wait for the flooder's counts.
    const unregister = onTeardown('flooder', () => flooder.stop({ graceMs: 0 }))
    await flooder.start().catch((error) => {
      unregister()
      throw error
    })
    flooder.send('go')
    let stopped: Promise<Counts> | undefined
    return {
      stop: () =>
        (stopped ??= (async () => {
          // SIGTERM ends its sending loop; it prints its counts and exits (SIGKILL after the grace).
          await flooder.stop({ graceMs: 10_000 })
          unregister()
          const last = flooder.output().trim().split('\n').pop() ?? ''
          try {
            return JSON.parse(last) as Counts
          } catch {
            return { sent: 0, accepted: 0, refused: 0, sendMs: 0 }
          }
        })()),
    }
  },
  async revert(_ctx, state) {
    await state.stop()
  },
  async detect(_ctx, state, observations) {
    const c = await state.stop()
    return { took: `${c.sent} tx sent in ${(c.sendMs / 1000).toFixed(1)} s (${Math.round(c.sent / (c.sendMs / 1000 || 1))}/s), ${c.accepted} accepted, ${c.refused} refused`, seen: seenIn(observations) ?? seenOnDevnet(observations, []) }
  },
})
