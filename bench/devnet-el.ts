/**
 * The devnet on each execution client, side by side (4 validators, each EL's default slot:
 * anvil 1 s, ethereumjs 2 s), read the way any user would: `eth_getBlockByNumber("latest")` on
 * every EL's plain RPC port, sampled every 100 ms (so times carry up to ~100 ms of granularity):
 * - up → first commit: from before any process starts to block 1 on some EL;
 * - slot time: the mean interval between blocks over `BENCH_WINDOW_S` (default 20 s), from
 *   10 s after the first commit (the first heights, due while the devnet booted, come back to
 *   back); a value above the scheduled slot means the chain does not hold that slot;
 * - RSS per validator (consensus node and EL, from /proc/<pid>/status) at the window's end;
 * - bad-block rejection latency: scenarios/devnet/state-root-flip.yaml on a fresh devnet of
 *   that EL at its slot (validator 1's execution link flips the state root of every block it
 *   builds, block hash recomputed; on ethereumjs on its engine link, getPayload rewritten). Each
 *   honest node records every refusal (`fc_rejections`): its latency runs from the proposal's
 *   arrival to the refusal, the EL's own newPayload answer included (its status and error come
 *   with it on ethereumjs: INVALID "invalid block stateroot"). Reported: how many, p50 and worst;
 * - catch-up after a 30 s partition: `net.partition` cuts validator 3 off for 30 s, then heals;
 *   the time from the heal until its height equals the others' (see `partition` below), on the
 *   drills' own probe and fault code.
 * The state-root drill runs through the one experiment engine (runDevnetScenario), its verdict printed.
 *   npx tsx bench/devnet-el.ts            (BENCH_ELS=anvil,ethereumjs by default; BENCH_PARTS=slot,flip,partition)
 */
import * as fs from 'node:fs'
import * as os from 'node:os'
import { type ActiveFault, type AnyFault, applyFault, type FaultContext } from '../src/Fault.js'
import { faults } from '../src/faults/registry.js'
import { startProbe } from '../src/scenario/devnet-probe.js'
import { runDevnetScenario } from '../src/scenario/devnet-runner.js'
import { createRpc } from '../src/targets/rpc.js'
import { createPrng } from '../src/util/prng.js'
import { loadScenario } from '../src/scenario/loader.js'
import { startDevnet } from '../src/targets/devnet.js'

/** `eth_getBlockByNumber("latest")` on one EL's plain RPC port: its number. */
async function latestHead(url: string): Promise<{ number: number }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_getBlockByNumber', params: ['latest', false] }) })
  const block = ((await res.json()) as { result: { number: string } }).result
  return { number: Number(block.number) }
}

const els = (process.env.BENCH_ELS ?? 'anvil,ethereumjs').split(',') as ('anvil' | 'ethereumjs')[]
const windowS = Number(process.env.BENCH_WINDOW_S ?? 20)
const parts = new Set((process.env.BENCH_PARTS ?? 'slot,flip,partition').split(','))
const SEED = 1
/** Each EL's default slot (src/targets/devnet.ts): what the rows are measured at. */
const slotOf = { anvil: 1_000, ethereumjs: 2_000 } as const
const pct = (xs: number[], q: number) => {
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted.length ? (sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] as number) : null
}

