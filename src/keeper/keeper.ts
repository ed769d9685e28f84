import { createPrng } from '../util/prng.js'

/**
 * The reference keeper: calls the protocol's keeper entry point on a fixed schedule through
 * one RPC URL, as a production bot would. Two retry policies:
 *
 * - `budgeted`: per-request timeout, at most `maxAttempts` tries per cycle, exponential backoff
 *   with full jitter (seeded), and a retry budget — retries may add at most `budgetRatio` of
 *   the first attempts (plus `minRetriesPerS` each second), so an outage cannot multiply the
 *   load on the endpoint;
 * - `naive`: retry at once, without limit, until the cycle succeeds or the run ends — the
 *   retry storm a budget exists to prevent.
 *
 * It counts what its schedule offered (one cycle per interval over the duration), the cycles it
 * reached, and what it really sent (cycle transactions), so amplification = requests / scheduled
 * cycles, and requests per reached cycle, are measured, not assumed. The denominator is the schedule, as a retry budget's bound is a
 * rate ("at most ×2 the offered load"): a keeper starved by a busy machine that reaches 2 of its
 * 15 cycles and retries both to the limit sent 7 requests for 15 offered (×0.47), not ×3.5. Its one head read per tick
 * (`eth_blockNumber`) is not counted as a request.
 */
export type KeeperOptions = {
  rpcUrl: string
  to: `0x${string}`
  from: `0x${string}`
  /** Calldata of the entry point, e.g. cycle(). */
  data: `0x${string}`
  mode: 'naive' | 'budgeted'
  intervalMs: number
  durationMs: number
  /** Per-request timeout. */
  timeoutMs: number
  budgetRatio: number
  minRetriesPerS: number
  maxAttempts: number
  baseBackoffMs: number
  maxBackoffMs: number
  seed: number
}

export type KeeperStats = {
  mode: 'naive' | 'budgeted'
  durationMs: number
  /** Cycles the keeper reached (the schedule's ticks it got to before the end). */
  offered: number
  /** Cycles the schedule asked for: one per interval over the duration. */
  scheduled: number
  /** HTTP requests sent (first attempts + retries). */
  requests: number
  retries: number
  succeeded: number
  /** Cycles given up (budget, attempts or run end). */
  gaveUp: number
  timeouts: number
  errors: number
  /** Retries refused by the budget. */
  budgetRefused: number
  /** Head reads below the block of the keeper's own last receipt: the node it reads is stale. */
  staleReads: number
  offeredPerS: number
  effectivePerS: number
  /** Requests per scheduled cycle: the load against the offered rate (what a retry budget bounds). */
  amplification: number
  /** Requests per cycle the keeper reached: how hard each cycle was retried (a storm's shape). */
  requestsPerCycle: number
  latencyMsP50: number
  latencyMsP99: number
}

export const keeperDefaults = { intervalMs: 200, timeoutMs: 1_000, budgetRatio: 0.1, minRetriesPerS: 1, maxAttempts: 5, baseBackoffMs: 25, maxBackoffMs: 1_000 }

export async function runKeeper(o: KeeperOptions): Promise<KeeperStats> {
  const prng = createPrng(o.seed)
  const start = performance.now()
  const end = start + o.durationMs
  const stats = { offered: 0, requests: 0, retries: 0, succeeded: 0, gaveUp: 0, timeouts: 0, errors: 0, budgetRefused: 0, staleReads: 0 }
  let lastReceiptBlock = 0n
  const latencies: number[] = []
  // The bucket starts with enough to carry one failing cycle through all its attempts: a keeper
  // that starts (or restarts) into two errors close together still retries them, while an
  // outage drains the bucket within a second and the budget's rate holds from then on.
  let budget = Math.min(o.maxAttempts - 1 + o.minRetriesPerS, 10 + o.minRetriesPerS)
  let lastRefill = start
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)))
  let id = 0

  const post = (method: string, params: unknown[]) =>
    fetch(o.rpcUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-forkchaos-client': `keeper-${o.mode}` },
      body: JSON.stringify({ jsonrpc: '2.0', id: ++id, method, params }),
      signal: AbortSignal.timeout(o.timeoutMs),
    })

  // A keeper polls the head before acting; a head below its own last receipt means a stale node.
  const readHead = async () => {
    try {
      const body = (await (await post('eth_blockNumber', [])).json()) as { result?: string }
      if (body.result && BigInt(body.result) < lastReceiptBlock) stats.staleReads++
    } catch {
      // A failed head read is not a cycle attempt: the cycle goes ahead regardless.
    }
  }

  const attempt = async (): Promise<boolean> => {
    stats.requests++
    const t = performance.now()
    try {
      const res = await post('eth_sendTransactionSync', [{ from: o.from, to: o.to, data: o.data, gas: '0x2dc6c0' }])
      const body = (await res.json()) as { result?: { status?: string; blockNumber?: string }; error?: unknown }
      latencies.push(performance.now() - t)
      if (body.result?.blockNumber) lastReceiptBlock = BigInt(body.result.blockNumber)
      if (res.ok && body.result?.status === '0x1') return true
      stats.errors++
      return false
    } catch (error) {
      if ((error as Error).name === 'TimeoutError') stats.timeouts++
      else stats.errors++
      return false
    }
  }

  for (let tick = start; tick < end; tick += o.intervalMs) {
    await sleep(tick - performance.now())
    if (performance.now() >= end) break
    stats.offered++
    await readHead()
    // The budget earns a fraction of a retry per first attempt, and a floor every second.
    const now = performance.now()
    budget = Math.min(budget + o.budgetRatio + ((now - lastRefill) / 1000) * o.minRetriesPerS, 10 + o.minRetriesPerS)
    lastRefill = now
    let ok = await attempt()
    let tries = 1
    while (!ok && performance.now() < end) {
      if (o.mode === 'budgeted') {
        if (tries >= o.maxAttempts) break
        if (budget < 1) {
          stats.budgetRefused++
          break
        }
        budget -= 1
        await sleep(prng.next() * Math.min(o.maxBackoffMs, o.baseBackoffMs * 2 ** (tries - 1)))
      }
      stats.retries++
      tries++
      ok = await attempt()
    }
    if (ok) stats.succeeded++
    else stats.gaveUp++
  }
  const durationMs = performance.now() - start
  const scheduled = Math.max(1, Math.ceil(o.durationMs / o.intervalMs))
  const sorted = [...latencies].sort((a, b) => a - b)
  const q = (p: number) => (sorted.length ? (sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number) : 0)
  return {
    mode: o.mode,
    durationMs: Math.round(durationMs),
    ...stats,
    scheduled,
    offeredPerS: round(stats.offered / (durationMs / 1000)),
    effectivePerS: round(stats.requests / (durationMs / 1000)),
    amplification: round(stats.requests / scheduled),
    requestsPerCycle: round(stats.offered ? stats.requests / stats.offered : 0),
    latencyMsP50: round(q(0.5)),
    latencyMsP99: round(q(0.99)),
  }
}

const round = (x: number) => Math.round(x * 100) / 100
