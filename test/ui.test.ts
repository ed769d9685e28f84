// The live view (`forkchaos run --ui`) and progress lines. A real CLI run (dist/, the embedded
// chain) of two shipped drills serves the page on 127.0.0.1; Debian's Chromium (no network)
// opens it and sees the first scenario's verdict arrive while the second still runs, and the
// Timeline tab's fault events as they happen. The server refuses control actions without
// `--ui-control` (403, JSON), and bad flags exit 2 naming the flag. Progress lines: the
// running phase's elapsed of planned time, faults fired, commits; at most one per period.
// Run under the heavy lock (Chromium).
import { type ChildProcess, spawn } from 'node:child_process'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Browser } from 'playwright-core'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createProgress } from '../src/ui/progress.js'
import { InputError } from '../src/errors.js'
import { parseUiPort, startUi, type UiServer } from '../src/ui/server.js'
import { nodeChanges } from '../src/experiment/targets/devnet.js'
import { haveChromium, launch, noChromium, outputDir, watchedPage } from './report-html-browser.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const bin = path.join(root, 'bin', 'forkchaos.js')
const children = new Set<ChildProcess>()
const servers = new Set<UiServer>()

afterEach(async () => {
  for (const c of children) if (c.exitCode === null && c.pid) process.kill(c.pid, 'SIGINT')
  children.clear()
  for (const s of servers) await s.close()
  servers.clear()
})

