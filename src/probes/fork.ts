import type { AbiEvent, Address, Hex } from 'viem'
import { decodeEventLog, parseAbiItem, toEventSelector } from '../util/evm.js'
import { readUint, readView, revertReason } from '../checks/read.js'
import { InputError } from '../errors.js'
import { calldata } from '../chain/views.js'
import type { Receipt } from '../targets/chain.js'
import { coalescingCalls, type Rpc } from '../targets/rpc.js'
import { bountyEventOf, viewOf } from '../scenario/protocol.js'
import { evaluateValue, type Value } from '../scenario/values.js'
import { signalMatcher, toArg } from '../scenario/context.js'
import type { StepRecord } from '../Step.js'
import type { Phase, Protocol } from '../scenario/types.js'

/**
 * The fork's probe: what a fork scenario's checks read, as typed series. Around every keeper
 * cycle it reads the protocol's bounty cap, the flash lender's balance and the state views (one
 * JSON-RPC batch each side, read around the transaction rather than at historical blocks, which
 * Anvil may no longer hold after snapshot reverts); from every receipt it decodes the protocol's
 * bounty and signal events; before the baseline it reads the share price and the state views;
 * at the end of every evaluated window it takes the reads the checks ask for (views, simulated
 * calls, call traces, user modules). Checks judge these series; nothing is asserted here.
 */
export type ForkSeries = {
  /** The protocol as the scenario describes it (which views and events it has). */
  protocol: Protocol
  /** Every step so far, in order; `t` is when it was recorded (ms on the probe clock). */
  steps: StepRecord[]
  /** Protocol view values read before the baseline, by key (`sharePrice()`, `previewRedeem(1e18)`: see `viewOf`). */
  start: Record<string, bigint>
  /** By check name: the answers to a check's own `start` reads, taken before the baseline. */
  startByCheck: Record<string, ReadResult[]>
  /** The reads taken at the end of the latest evaluated windows (at most `maxWindowEnds`), for each check that asked. */
  ends: WindowEnd[]
}

/** The protocol's views read right before or right after a keeper cycle. A view that reverted is absent. */
export type Around = {
  /** `protocol.sharePrice`, when the protocol names one. */
  sharePrice?: bigint
  bountyCap?: bigint
  lenderBalance?: bigint
  /** `protocol.state` views by signature without `returns` (`totalAssets()`). */
  state: Record<string, bigint>
}

/** What a check asks the probe to read at the end of a window. */
export type Read =
  | { kind: 'view'; to: Address; fn: string; args: readonly unknown[] }
  /** A scenario value (a constant or a view, nested), evaluated at the latest block; `field` names it in messages. */
  | { kind: 'value'; value: Value; field: string }
  | { kind: 'simulate'; to: Address; data: Hex; from?: Address }
  /** `debug_traceTransaction` (callTracer) of every successful cycle in the window. */
  | { kind: 'traces' }
  /** A user module's own judgement (a TypeScript/JavaScript check), run with the fork's helpers. */
  | { kind: 'module'; run(phase: Phase, steps: StepRecord[]): Promise<unknown> }

/** A read's answer: its value, or why it could not be taken (a view that reverts under a fault). */
export type ReadResult = { ok: true; value: unknown } | { ok: false; error: Error }

/** A call frame of the callTracer. */
export type Frame = { to?: Address; input?: Hex; error?: string; revertReason?: string; calls?: Frame[] }
export type CycleTrace = { label: string; frame: Frame }

export type WindowEnd = {
  /** The window's `to`, which identifies it. */
  t: number
  phase: Phase
  /** By check name: its prepared params and its reads' answers, or why it could not be prepared. */
  byCheck: Record<string, { params: unknown; reads: ReadResult[] } | { error: Error }>
}

/** Window ends the series keeps (the latest ones): a long phase's stop conditions sample after every step. */
export const maxWindowEnds = 64

export type ForkProbe = {
  series: ForkSeries
  /** The probe clock: ms, monotonic, unrounded, so that a window's bounds never tie with a step's `t`. */
  now(): number
  /** Reads the start values (share price, state views, and the given checks' own start reads); call once, before the baseline. */
  readStart(asks?: { name: string; reads: Read[] }[]): Promise<void>
  /** Reads the views around a keeper cycle, with `extra` calls in the same batch (e.g. `eth_gasPrice`). */
  around(extra?: { method: string; params?: unknown[] }[]): Promise<{ views: Around; extra: unknown[] }>
  /** Adds a step to the series (stamped with `t`, its bounty events decoded). */
  record(step: Omit<StepRecord, 't'>): StepRecord
  /** Names of the protocol's signal events a receipt holds. */
  signalsIn(receipt: Receipt): string[]
  /** Takes the reads the given checks ask for, at the end of a window. */
  sampleEnd(window: { phase: Phase; from: number; to: number }, asks: { name: string; prepare(): { params: unknown; reads: Read[] } }[]): Promise<void>
}