/** The state-root drill on `el` at its slot: validator 1 proposes every 4th height, so inject holds 5 of its turns. */
async function badBlock(el: 'anvil' | 'ethereumjs') {
  const slotMs = slotOf[el]
  const s = loadScenario('scenarios/devnet/state-root-flip.yaml')
  const scenario = { ...s, target: { ...s.target, el, slotMs }, baseline: { ...s.baseline, durationMs: 3 * slotMs }, inject: { ...s.inject, durationMs: 20 * slotMs }, recover: { ...s.recover, durationMs: 4 * slotMs } }
  const r = await runDevnetScenario(scenario, { seed: SEED, replay: 'bench' })
  const honest = r.devnet.rejections.filter((x) => x.proposer === 1 && x.node !== 1)
  const engine = (r.faults[0]?.evidence as { engine?: unknown } | null | undefined)?.engine as { tampered: number; answers: { status: string; validationError: string | null }[] } | undefined
  const statuses: Record<string, number> = {}
  for (const a of engine?.answers ?? []) statuses[a.status] = (statuses[a.status] ?? 0) + 1
  return {
    verdict: r.verdict,
    rejections: honest.length,
    layers: [...new Set(honest.map((x) => x.layer))],
    heights: new Set(honest.map((x) => x.height)).size,
    p50Ms: pct(honest.map((x) => x.latencyMs), 0.5),
    maxMs: honest.length ? Math.max(...honest.map((x) => x.latencyMs)) : null,
    ...(engine ? { tampered: engine.tampered, elAnswers: statuses, elError: engine.answers[0]?.validationError ?? null } : {}),
    failed: r.checks.filter((c) => !c.ok).map((c) => `${c.name}@${c.phase}: ${c.observed}`),
  }
}

/**
 * Validator 3 cut off for 30 s, then healed, on a fresh devnet read by the scenarios' own probe
 * (every 100 ms): how long until its height equals the others' (the lowest of the three at the
 * same sample: the probe reads the nodes one after another, so a height just committed shows on
 * some first), and until it reaches the height the others had at the heal (the `catchUp` check).
 */
async function partition(el: 'anvil' | 'ethereumjs') {
  const slotMs = slotOf[el]
  const devnet = await startDevnet({ el, seed: SEED, slotMs })
  const probe = startProbe(devnet)
  let fault: ActiveFault | undefined
  try {
    while (probe.firstCommitAt(1) === undefined) await sleep(100)
    await sleep(3 * slotMs)
    const ctx: FaultContext = {
      rpc: createRpc('http://127.0.0.1:1', { owned: false }),
      prng: createPrng(SEED).fork('faults'),
      resolve: () => {
        throw new Error('no contracts on a devnet')
      },
      now: () => probe.now(),
      devnet,
    }
    fault = await applyFault(faults['net.partition'] as AnyFault, ctx, { target: '3', params: {} }, 'bench net.partition')
    await sleep(30_000)
    await fault.revert()
    const healAt = fault.tStop as number
    const heightsAtHeal = [...probe.samples].reverse().find((x) => x.t <= healAt)?.heights ?? []
    const target = Math.max(...[0, 1, 2].map((v) => heightsAtHeal[v] ?? 0))
    let equalMs: number | null = null
    let reachedMs: number | null = null
    const deadline = performance.now() + 60_000
    while ((equalMs === null || reachedMs === null) && performance.now() < deadline) {
      await sleep(200)
      for (const x of probe.samples) {
        if (x.t < healAt) continue
        const h3 = x.heights[3] ?? -1
        if (reachedMs === null && h3 >= target) reachedMs = x.t - healAt
        if (equalMs === null && h3 >= Math.min(...[0, 1, 2].map((v) => x.heights[v] ?? 0))) equalMs = x.t - healAt
      }
    }
    const last = probe.samples.at(-1)?.heights ?? []
    return { heightsAtHeal, equalsOthersMs: equalMs, reachesHeightAtHealMs: reachedMs, heightsAtEnd: last }
  } finally {
    await fault?.revert()
    await probe.stop()
    await devnet.down()
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const rssMb = (pid: number) => {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Math.round(Number(m[1]) / 1024) : Number.NaN
}

console.log(JSON.stringify({ seed: SEED, els, parts: [...parts], load: os.loadavg().map((x) => Math.round(x * 10) / 10) }))
for (const el of els) {
  if (parts.has('flip')) console.log(JSON.stringify({ el, badBlockRejection: await badBlock(el) }))
  if (parts.has('partition')) console.log(JSON.stringify({ el, partition30s: await partition(el) }))
  if (!parts.has('slot')) continue
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
