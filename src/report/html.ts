import * as fs from 'node:fs'
import { createRequire } from 'node:module'
import type { CheckResult, RunReport, ScenarioReport } from './types.js'
import { pageScript } from './html-page.js'

/**
 * report.html: one self-contained page (uPlot's JS and CSS inlined, no network) drawn from a
 * model of the run. The model is the page's only data, in a `<script type="application/json"
 * id="forkchaos-data">` tag, so a test or a reader can read back exactly what is plotted. The
 * live view (src/ui/server.ts) serves the same page with `live: true` and sends each scenario's
 * model as it lands.
 */

/** A plotted timeline has at most this many points per series (samples are bucketed, the last of each kept). */
export const MAX_POINTS = 600
/** At most this many step rows are drawn per scenario: every failed step first, then evenly spaced. */
export const MAX_STEP_ROWS = 300
/** At most this many commits / rejections are drawn per devnet scenario (the last ones). */
export const MAX_MARKS = 1_000

export type Band = { label: string; from: number; to: number | null }
export type Mark = { label: string; t: number }

/** A devnet scenario's timeline, in seconds since the scenario's probe started. */
export type DevnetModel = {
  validators: number
  /** x (s) and one height series per validator (null: the node did not answer). */
  t: number[]
  heights: (number | null)[][]
  bands: Band[]
  commits: { t: number; height: number; proposer: number }[]
  rejections: { t: number; node: number; proposer: number; height: number; layer: string; reason: string; latencyMs: number }[]
  marks: Mark[]
  /** Honest transfers' inclusion latency: sent at `t` (s), included after `ms` (at most MAX_POINTS, bucketed). */
  inclusion: { t: number[]; ms: number[] }
  stats: { firstCommitMs: number | null; catchUpMs: number | null; rejectionLatencyMs: number | null; inclusionMs: { p50: number; p99: number; n: number } | null; maxRssMb: number }
  /** How many samples the report had before bucketing. */
  samples: number
}

export type StepRow = { i: number; phase: string; t: number; type: string; label: string; ok: boolean; reason?: string; signals?: string[] }
/** A step as the fork report's timeline holds it: a stress cycle also has its walks, the share price after it and its bounty (wei, decimal strings). */
type TimelineStep = StepRow & { walk?: { pairBps: number; feedBps: number }; sharePrice?: string; bounty?: string }

/**
 * A stress scenario's chart, one point per stress cycle (at most MAX_POINTS, bucketed): the
 * walked pair price and feed answer (bps from their start), the share price after the cycle
 * (bps from the share price after the scenario's first cycle) and the bounty paid (wei ÷ 1e18;
 * null: the cycle reverted, or the protocol has no bounty event).
 */
export type StressModel = {
  cycle: number[]
  pairBps: number[]
  feedBps: number[]
  sharePriceBps: (number | null)[]
  bounty: (number | null)[]
  /** Stress cycles in the report before bucketing. */
  cycles: number
  /** The share price the bps are counted from (wei, decimal string), or null if the protocol has none. */
  sharePriceRef: string | null
}

export type ScenarioModel = {
  name: string
  file: string
  target: string
  verdict: string
  hypothesis: string
  reason: string
  seed: number
  replay: string
  durationMs: number
  mttrMs: number | null
  faults: { type: string; target: string | null; params: string; tStart: number; tStop: number | null; took: string | null; seen: string | null }[]
  /** Checks by phase, failed first within each phase. */
  checks: { phase: string; rows: CheckResult[] }[]
  devnet: DevnetModel | null
  steps: { total: number; rows: StepRow[] } | null
  stress: StressModel | null
  views: Record<string, Record<string, string>> | null
}

export type RunModel = {
  tool: string
  version: string
  seed: number
  replay: string
  startedAt: string
  durationMs: number
  target: string
  live: boolean
  /** The live view was started with `--ui-control`: the page shows a stop button (revert buttons for `forkchaos ui`). */
  control: boolean
  /** `forkchaos ui`: the control URL of the proxy whose experiments the page shows. */
  proxy?: string
  scenarios: ScenarioModel[]
}

type DevnetPart = {
  heights?: { t: number; heights: (number | null)[] }[]
  faultWindows?: { type: string; target: string | undefined; tStart: number; tStop: number | null }[]
  commits?: { height: number; t: number; proposer: number }[]
  rejections?: { node: number; proposer: number; height: number; layer: string; reason: string; latencyMs: number; t: number }[]
  firstCommitMs?: number | null
  catchUpMs?: number | null
  rejectionLatencyMs?: number | null
  inclusionMs?: { p50: number; p99: number; n: number } | null
  inclusion?: { t: number; ms: number }[]
  maxRssMb?: number
}
type TimelinePart = { steps?: TimelineStep[]; views?: Record<string, Record<string, string>> }

