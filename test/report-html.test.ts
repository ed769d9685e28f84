// report.html: the page model is bounded (20 validators × 10,000 samples, 10,000 steps stay a
// small file), and in Debian's Chromium (headless, no network) the report of a real devnet drill
// (partition-2-2) and of a real DeFi drill (blocked-close-trade) loads from file:// with no
// console error and no network request, and plots one series per validator and one band per
// fault window at the fault's times. The fixture test/fixtures/report-html/run.json is the
// report.json of a real run (`npx forkchaos run scenarios/devnet/partition-2-2.yaml
// scenarios/defi/blocked-close-trade.yaml scenarios/defi/stress.yaml --seed 7`, stress left out).
// test/fixtures/report-html/stress.json is the report.json of a real stress drill (`npx forkchaos
// run scenarios/defi/stress.yaml --seed 7`: 250 cycles, held).
// test/fixtures/report-html/flood.json is the report.json of a real mempool-flood drill (`npx
// forkchaos run scenarios/devnet/mempool-flood.yaml --seed 7`), which carries the inclusion series.
// Screenshots go to test-output/report-html/. Run under the heavy lock (Chromium).
import * as fs from 'node:fs'
import * as path from 'node:path'
import { pathToFileURL } from 'node:url'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MAX_POINTS, MAX_STEP_ROWS, runModel, toHtml } from '../src/report/html.js'
import type { RunReport } from '../src/report/types.js'
import { writeReports } from '../src/report/write.js'
import { haveChromium, launch, noChromium, outputDir, watchedPage } from './report-html-browser.js'

const fixture = JSON.parse(fs.readFileSync(new URL('./fixtures/report-html/run.json', import.meta.url), 'utf8')) as RunReport
const stressFixture = JSON.parse(fs.readFileSync(new URL('./fixtures/report-html/stress.json', import.meta.url), 'utf8')) as RunReport
const floodFixture = JSON.parse(fs.readFileSync(new URL('./fixtures/report-html/flood.json', import.meta.url), 'utf8')) as RunReport
const floodInclusion = (floodFixture.scenarios[0] as unknown as { devnet: { inclusion: { t: number; ms: number }[]; inclusionMs: { n: number } } }).devnet
const out = path.join(outputDir, 'report-html')
type StressStep = { label: string; ok: boolean; walk?: { pairBps: number; feedBps: number }; sharePrice?: string; bounty?: string }
const stressSteps = (stressFixture.scenarios[0] as unknown as { timeline: { steps: StressStep[] } }).timeline.steps
const walked = stressSteps.filter((s) => s.walk)

/** A synthetic report of the sizes the page must stay readable at: 20 validators, 10,000 samples and 10,000 steps. */
function bigReport(): RunReport {
  const [devnet, fork] = fixture.scenarios as [RunReport['scenarios'][number], RunReport['scenarios'][number]]
  const heights = Array.from({ length: 10_000 }, (_, i) => ({ t: i * 100, heights: Array.from({ length: 20 }, (_, v) => Math.floor(i / 10) - (v % 3)) }))
  const steps = Array.from({ length: 10_000 }, (_, i) => ({ i, phase: 'inject', t: i * 10, type: 'cycle', label: `stress#${i}`, ok: i % 97 !== 0, ...(i % 97 === 0 ? { reason: 'vault: slippage' } : {}) }))
  return {
    ...fixture,
    scenarios: [
      { ...devnet, devnet: { ...(devnet as unknown as { devnet: object }).devnet, heights } } as never,
      { ...fork, timeline: { steps, views: {} } } as never,
    ],
  }
}

