#!/usr/bin/env node
// Writes docs/partition-timeline.png: the devnet timeline of the partition-2-2 drill as report.html
// draws it, from a report.json of a real run (default: test/fixtures/report-html/run.json, from
// `npx forkchaos run scenarios/devnet/partition-2-2.yaml … --seed 7`). Needs the build (dist/) and
// Chromium (Debian's /usr/bin/chromium, or FORKCHAOS_CHROMIUM), driven by playwright-core.
//   node scripts/screenshot-timeline.mjs [report.json] [scenario] [out.png]
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const [reportFile = path.join(root, 'test/fixtures/report-html/run.json'), scenario = 'partition-2-2', out = path.join(root, 'docs/partition-timeline.png')] = process.argv.slice(2)
const chromiumPath = process.env.FORKCHAOS_CHROMIUM ?? '/usr/bin/chromium'
if (!fs.existsSync(chromiumPath)) {
  process.stderr.write(`screenshot-timeline: no Chromium at ${chromiumPath} (apt-get install -y chromium, or set FORKCHAOS_CHROMIUM)\n`)
  process.exit(3)
}
const { toHtml } = await import(pathToFileURL(path.join(root, 'dist/src/report/html.js')).href)
const { chromium } = await import('playwright-core')
const report = JSON.parse(fs.readFileSync(reportFile, 'utf8'))
const only = { ...report, scenarios: report.scenarios.filter((s) => s.name === scenario) }
if (only.scenarios.length === 0) {
  process.stderr.write(`screenshot-timeline: no scenario ${scenario} in ${reportFile}\n`)
  process.exit(2)
}
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forkchaos-shot-'))
const page = path.join(dir, 'report.html')
fs.writeFileSync(page, toHtml(only))
const browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: ['--no-sandbox', '--disable-gpu'] })
try {
  const tab = await browser.newPage({ viewport: { width: 1200, height: 900 }, deviceScaleFactor: 1 })
  await tab.goto(pathToFileURL(page).href)
  const box = tab.locator(`#scenario-${scenario}`)
  await box.locator('.timeline canvas').waitFor({ timeout: 15_000 })
  fs.mkdirSync(path.dirname(out), { recursive: true })
  // The heading, the fault table and the chart with its legend.
  const chart = await box.locator('.timeline').boundingBox()
  const head = await box.boundingBox()
  if (!chart || !head) throw new Error('the timeline was not drawn')
  await tab.screenshot({ path: out, clip: { x: head.x, y: head.y, width: head.width, height: chart.y + chart.height - head.y + 8 } })
  process.stdout.write(`${path.relative(root, out)} (${fs.statSync(out).size} bytes) from ${path.relative(root, reportFile)}\n`)
} finally {
  await browser.close()
  fs.rmSync(dir, { recursive: true, force: true })
}