/**
 * `reader`: a `coalescingCalls` over `rpc` to read through, shared with the caller so that its
 * reads in the same tick join the probe's batch (default: the probe's own).
 */
export function createForkProbe(options: { rpc: Rpc; reader?: Rpc; protocol: Protocol; vault: Address; resolve(name: string, field: string): Address }): ForkProbe {
  const { rpc, protocol, vault } = options
  const series: ForkSeries = { protocol, steps: [], start: {}, startByCheck: {}, ends: [] }
  const argsOf = (view: { args: readonly (string | number | boolean)[] }, field: string) => view.args.map((a, i) => toArg(a, options.resolve, `${field}.args[${i}]`))
  const views: { key: keyof Omit<Around, 'state'> | `state:${string}`; to: Address; data: Hex }[] = []
  if (protocol.sharePrice) {
    const price = viewOf(protocol.sharePrice)
    views.push({ key: 'sharePrice', to: vault, data: calldata(price.fn, argsOf(price, 'protocol.sharePrice')) })
  }
  if (protocol.bountyCap) {
    const cap = viewOf(protocol.bountyCap)
    views.push({ key: 'bountyCap', to: vault, data: calldata(cap.fn, argsOf(cap, 'protocol.bountyCap')) })
  }
  if (protocol.lender) {
    const lender = options.resolve(protocol.lender.address, 'protocol.lender.address')
    const token = options.resolve(protocol.lender.token, 'protocol.lender.token')
    views.push({ key: 'lenderBalance', to: token, data: calldata('balanceOf(address)', [lender]) })
  }
  for (const [i, view] of (protocol.state ?? []).entries()) {
    const v = viewOf(view)
    views.push({ key: `state:${v.key}`, to: vault, data: calldata(v.fn, argsOf(v, `protocol.state[${i}]`)) })
  }
  const bountyFields = protocol.bountyEvent ? bountyEventOf(protocol.bountyEvent) : undefined
  const bounty = bountyFields ? (parseAbiItem(`event ${bountyFields.event}`) as AbiEvent) : undefined
  const bountyTopic = bounty ? toEventSelector(bounty) : undefined
  const signals = signalMatcher(protocol.signals ?? [])

  const traceCache = new Map<string, Promise<Frame>>()
  // A window end's views go out together: one JSON-RPC batch per round of reads.
  const reader = options.reader ?? coalescingCalls(rpc)
  const readOne = async (read: Read, window: { phase: Phase; from: number; to: number }): Promise<ReadResult> => {
    try {
      if (read.kind === 'view') return { ok: true, value: await readView(reader, read.to, read.fn, read.args) }
      if (read.kind === 'value') return { ok: true, value: await evaluateValue({ rpc: reader, resolve: options.resolve }, read.value, read.field) }
      if (read.kind === 'simulate') {
        return { ok: true, value: await revertReason(reader, { to: read.to, data: read.data, ...(read.from ? { from: read.from } : {}) }) }
      }
      if (read.kind === 'traces') {
        // Every trace is asked for at once (with the window end's other reads, in one batch), then awaited in order.
        const traces: { label: string; frame: Promise<Frame> }[] = []
        for (const step of inWindow(series, window)) {
          if (step.type !== 'cycle' || !step.receipt || !step.ok) continue
          // A mined transaction's trace does not change: each is fetched once per run. The key holds
          // its block, gas and logs too, so a reorg that re-mines it differently is traced again.
          const r = step.receipt
          const key = `${r.transactionHash}@${r.blockNumber}:${r.gasUsed}:${r.status}:${r.logs.length}`
          let frame = traceCache.get(key)
          if (!frame) {
            frame = reader.request<Frame>('debug_traceTransaction', [step.receipt.transactionHash, { tracer: 'callTracer' }])
            traceCache.set(key, frame)
            frame.catch(() => traceCache.delete(key))
          }
          traces.push({ label: step.label, frame })
        }
        const out: CycleTrace[] = []
        for (const t of traces) out.push({ label: t.label, frame: await t.frame })
        return { ok: true, value: out }
      }
      return { ok: true, value: await read.run(window.phase, inWindow(series, window)) }
    } catch (error) {
      if (error instanceof InputError) throw error
      return { ok: false, error: error as Error }
    }
  }

  return {
    series,
    now: () => performance.now(),
    async readStart(asks = []) {
      const named = [['protocol.sharePrice', protocol.sharePrice], ...(protocol.state ?? []).map((v, i) => [`protocol.state[${i}]`, v] as const)] as const
      const window = { phase: 'baseline' as const, from: 0, to: 0 }
      // The start views and the checks' start reads only read the chain: one batch (through
      // `reader`, with whatever else reads in this tick). A user module may move the chain, so
      // with one the checks' reads run in turn after the views.
      const modules = asks.some((a) => a.reads.some((r) => r.kind === 'module'))
      const start = Promise.all(
        named.flatMap(([field, view]) => {
          if (!view) return []
          const v = viewOf(view)
          return [readUint(reader, vault, v.fn, argsOf(v, field)).then((value) => [v.key, value] as const)]
        }),
      )
      const checks = modules ? undefined : Promise.all(asks.map((ask) => Promise.all(ask.reads.map((read) => readOne(read, window)))))
      checks?.catch(() => {})
      for (const [key, value] of await start) series.start[key] = value
      if (checks) (await checks).forEach((results, i) => (series.startByCheck[(asks[i] as (typeof asks)[number]).name] = results))
      else
        for (const ask of asks) {
          const results: ReadResult[] = []
          for (const read of ask.reads) results.push(await readOne(read, window))
          series.startByCheck[ask.name] = results
        }
    },
    async around(extra = []) {
      const answers = await rpc.batch([...extra, ...views.map((v) => ({ method: 'eth_call', params: [{ to: v.to, data: v.data }, 'latest'] }))])
      const out: Around = { state: {} }
      views.forEach((v, i) => {
        const answer = answers[extra.length + i]
        // A view that reverts under a fault is left out; checks that need it say so.
        if (typeof answer !== 'string' || answer.length < 66) return
        const value = BigInt(answer.slice(0, 66))
        if (v.key === 'sharePrice' || v.key === 'bountyCap' || v.key === 'lenderBalance') out[v.key] = value
        else out.state[v.key.slice(6)] = value
      })
      return { views: out, extra: answers.slice(0, extra.length) }
    },
    record(step) {
      const bounties: bigint[] = []
      const bountyCaps: bigint[] = []
      for (const log of step.receipt?.logs ?? []) {
        if (!bounty || !bountyFields || log.address.toLowerCase() !== vault.toLowerCase() || log.topics[0] !== bountyTopic) continue
        const { args } = decodeEventLog(bounty, { data: log.data, topics: log.topics as Hex[] })
        const fields = args as unknown as Record<string, bigint>
        bounties.push(fields[bountyFields.amount] as bigint)
        if (bountyFields.cap) bountyCaps.push(fields[bountyFields.cap] as bigint)
      }
      const stamped: StepRecord = { ...step, ...(step.receipt ? { receipt: slimReceipt(step.receipt) } : {}), t: performance.now(), ...(bounties.length ? { bounties } : {}), ...(bountyCaps.length ? { bountyCaps } : {}) }
      series.steps.push(stamped)
      return stamped
    },
    signalsIn: (receipt) => signals(receipt, vault),
    async sampleEnd(window, asks) {
      const end: WindowEnd = { t: window.to, phase: window.phase, byCheck: {} }
      const all: { name: string; params: unknown; reads: Read[] }[] = []
      for (const ask of asks) {
        try {
          all.push({ name: ask.name, ...ask.prepare() })
        } catch (error) {
          if (error instanceof InputError) throw error
          end.byCheck[ask.name] = { error: error as Error }
        }
      }
      // Views, simulations and traces only read the chain: they go out together (one round trip's
      // wait, not one per read). A user module may move the chain, so with one every read runs in turn.
      const results = all.some((a) => a.reads.some((r) => r.kind === 'module'))
        ? await (async () => {
            const out: ReadResult[][] = []
            for (const a of all) {
              const reads: ReadResult[] = []
              for (const read of a.reads) reads.push(await readOne(read, window))
              out.push(reads)
            }
            return out
          })()
        : await Promise.all(all.map((a) => Promise.all(a.reads.map((read) => readOne(read, window)))))
      all.forEach((a, i) => {
        end.byCheck[a.name] = { params: a.params, reads: results[i] as ReadResult[] }
      })
      // Only the latest window ends are read (a window is judged right after its end is sampled);
      // stop conditions sample after every step, so the list is bounded.
      series.ends = [...series.ends.filter((e) => e.t !== window.to), end].slice(-maxWindowEnds)
    },
  }
}

/**
 * A recorded receipt keeps the fields of `Receipt` only (each log: address, topics, data): Anvil's
 * answer also carries the logs bloom and every log's block and transaction hashes, which a long
 * stress run would keep thousands of (~40 KB of RSS per cycle).
 */
function slimReceipt(r: Receipt): Receipt {
  return {
    transactionHash: r.transactionHash,
    ...(r.contractAddress ? { contractAddress: r.contractAddress } : {}),
    blockNumber: r.blockNumber,
    status: r.status,
    gasUsed: r.gasUsed,
    effectiveGasPrice: r.effectiveGasPrice,
    logs: r.logs.map((l) => ({ address: l.address, topics: l.topics, data: l.data })),
  }
}

/** The steps recorded in a window (after `from`, up to `to`). */
export function inWindow(series: ForkSeries, window: { from: number; to: number }): StepRecord[] {
  return series.steps.filter((s) => s.t > window.from && s.t <= window.to)
}