describe('report.html model', () => {
  it('downsamples 20 validators × 10,000 samples and 10,000 steps to a bounded page, keeping every failed step', () => {
    const report = bigReport()
    const model = runModel(report)
    const d = model.scenarios[0]?.devnet
    expect(d?.validators).toBe(20)
    expect(d?.samples).toBe(10_000)
    expect(d?.t.length).toBe(MAX_POINTS)
    expect(d?.heights.every((h) => h.length === MAX_POINTS)).toBe(true)
    // The last bucket ends on the last sample: the plot reaches the end of the run.
    expect(d?.t.at(-1)).toBe(999.9)
    const steps = model.scenarios[1]?.steps
    expect(steps?.total).toBe(10_000)
    expect(steps?.rows.length).toBe(MAX_STEP_ROWS)
    expect(steps?.rows.filter((r) => !r.ok).length).toBe(Math.ceil(10_000 / 97))
    const bytes = Buffer.byteLength(toHtml(report))
    expect(bytes).toBeLessThan(400_000)
  })

  it('a stress drill: one point per stress cycle, its walks, the share price in bps from after the first cycle, the bounty; none for other drills', () => {
    const m = runModel(stressFixture).scenarios[0]?.stress
    expect(walked).toHaveLength(250)
    expect(m?.cycles).toBe(250)
    expect(m?.cycle).toEqual(Array.from({ length: 250 }, (_, i) => i + 1))
    expect(m?.pairBps).toEqual(walked.map((s) => s.walk?.pairBps))
    expect(m?.feedBps).toEqual(walked.map((s) => s.walk?.feedBps))
    // The walks move (the scenario's stepBps 15, maxBps 60) and stay within ±60 bps.
    expect(new Set(m?.pairBps).size).toBeGreaterThan(50)
    expect(Math.max(...(m?.pairBps ?? []).map(Math.abs), ...(m?.feedBps ?? []).map(Math.abs))).toBeLessThanOrEqual(60)
    // Share price: the baseline cycle's after is the reference; the last cycle's, counted by hand.
    const ref = BigInt(stressSteps[0]?.sharePrice ?? '0')
    expect(m?.sharePriceRef).toBe(String(ref))
    const last = BigInt(walked.at(-1)?.sharePrice ?? '0')
    expect(m?.sharePriceBps.at(-1)).toBeCloseTo((Number(last - ref) / Number(ref)) * 10_000, 2)
    expect(m?.sharePriceBps.at(-1)).toBeLessThan(0)
    expect(m?.bounty[0]).toBeCloseTo(Number(walked[0]?.bounty) / 1e18, 6)
    // A reverted cycle paid no bounty: plotted as a gap, not as 0.
    const broken = structuredClone(stressFixture)
    const rows = (broken.scenarios[0] as unknown as { timeline: { steps: StressStep[] } }).timeline.steps
    Object.assign(rows[5] as StressStep, { ok: false, reason: 'vault: slippage' })
    delete (rows[5] as StressStep).bounty
    expect(runModel(broken).scenarios[0]?.stress?.bounty[4]).toBeNull()
    // A drill without walks has no stress chart.
    expect(runModel(fixture).scenarios.map((s) => s.stress)).toEqual([null, null])
    // Bucketed to MAX_POINTS, ending on the last cycle.
    const big = structuredClone(stressFixture)
    const many = (big.scenarios[0] as unknown as { timeline: { steps: StressStep[] } }).timeline
    many.steps = Array.from({ length: 10_000 }, (_, i) => ({ ...(walked[i % 250] as StressStep), label: `stress#${i + 1}` }))
    const bm = runModel(big).scenarios[0]?.stress
    expect(bm?.cycles).toBe(10_000)
    expect(bm?.cycle.length).toBe(MAX_POINTS)
    expect(bm?.cycle.at(-1)).toBe(10_000)
  })

  it('a devnet drill with honest transfers: the inclusion series, in seconds, bucketed; empty when the report has none', () => {
    const inc = runModel(floodFixture).scenarios[0]?.devnet?.inclusion
    expect(floodInclusion.inclusion.length).toBe(floodInclusion.inclusionMs.n)
    expect(inc?.ms).toEqual(floodInclusion.inclusion.map((p) => p.ms))
    expect(inc?.t).toEqual(floodInclusion.inclusion.map((p) => p.t / 1000))
    // Sent during the inject phase: inside the flood's fault window.
    const w = (floodFixture.scenarios[0] as unknown as { devnet: { faultWindows: { tStart: number; tStop: number }[] } }).devnet.faultWindows[0]
    expect(floodInclusion.inclusion.every((p) => p.t >= (w?.tStart ?? 0) && p.t <= (w?.tStop ?? 0))).toBe(true)
    expect(runModel(fixture).scenarios[0]?.devnet?.inclusion).toEqual({ t: [], ms: [] })
    const big = structuredClone(floodFixture)
    ;(big.scenarios[0] as unknown as { devnet: { inclusion: { t: number; ms: number }[] } }).devnet.inclusion = Array.from({ length: 5_000 }, (_, i) => ({ t: i * 10, ms: i }))
    const bi = runModel(big).scenarios[0]?.devnet?.inclusion
    expect(bi?.t.length).toBe(MAX_POINTS)
    expect(bi?.ms.at(-1)).toBe(4_999)
  })

  it('writeReports writes report.html beside report.json, self-contained (uPlot inlined, no external script or style)', () => {
    const dir = path.join(out, 'written')
    const files = writeReports(fixture, dir)
    expect(files.map((f) => path.basename(f))).toEqual(['report.json', 'junit.xml', 'summary.md', 'report.html'])
    const html = fs.readFileSync(path.join(dir, 'report.html'), 'utf8')
    expect(html).toContain('uPlot')
    expect(html).not.toMatch(/<(script|link|img)[^>]+(src|href)=/i)
    // The model is the page's data, read back as it was written.
    const data = /<script type="application\/json" id="forkchaos-data">(.*?)<\/script>/s.exec(html)?.[1]
    expect(JSON.parse(data ?? 'null').scenarios.map((s: { name: string }) => s.name)).toEqual(['partition-2-2', 'blocked-close-trade'])
  })
})

