// Debian's Chromium driven by playwright-core, for the report.html and live-view tests. Every
// request that is not file:// or 127.0.0.1 is aborted and counted; console errors and page
// errors are collected. Without /usr/bin/chromium (or FORKCHAOS_CHROMIUM) the tests skip and say why.
import * as fs from 'node:fs'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import { type Browser, chromium, type Page } from 'playwright-core'

export const chromiumPath = process.env.FORKCHAOS_CHROMIUM ?? '/usr/bin/chromium'
export const haveChromium = fs.existsSync(chromiumPath)
export const noChromium = `skipped: no Chromium at ${chromiumPath} (apt-get install -y chromium, as .ci/run does; or set FORKCHAOS_CHROMIUM)`
if (!haveChromium) console.warn(`forkchaos browser tests ${noChromium}`)

/** Where screenshots and written pages go, to look at after the run (gitignored). */
export const outputDir = path.join(fileURLToPath(new URL('..', import.meta.url)), 'test-output')

export const launch = (): Promise<Browser> => chromium.launch({ executablePath: chromiumPath, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'], timeout: 30_000 })

export type Watched = { page: Page; errors: string[]; blocked: string[]; requests: string[] }

/** A new page whose network is loopback and file:// only; what else it asks for is aborted and counted. */
export async function watchedPage(browser: Browser): Promise<Watched> {
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } })
  const page = await context.newPage()
  const out: Watched = { page, errors: [], blocked: [], requests: [] }
  page.on('console', (m) => {
    if (m.type() === 'error') out.errors.push(m.text())
  })
  page.on('pageerror', (e) => out.errors.push(`pageerror: ${e.message}`))
  page.on('request', (r) => out.requests.push(r.url()))
  await context.route('**/*', (route) => {
    const url = route.request().url()
    if (url.startsWith('file://') || /^https?:\/\/127\.0\.0\.1[:/]/.test(url)) return route.continue()
    out.blocked.push(url)
    return route.abort()
  })
  return out
}
