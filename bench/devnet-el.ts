/**
 * The devnet on each execution client, side by side (4 validators, each EL's default slot:
 * anvil 1 s, ethereumjs 2 s), read the way any user would: `eth_getBlockByNumber("latest")` on
 * every EL's plain RPC port, sampled every 100 ms (so times carry up to ~100 ms of granularity):
 * - up → first commit: from before any process starts to block 1 on some EL;
 * - slot time: the mean interval between blocks over `BENCH_WINDOW_S` (default 20 s), from
 *   10 s after the first commit (the first heights, due while the devnet booted, come back to
 *   back); a value above the scheduled slot means the chain does not hold that slot;
 * - RSS per validator (consensus node and EL, from /proc/<pid>/status) at the window's end.
 *   npx tsx bench/devnet-el.ts            (BENCH_ELS=anvil,ethereumjs by default)
 */
import * as fs from 'node:fs'
import { startDevnet } from '../src/targets/devnet.js'

/** `eth_getBlockByNumber("latest")` on one EL's plain RPC port: its number. */
async function latestHead(url: string): Promise<{ number: number }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_getBlockByNumber', params: ['latest', false] }) })
  const block = ((await res.json()) as { result: { number: string } }).result
  return { number: Number(block.number) }
}

const els = (process.env.BENCH_ELS ?? 'anvil,ethereumjs').split(',') as ('anvil' | 'ethereumjs')[]
const windowS = Number(process.env.BENCH_WINDOW_S ?? 20)
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const rssMb = (pid: number) => {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Math.round(Number(m[1]) / 1024) : Number.NaN
}

for (const el of els) {
  const t0 = performance.now()
  const devnet = await startDevnet({ el, seed: 1 })
  try {
    const bootMs = performance.now() - t0
    const urls = devnet.nodes.map((n) => n.anvil.url)
    const maxHeight = async () => Math.max(...(await Promise.all(urls.map((u) => latestHead(u).catch(() => ({ number: 0 }))))).map((h) => h.number))
    while ((await maxHeight()) < 1 && performance.now() - t0 < 120_000) await sleep(100)
    const firstCommitMs = performance.now() - t0
    // Settled: 10 s after the first commit (the first heights follow each other as fast as they can).
    await sleep(10_000)
    const from = { h: await maxHeight(), t: performance.now() }
    await sleep(windowS * 1_000)
    const to = { h: await maxHeight(), t: performance.now() }
    const slotMs = (to.t - from.t) / Math.max(1, to.h - from.h)
    const rss = devnet.nodes.map((n) => ({ node: rssMb(n.pid), el: rssMb(n.anvil.pid) }))
    console.log(
      JSON.stringify({
        el,
        scheduledSlotMs: devnet.slotMs,
        bootMs: Math.round(bootMs),
        upToFirstCommitMs: Math.round(firstCommitMs),
        measuredSlotMs: Math.round(slotMs),
        blocksInWindow: to.h - from.h,
        windowS,
        rssMbPerValidator: rss,
      }),
    )
  } finally {
    await devnet.down()
  }
}