describe.skipIf(!haveChromium)(`report.html in Chromium${haveChromium ? '' : ` (${noChromium})`}`, () => {
  let browser: Browser
  beforeAll(async () => {
    browser = await launch()
  })
  afterAll(async () => {
    await browser?.close()
  })

  it('the devnet drill: loads from file:// without errors or network; one series per validator, one band per fault window at its times', async () => {
    const dir = path.join(out, 'devnet')
    writeReports({ ...fixture, scenarios: fixture.scenarios.filter((s) => s.target === 'devnet') }, dir)
    const w = await watchedPage(browser)
    const url = pathToFileURL(path.join(dir, 'report.html')).href
    await w.page.goto(url)
    await w.page.waitForFunction(() => (window as unknown as { forkchaos?: { plots: unknown[] } }).forkchaos?.plots.length === 1, null, { timeout: 10_000 })
    const plot = JSON.parse((await w.page.getAttribute('.timeline[data-scenario="partition-2-2"]', 'data-plot')) ?? 'null')
    const scenario = fixture.scenarios[0] as unknown as { devnet: { heights: { heights: unknown[] }[]; faultWindows: { type: string; tStart: number; tStop: number }[]; commits: unknown[] } }
    expect(plot.series).toEqual(['validator-0', 'validator-1', 'validator-2', 'validator-3'])
    expect(plot.points).toBe(scenario.devnet.heights.length)
    expect(plot.bands).toEqual(scenario.devnet.faultWindows.map((f) => ({ label: f.type, from: f.tStart / 1000, to: f.tStop / 1000 })))
    expect(plot.commits).toBe(scenario.devnet.commits.length)
    // The chart is drawn: uPlot's canvas and its legend, one entry per validator.
    expect(await w.page.locator('.timeline canvas').count()).toBe(1)
    expect(await w.page.locator('.timeline .u-legend .u-series').count()).toBe(5)
    expect(await w.page.textContent('#states tr[data-scenario="partition-2-2"]')).toContain('held')
    expect(await w.page.textContent('#scenario-partition-2-2')).toContain('npx forkchaos run')
    await w.page.screenshot({ path: path.join(out, 'devnet.png'), fullPage: true })
    expect(w.errors).toEqual([])
    expect(w.blocked).toEqual([])
    expect(w.requests).toEqual([url])
  })

  it('the DeFi drill: step timeline with the reverted cycle and its reason, views per phase, checks failed first', async () => {
    const dir = path.join(out, 'defi')
    // One check marked broken, to see it sorted first in its phase's table.
    const defi = structuredClone(fixture.scenarios.filter((s) => s.target === 'fork'))
    const inject = defi[0]?.checks.filter((c) => c.phase === 'inject') ?? []
    const last = inject.at(-1)
    if (last) Object.assign(last, { ok: false, observed: 'planted for the test' })
    writeReports({ ...fixture, scenarios: defi }, dir)
    const w = await watchedPage(browser)
    const url = pathToFileURL(path.join(dir, 'report.html')).href
    await w.page.goto(url)
    const box = w.page.locator('#scenario-blocked-close-trade')
    await box.waitFor({ timeout: 10_000 })
    const stepRows = await box.locator('h3:text("Steps") + .strip + table tbody tr').allTextContents()
    expect(stepRows).toHaveLength(3)
    expect(stepRows[1]).toContain('reverted')
    expect(stepRows[1]).toContain('perp: market closed')
    const viewHead = await box.locator('h3:text("Protocol views") + table thead th').allTextContents()
    expect(viewHead).toEqual(['view', 'before baseline', 'before inject', 'after inject', 'after recover'])
    const injectChecks = await box.locator('h3:text("Checks · inject") + table tbody tr').allTextContents()
    expect(injectChecks[0]).toContain('BROKE')
    expect(injectChecks[0]).toContain(last?.name ?? '?')
    await w.page.screenshot({ path: path.join(out, 'defi.png'), fullPage: true })
    expect(w.errors).toEqual([])
    expect(w.blocked).toEqual([])
    expect(w.requests).toEqual([url])
  })

  it('the stress drill: the chart plots the walked price and feed against share price and bounty, read back from the page', async () => {
    const dir = path.join(out, 'stress')
    writeReports(stressFixture, dir)
    expect(fs.statSync(path.join(dir, 'report.html')).size).toBeLessThan(300_000)
    const w = await watchedPage(browser)
    const url = pathToFileURL(path.join(dir, 'report.html')).href
    await w.page.goto(url)
    await w.page.waitForFunction(() => (window as unknown as { forkchaos?: { plots: unknown[] } }).forkchaos?.plots.length === 1, null, { timeout: 10_000 })
    const plot = JSON.parse((await w.page.getAttribute('.stress[data-scenario="repeated-cycle-stress"]', 'data-plot')) ?? 'null')
    expect(plot.series).toEqual(['pair price', 'feed', 'share price', 'bounty'])
    expect(plot.points).toBe(250)
    const [cycle, pair, feed, share, bounty] = plot.data as number[][]
    expect(cycle?.[0]).toBe(1)
    expect(cycle?.at(-1)).toBe(250)
    expect(pair).toEqual(walked.map((s) => s.walk?.pairBps))
    expect(feed).toEqual(walked.map((s) => s.walk?.feedBps))
    const ref = Number(stressSteps[0]?.sharePrice)
    expect(share?.[100]).toBeCloseTo(((Number(walked[100]?.sharePrice) - ref) / ref) * 10_000, 1)
    expect(bounty?.[249]).toBeCloseTo(Number(walked[249]?.bounty) / 1e18, 6)
    expect(await w.page.locator('.stress canvas').count()).toBe(1)
    expect(await w.page.locator('.stress .u-legend .u-series').count()).toBe(5)
    expect(await w.page.textContent('#scenario-repeated-cycle-stress h3:has-text("Stress")')).toContain('250 cycles')
    await w.page.screenshot({ path: path.join(out, 'stress.png'), fullPage: true })
    expect(w.errors).toEqual([])
    expect(w.blocked).toEqual([])
    expect(w.requests).toEqual([url])
  })

  it('the mempool-flood drill: the inclusion latency series under the timeline, read back from the page', async () => {
    const dir = path.join(out, 'flood')
    writeReports(floodFixture, dir)
    const w = await watchedPage(browser)
    const url = pathToFileURL(path.join(dir, 'report.html')).href
    await w.page.goto(url)
    await w.page.waitForFunction(() => (window as unknown as { forkchaos?: { plots: unknown[] } }).forkchaos?.plots.length === 2, null, { timeout: 10_000 })
    const plot = JSON.parse((await w.page.getAttribute('.inclusion[data-scenario="mempool-flood"]', 'data-plot')) ?? 'null')
    expect(plot.series).toEqual(['inclusion ms'])
    expect(plot.points).toBe(floodInclusion.inclusion.length)
    expect(plot.data).toEqual([floodInclusion.inclusion.map((p) => p.t / 1000), floodInclusion.inclusion.map((p) => p.ms)])
    expect(await w.page.locator('.inclusion canvas').count()).toBe(1)
    await w.page.screenshot({ path: path.join(out, 'flood.png'), fullPage: true })
    expect(w.errors).toEqual([])
    expect(w.blocked).toEqual([])
    expect(w.requests).toEqual([url])
  })

  it('the watch itself fails when it should: an outside request is aborted and counted, a script error is caught', async () => {
    const w = await watchedPage(browser)
    const file = path.join(out, 'leaky.html')
    fs.mkdirSync(out, { recursive: true })
    fs.writeFileSync(file, '<!doctype html><img src="http://192.0.2.1/x.png"><script>nope()</script>')
    await w.page.goto(pathToFileURL(file).href)
    await w.page.waitForTimeout(200)
    expect(w.blocked).toEqual(['http://192.0.2.1/x.png'])
    expect(w.errors.join('\n')).toContain('nope is not defined')
  })
})