function cli(args: string[]) {
  const child = spawn(process.execPath, [bin, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
  children.add(child)
  const out = { stdout: '', stderr: '', code: null as number | null, exited: false }
  child.stdout.on('data', (d) => (out.stdout += d))
  child.stderr.on('data', (d) => (out.stderr += d))
  const done = new Promise<typeof out>((resolve) =>
    child.on('exit', (code) => {
      out.code = code
      out.exited = true
      resolve(out)
    }),
  )
  return { child, out, done }
}

describe('progress lines', () => {
  it('say the phase, elapsed of planned time, faults fired and commits; at most one per period off a TTY', async () => {
    const lines: string[] = []
    const p = createProgress({ tty: false, write: (s) => lines.push(s), everyMs: 200 })
    p.event({ type: 'scenario-start', scenario: 'partition-2-2', target: 'devnet', plannedMs: { baseline: 3000, inject: 6000, recover: 15000 }, steps: { baseline: 0, inject: 0, recover: 0 } })
    p.event({ type: 'commit', scenario: 'partition-2-2', height: 4 })
    p.event({ type: 'phase', scenario: 'partition-2-2', phase: 'inject' })
    p.event({ type: 'fault', scenario: 'partition-2-2', fault: 'net.partition', action: 'apply' })
    p.event({ type: 'commit', scenario: 'partition-2-2', height: 6 })
    await new Promise((r) => setTimeout(r, 1_000))
    p.event({ type: 'scenario-done' })
    const count = lines.length
    await new Promise((r) => setTimeout(r, 450))
    p.stop()
    expect(lines.length).toBe(count) // nothing once no scenario runs
    expect(count).toBeGreaterThanOrEqual(1)
    expect(count).toBeLessThanOrEqual(5) // 1,000 ms / 200 ms
    expect(lines[0]).toMatch(/^ {2}… partition-2-2 · inject \d+\.\d s of 6\.0 s · faults fired 1 · commits 2 \(height 6\)\n$/)
  })
})

describe('the live view server', () => {
  it('refuses control actions without --ui-control (403, JSON) and names unknown pages (404)', async () => {
    const ui = await startUi({ host: '127.0.0.1', port: 0, control: false, seed: 1, replay: 'x' })
    servers.add(ui)
    expect(ui.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/)
    const stop = await fetch(`${ui.url}control/stop`, { method: 'POST' })
    expect(stop.status).toBe(403)
    expect(await stop.json()).toEqual({ error: 'control actions are off: start the run with --ui-control to allow them' })
    const missing = await fetch(`${ui.url}nope`)
    expect(missing.status).toBe(404)
    expect((await missing.json()).error).toBe('no such page: GET /nope')
  })

  it("a validator that stops answering the probe is down, and up when it answers again; the other nodes' heights change nothing", () => {
    const first = nodeChanges([false, false, false, false], [5, null, 5, 4])
    expect(first.events).toEqual([{ node: 1, state: 'down' }])
    const same = nodeChanges(first.down, [6, null, 6, 6])
    expect(same.events).toEqual([])
    const back = nodeChanges(same.down, [7, 3, null, 7])
    expect(back.events).toEqual([
      { node: 1, state: 'up' },
      { node: 2, state: 'down' },
    ])
    expect(back.down).toEqual([false, false, true, false])
    // No sample (the probe has none yet): nobody changes.
    expect(nodeChanges(back.down, []).events).toEqual([])
  })

  it('--ui-port: an integer 0–65535, else the error names the flag and the value (the CLI exits 2 with it)', () => {
    expect(parseUiPort(undefined)).toBe(0)
    expect(parseUiPort('8123')).toBe(8123)
    for (const bad of ['70000', '-1', '80a', ''])
      expect(() => parseUiPort(bad)).toThrowError(new InputError(`\`--ui-port\` must be an integer from 0 to 65535 (0: any free port). Got \`${bad}\`.`))
  })
})

describe.skipIf(!haveChromium)(`the live view in Chromium${haveChromium ? '' : ` (${noChromium})`}`, () => {
  let browser: Browser
  beforeAll(async () => {
    browser = await launch()
  })
  afterAll(async () => {
    await browser?.close()
  })

  it("node down/up events land in the Timeline tab as the server sends them; other events' kinds do not", async () => {
    const ui = await startUi({ host: '127.0.0.1', port: 0, control: false, seed: 1, replay: 'x' })
    servers.add(ui)
    const w = await watchedPage(browser)
    await w.page.goto(ui.url)
    await w.page.click('nav button[data-tab="timeline"]')
    // The page is connected once the server's first event reaches it.
    ui.event({ type: 'phase', scenario: 'kill-one', phase: 'inject' })
    await w.page.locator('#events li', { hasText: 'kill-one phase inject' }).waitFor({ timeout: 10_000 })
    ui.event({ type: 'node', scenario: 'kill-one', node: 2, state: 'down' })
    ui.event({ type: 'progress', scenario: 'kill-one', done: 1, total: 2 })
    ui.event({ type: 'node', scenario: 'kill-one', node: 2, state: 'up' })
    await w.page.locator('#events li', { hasText: 'kill-one validator-2 up' }).waitFor({ timeout: 10_000 })
    const lines = (await w.page.locator('#events li').allTextContents()).map((l) => l.replace(/^\+\d+\.\d s /, ''))
    expect(lines).toEqual(['kill-one phase inject', 'kill-one validator-2 down', 'kill-one validator-2 up'])
    expect(w.errors).toEqual([])
    expect(w.blocked).toEqual([])
  })

  it("a scenario's verdict arrives on the page while the run is going; fault events land in the Timeline tab", async () => {
    const run = cli(['run', 'scenarios/defi/blocked-close-trade.yaml', 'scenarios/rpc/keeper-latency.yaml', '--ui', '--ui-port', '0', '--seed', '3', '--report-dir', path.join(outputDir, 'ui', 'reports')])
    const deadline = Date.now() + 30_000
    let url: string | undefined
    while (!url && Date.now() < deadline && !run.out.exited) {
      url = /live view: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(run.out.stdout)?.[1]
      await new Promise((r) => setTimeout(r, 50))
    }
    expect(url, run.out.stdout + run.out.stderr).toBeDefined()
    const w = await watchedPage(browser)
    await w.page.goto(url as string)
    const row = w.page.locator('#states tr[data-scenario="blocked-close-trade"][data-verdict="held"]')
    await row.waitFor({ timeout: 40_000 })
    // The verdict is on the page and the run is still going: the page says so and the CLI has not exited.
    expect(await w.page.getAttribute('body', 'data-state')).toBe('running')
    expect(run.out.exited).toBe(false)
    await w.page.click('nav button[data-tab="timeline"]')
    await w.page.locator('#events li', { hasText: 'fault applied rpc.latency' }).waitFor({ timeout: 40_000 })
    await w.page.screenshot({ path: path.join(outputDir, 'ui', 'live.png'), fullPage: true })
    await w.page.locator('body[data-state="done"]').waitFor({ timeout: 60_000 })
    expect(await w.page.getAttribute('#states tr[data-scenario="keeper-under-latency"]', 'data-verdict')).toBe('held')
    const result = await run.done
    expect(result.code, result.stdout + result.stderr).toBe(0)
    expect(w.errors).toEqual([])
    expect(w.blocked).toEqual([])
    expect(w.requests.every((r) => r.startsWith(url as string))).toBe(true)
  }, 120_000)
})