const s3 = (ms: number) => Math.round(ms) / 1000
const phaseOrder = ['baseline', 'inject', 'recover']

/** The model of one scenario's report: what the page draws, downsampled and bounded. */
export function scenarioModel(report: ScenarioReport): ScenarioModel {
  const extra = report as ScenarioReport & { devnet?: DevnetPart; timeline?: TimelinePart }
  const phases = [...new Set([...phaseOrder, ...report.checks.map((c) => c.phase)])].filter((p) => report.checks.some((c) => c.phase === p))
  return {
    name: report.name,
    file: report.file,
    target: report.target,
    verdict: report.verdict,
    hypothesis: report.hypothesis,
    reason: report.reason,
    seed: report.seed,
    replay: report.replay,
    durationMs: report.durationMs,
    mttrMs: report.mttrMs,
    faults: report.faults.map((f) => ({ type: f.type, target: f.target ?? null, params: JSON.stringify(f.params).slice(0, 300), tStart: f.tStart, tStop: f.tStop, took: f.evidence?.took ?? null, seen: f.evidence?.seen ?? null })),
    checks: phases.map((phase) => ({ phase, rows: report.checks.filter((c) => c.phase === phase).sort((a, b) => Number(a.ok) - Number(b.ok)) })),
    devnet: extra.devnet ? devnetModel(extra.devnet, report.mttrMs) : null,
    steps: extra.timeline?.steps ? { total: extra.timeline.steps.length, rows: stepRows(extra.timeline.steps.map(plainStep)) } : null,
    stress: extra.timeline?.steps ? stressModel(extra.timeline.steps) : null,
    views: extra.timeline?.views && Object.keys(extra.timeline.views).length ? extra.timeline.views : null,
  }
}

function devnetModel(d: DevnetPart, mttrMs: number | null): DevnetModel {
  const samples = d.heights ?? []
  const validators = Math.max(0, ...samples.map((s) => s.heights.length))
  const kept = bucket(samples, MAX_POINTS)
  const bands: Band[] = (d.faultWindows ?? []).map((w) => ({ label: `${w.type}${w.target !== undefined && w.target !== null ? ` @ ${w.target}` : ''}`, from: s3(w.tStart), to: w.tStop === null ? null : s3(w.tStop) }))
  const reverted = Math.max(-1, ...(d.faultWindows ?? []).map((w) => w.tStop ?? -1))
  const marks: Mark[] = []
  if (reverted >= 0 && d.catchUpMs !== null && d.catchUpMs !== undefined) marks.push({ label: `caught up (${d.catchUpMs} ms)`, t: s3(reverted + d.catchUpMs) })
  if (reverted >= 0 && mttrMs !== null) marks.push({ label: `MTTR ${mttrMs} ms`, t: s3(reverted + mttrMs) })
  const inclusion = bucket(d.inclusion ?? [], MAX_POINTS)
  return {
    validators,
    t: kept.map((s) => s3(s.t)),
    heights: Array.from({ length: validators }, (_, v) => kept.map((s) => s.heights[v] ?? null)),
    bands,
    commits: (d.commits ?? []).slice(-MAX_MARKS).map((c) => ({ t: s3(c.t), height: c.height, proposer: c.proposer })),
    rejections: (d.rejections ?? []).slice(-MAX_MARKS).map((r) => ({ ...r, t: s3(r.t) })),
    marks,
    inclusion: { t: inclusion.map((p) => s3(p.t)), ms: inclusion.map((p) => p.ms) },
    stats: { firstCommitMs: d.firstCommitMs ?? null, catchUpMs: d.catchUpMs ?? null, rejectionLatencyMs: d.rejectionLatencyMs ?? null, inclusionMs: d.inclusionMs ?? null, maxRssMb: d.maxRssMb ?? 0 },
    samples: samples.length,
  }
}

/** At most `max` samples: the last of each of `max` equal buckets (heights only grow, so the last is the bucket's height). */
export function bucket<T>(items: T[], max: number): T[] {
  if (items.length <= max) return items
  const out: T[] = []
  for (let b = 0; b < max; b++) out.push(items[Math.min(items.length - 1, Math.floor(((b + 1) * items.length) / max) - 1)] as T)
  return out
}

const plainStep = ({ walk: _w, sharePrice: _p, bounty: _b, ...row }: TimelineStep): StepRow => row

function stressModel(steps: TimelineStep[]): StressModel | null {
  const walked = steps.filter((s) => s.walk)
  if (!walked.length) return null
  const ref = steps.find((s) => s.sharePrice !== undefined)?.sharePrice
  const refPrice = ref !== undefined ? BigInt(ref) : 0n
  const kept = bucket(walked, MAX_POINTS)
  return {
    cycle: kept.map((s) => Number(/#(\d+)$/.exec(s.label)?.[1] ?? s.i)),
    pairBps: kept.map((s) => s.walk?.pairBps ?? 0),
    feedBps: kept.map((s) => s.walk?.feedBps ?? 0),
    sharePriceBps: kept.map((s) => (s.sharePrice !== undefined && refPrice > 0n ? Number(((BigInt(s.sharePrice) - refPrice) * 1_000_000n) / refPrice) / 100 : null)),
    bounty: kept.map((s) => (s.bounty !== undefined ? Number(BigInt(s.bounty) / 10n ** 9n) / 1e9 : null)),
    cycles: walked.length,
    sharePriceRef: ref ?? null,
  }
}

function stepRows(steps: StepRow[]): StepRow[] {
  if (steps.length <= MAX_STEP_ROWS) return steps
  const failed = steps.filter((s) => !s.ok).slice(0, MAX_STEP_ROWS / 2)
  const rest = bucket(
    steps.filter((s) => s.ok),
    MAX_STEP_ROWS - failed.length,
  )
  return [...failed, ...rest].sort((a, b) => a.i - b.i)
}

/** The model of a whole run. */
export function runModel(report: RunReport, live = false, control = false): RunModel {
  return {
    tool: report.tool,
    version: report.version,
    seed: report.seed,
    replay: report.replay,
    startedAt: report.startedAt,
    durationMs: report.durationMs,
    target: `${report.target.kind} · ${report.target.source}${report.target.forkBlock ? ` @ ${report.target.forkBlock}` : ''}`,
    live,
    control,
    scenarios: report.scenarios.map(scenarioModel),
  }
}

let assets: { js: string; css: string } | undefined
/** uPlot's minified JS and CSS, read once from node_modules. */
function uplotAssets(): { js: string; css: string } {
  if (!assets) {
    const require = createRequire(import.meta.url)
    const dir = require.resolve('uplot').replace(/uPlot\.cjs\.js$/, '')
    assets = { js: fs.readFileSync(`${dir}uPlot.iife.min.js`, 'utf8'), css: fs.readFileSync(`${dir}uPlot.min.css`, 'utf8') }
  }
  return assets
}

const escapeHtml = (text: string) => text.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] as string)

/** JSON safe inside a <script> element. */
export const scriptJson = (value: unknown) => JSON.stringify(value).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029')

/** The page: report.html, or the live view's page (`live`: it connects to /events). */
export function toHtml(report: RunReport, options: { live?: boolean; control?: boolean; proxy?: string } = {}): string {
  const { js, css } = uplotAssets()
  const model = { ...runModel(report, options.live ?? false, options.control ?? false), ...(options.proxy ? { proxy: options.proxy } : {}) }
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${options.proxy ? `forkchaos ui · ${escapeHtml(options.proxy)}` : `forkchaos · seed ${report.seed}`}</title>
<style>${css}
${pageCss}</style>
<script>${js.replace(/<\/script/gi, '<\\/script')}</script>
</head><body>
<header><h1>forkchaos</h1><div id="summary"></div><nav><button data-tab="tests" class="on">Tests</button><button data-tab="timeline">Timeline</button></nav></header>
<main><section id="tab-tests"><table id="states"><thead><tr><th>scenario</th><th>target</th><th>state</th><th>verdict</th><th>time</th></tr></thead><tbody></tbody></table><div id="scenarios"></div></section>
<section id="tab-timeline" hidden><ol id="events"></ol></section></main>
<script type="application/json" id="forkchaos-data">${scriptJson(model)}</script>
<script>${pageScript}</script>
</body></html>
`
}

const pageCss = `
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#1d2733;color:#fff;padding:10px 20px}header h1{margin:0;font-size:20px;display:inline-block;margin-right:16px}
#summary{display:inline-block}nav{margin-top:6px}nav button{background:#33414f;color:#fff;border:0;padding:4px 12px;margin-right:4px;cursor:pointer}nav button.on{background:#5b7fa6}
main{padding:12px 20px}table{border-collapse:collapse;margin:6px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}th{background:#eee}
.v-held{color:#17803d}.v-degraded{color:#b07800}.v-failed,.v-error{color:#c0262d}.v-aborted{color:#8a3ab9}.v-skipped{color:#1f7a8c}
.scenario{background:#fff;border:1px solid #ddd;margin:12px 0;padding:8px 14px}.scenario h2{font-size:17px;margin:4px 0}
.bad td{background:#fde8e8}code{background:#f1f1f1;padding:1px 4px}.muted{color:#777}.chart{margin:8px 0}
#events li{font-family:ui-monospace,monospace;font-size:12px}
`
