// `forkchaos ui` for `forkchaos proxy` live drills. The proxy's control server pushes its chaos
// experiments by server-sent events (`GET /chaos/events`): a snapshot, then each fault applied
// and reverted exactly once per experiment (reverted by request, by its schedule, or behind the
// API's back), each toxic added and removed, with consecutive sequence numbers; at most
// MAX_EVENT_SUBSCRIBERS streams at once, one more a 429. A real `forkchaos proxy` and a real
// `forkchaos ui` as child processes: without --ui-control the page's revert is a 403 (JSON);
// bad flags exit 2, an unreachable --control exits 3, both with one clear line and no stack;
// a proxy that stops and comes back is followed again (the page is told, the snapshot resent).
// In Debian's Chromium (no network), a fault injected through the control API arrives on the
// Tests tab with its state, then its verdict, and its apply/revert on the Timeline while it
// runs; with --ui-control the page's revert button ends an experiment. The inject-to-page
// latency is printed (median of 20; not asserted). Screenshots: test-output/ui/proxy*.png.
// Run under the heavy lock (Chromium).
import { type ChildProcess, spawn } from 'node:child_process'
import * as net from 'node:net'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Browser } from 'playwright-core'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { type ProxyServer, startProxyServer } from '../src/cli/commands/proxy.js'
import { type ChaosEvent, MAX_EVENT_SUBSCRIBERS } from '../src/proxy/chaos-api.js'
import { haveChromium, launch, noChromium, outputDir, watchedPage } from './report-html-browser.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const bin = path.join(root, 'bin', 'forkchaos.js')
const children = new Set<ChildProcess>()
const cleanups: (() => Promise<void>)[] = []

afterEach(async () => {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null && c.pid) {
      const exited = new Promise((r) => c.once('exit', r))
      process.kill(c.pid, 'SIGINT')
      await exited
    }
  }
  children.clear()
  while (cleanups.length) await (cleanups.pop() as () => Promise<void>)()
})

type Cli = { child: ChildProcess; out: { stdout: string; stderr: string; code: number | null; exited: boolean }; done: Promise<{ stdout: string; stderr: string; code: number | null }> }
function cli(args: string[]): Cli {
  const child = spawn(process.execPath, [bin, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
  children.add(child)
  const out = { stdout: '', stderr: '', code: null as number | null, exited: false }
  child.stdout?.on('data', (d) => (out.stdout += d))
  child.stderr?.on('data', (d) => (out.stderr += d))
  const done = new Promise<typeof out>((resolve) =>
    child.on('exit', (code) => {
      out.code = code
      out.exited = true
      resolve(out)
    }),
  )
  return { child, out, done }
}

/** Waits for `pattern` on a child's stdout (30 s at most: the machine is shared). */
async function waitFor(run: Cli, pattern: RegExp): Promise<RegExpExecArray> {
  const deadline = Date.now() + 30_000
  while (Date.now() < deadline && !run.out.exited) {
    const m = pattern.exec(run.out.stdout)
    if (m) return m
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`no ${pattern} in the output:\n${run.out.stdout}\n${run.out.stderr}`)
}

/** A TCP echo server on 127.0.0.1: what the proxies forward to. */
async function echoServer(): Promise<string> {
  const server = net.createServer((s) => s.pipe(s))
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  cleanups.push(() => new Promise((r) => server.close(() => r())))
  return `127.0.0.1:${(server.address() as net.AddressInfo).port}`
}

/** Follows `GET /chaos/events`, collecting every event; `close()` ends the stream. */
async function subscribe(control: string) {
  const controller = new AbortController()
  const res = await fetch(`${control}/chaos/events`, { signal: controller.signal })
  const events: ChaosEvent[] = []
  if (res.status === 200 && res.body) {
    void (async () => {
      const decoder = new TextDecoder()
      let buffer = ''
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true })
        const frames = buffer.split('\n\n')
        buffer = frames.pop() as string
        for (const f of frames) for (const l of f.split('\n')) if (l.startsWith('data: ')) events.push(JSON.parse(l.slice(6)))
      }
    })().catch(() => undefined)
  }
  return { res, events, close: () => controller.abort() }
}

const until = async (what: string, ok: () => boolean, ms = 20_000) => {
  const deadline = Date.now() + ms
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}
const post = (url: string, body?: unknown) => fetch(url, { method: 'POST', ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }) })

describe('the chaos API event stream (GET /chaos/events)', () => {
  let running: ProxyServer
  beforeAll(async () => {
    running = await startProxyServer({ listen: '127.0.0.1:0', seed: 5, config: { rpc: [], tcp: [{ name: 'echo', listen: '127.0.0.1:0', upstream: await echoServer() }] } })
  })
  afterAll(async () => {
    await running?.close()
  })

  it('sends a snapshot, then one apply and one revert per experiment (by request, by schedule, behind the API), each toxic change once, in sequence', async () => {
    const control = running.server.url
    const before = (await (await post(`${control}/chaos/inject`, { type: 'tcp.latency', target: 'echo', params: { latency: 50 } })).json()) as { id: string }
    const sub = await subscribe(control)
    cleanups.push(async () => sub.close())
    expect(sub.res.status).toBe(200)
    expect(sub.res.headers.get('content-type')).toBe('text/event-stream')
    await until('the snapshot', () => sub.events.length >= 1)
    const snapshot = sub.events[0] as Extract<ChaosEvent, { type: 'snapshot' }>
    expect(snapshot.type).toBe('snapshot')
    expect(snapshot.active.map((x) => [x.id, x.verdict])).toEqual([[before.id, 'active']])

    // By request; by its schedule; behind the API's back (the toxic deleted through the toxiproxy API).
    expect((await post(`${control}/chaos/revert/${before.id}`)).status).toBe(200)
    const scheduled = (await (await post(`${control}/chaos/inject`, { type: 'tcp.timeout', target: 'echo', params: { timeout: 0 }, durationMs: 300 })).json()) as { id: string }
    const external = (await (await post(`${control}/chaos/inject`, { type: 'tcp.bandwidth', target: 'echo', params: { rate: 10 } })).json()) as { id: string }
    expect((await fetch(`${control}/proxies/echo/toxics/forkchaos_${external.id}`, { method: 'DELETE' })).status).toBe(204)
    // A toxic of someone else's (the toxiproxy API) is an event too, and not an experiment.
    expect((await post(`${control}/proxies/echo/toxics`, { name: 'mine', type: 'slicer', attributes: { average_size: 10 } })).status).toBe(200)
    expect((await fetch(`${control}/proxies/echo/toxics/mine`, { method: 'DELETE' })).status).toBe(204)
    const ids = [before.id, scheduled.id, external.id]
    const verdictOf = (id: string) => sub.events.filter((e): e is Extract<ChaosEvent, { type: 'experiment' }> => e.type === 'experiment' && e.experiment.id === id).at(-1)?.experiment.verdict
    await until('every verdict', () => ids.every((id) => verdictOf(id) === 'held'))
    // Reverting again answers the recorded result and changes nothing: no second revert.
    expect((await (await post(`${control}/chaos/revert/${before.id}`)).json()).verdict).toBe('held')
    expect((await post(`${control}/chaos/inject`, { type: 'tcp.latency', target: 'echo', params: { latency: 1 } })).status).toBe(201)
    await until('the marker inject', () => sub.events.some((e) => e.type === 'fault' && e.id === 'x4'))

    const faults = sub.events.filter((e): e is Extract<ChaosEvent, { type: 'fault' }> => e.type === 'fault')
    for (const id of ids) expect(faults.filter((f) => f.id === id).map((f) => f.action), id).toEqual(id === before.id ? ['revert'] : ['apply', 'revert'])
    expect(Object.fromEntries(faults.filter((f) => f.action === 'revert').map((f) => [f.id, f.endedBy]))).toEqual({ [before.id]: 'revert', [scheduled.id]: 'schedule', [external.id]: 'external' })
    const toxics = sub.events.filter((e): e is Extract<ChaosEvent, { type: 'toxic' }> => e.type === 'toxic').map((e) => `${e.action} ${e.toxic} ${e.toxicType}`)
    // The scheduled revert lands whenever its 300 ms are up: the set, not the order, is fixed.
    expect(toxics.slice().sort()).toEqual(
      [`removed forkchaos_${before.id} latency`, `added forkchaos_${scheduled.id} timeout`, `removed forkchaos_${scheduled.id} timeout`, `added forkchaos_${external.id} bandwidth`, `removed forkchaos_${external.id} bandwidth`, 'added mine slicer', 'removed mine slicer', 'added forkchaos_x4 latency'].sort(),
    )
    // Each experiment's states in order: active (the injects after the snapshot), recovering, then its verdict.
    for (const id of ids) {
      const states = sub.events.filter((e): e is Extract<ChaosEvent, { type: 'experiment' }> => e.type === 'experiment' && e.experiment.id === id).map((e) => e.experiment.verdict)
      expect(states, id).toEqual(id === before.id ? ['recovering', 'held'] : ['active', 'recovering', 'held'])
    }
    const seqs = sub.events.map((e) => e.seq)
    expect(seqs).toEqual(seqs.map((_, i) => (seqs[0] as number) + i))
  })

  it(`serves at most ${MAX_EVENT_SUBSCRIBERS} streams at once: one more is a 429 (JSON, naming the limit); a closed one frees its place`, async () => {
    const control = running.server.url
    const subs = []
    for (let i = 0; i < MAX_EVENT_SUBSCRIBERS; i++) subs.push(await subscribe(control))
    cleanups.push(async () => subs.forEach((s) => s.close()))
    expect(subs.map((s) => s.res.status)).toEqual(subs.map(() => 200))
    const over = await fetch(`${control}/chaos/events`)
    expect(over.status).toBe(429)
    expect(await over.json()).toEqual({ error: `there are already ${MAX_EVENT_SUBSCRIBERS} event streams open (the limit); close one before opening another`, status: 429 })
    subs.pop()?.close()
    // The server sees the close when the socket goes: a fresh stream is let in again after that.
    let again: Awaited<ReturnType<typeof subscribe>> | undefined
    const deadline = Date.now() + 10_000
    while (Date.now() < deadline) {
      again = await subscribe(control)
      if (again.res.status === 200) break
      await again.res.body?.cancel()
      await new Promise((r) => setTimeout(r, 50))
    }
    cleanups.push(async () => again?.close())
    expect(again?.res.status).toBe(200)
  })
})

describe('forkchaos ui (child processes)', () => {
  it('bad flags exit 2 and an unreachable --control exits 3, each with one clear message and no stack', async () => {
    const free = await new Promise<number>((r) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const port = (s.address() as net.AddressInfo).port
        s.close(() => r(port))
      })
    })
    const cases: [string[], number, string][] = [
      [['--control', '127.0.0.1:8474'], 2, "`--control` must be the proxy control server's http URL, such as http://127.0.0.1:8474 (it starts with http://). Got `127.0.0.1:8474`."],
      [['--control', 'https://127.0.0.1:8474'], 2, "`--control` must be the proxy control server's http URL, such as http://127.0.0.1:8474 (a https: URL). Got `https://127.0.0.1:8474`."],
      [['--control', 'http://127.0.0.1:8474/chaos'], 2, 'no path, query or credentials'],
      [['--ui-port', '70000'], 2, '`--ui-port` must be an integer from 0 to 65535 (0: any free port). Got `70000`.'],
      [['--control', `http://127.0.0.1:${free}`], 3, `Cannot reach the proxy's control server at http://127.0.0.1:${free}: ECONNREFUSED.`],
    ]
    for (const [args, code, message] of cases) {
      const r = await cli(['ui', ...args]).done
      expect(r.code, args.join(' ')).toBe(code)
      expect(r.stderr).toContain(message)
      expect(r.stderr).not.toMatch(/\n\s+at /)
      expect(r.stdout).not.toContain('live view')
    }
  })

  it('without --ui-control the page cannot revert (403, JSON) and the experiment stays active; the page lists it', async () => {
    const upstream = await echoServer()
    const proxy = cli(['proxy', '--listen', '127.0.0.1:0', '--seed', '2', '--config', await configFile(upstream)])
    const control = (await waitFor(proxy, /control (http:\/\/127\.0\.0\.1:\d+)/))[1] as string
    const ui = cli(['ui', '--control', control])
    const url = (await waitFor(ui, /live view: (http:\/\/127\.0\.0\.1:\d+\/)/))[1] as string
    const events = await fetch(`${url}events`)
    const injected = (await (await post(`${control}/chaos/inject`, { type: 'tcp.latency', target: 'echo', params: { latency: 20 } })).json()) as { id: string }
    const refused = await post(`${url}control/revert/${injected.id}`)
    expect(refused.status).toBe(403)
    expect(await refused.json()).toEqual({ error: 'control actions are off: start forkchaos ui with --ui-control to allow them' })
    expect(((await (await fetch(`${control}/chaos/experiments/${injected.id}`)).json()) as { verdict: string }).verdict).toBe('active')
    // What the page was sent: the experiment's row and its fault applied.
    let text = ''
    const reader = (events.body as ReadableStream<Uint8Array>).getReader()
    const decoder = new TextDecoder()
    const applied = `"scenario":"${injected.id}","fault":"tcp.latency @ echo","action":"apply"`
    while (!text.includes(applied)) {
      const chunk = await reader.read()
      if (chunk.done) break
      text += decoder.decode(chunk.value, { stream: true })
    }
    expect(text).toContain(applied)
    expect(text).toContain(`"type":"experiment","id":"${injected.id}","label":"tcp.latency","target":"echo","state":"active"`)
    await reader.cancel()
  })
})

describe('forkchaos ui when the proxy goes away', () => {
  it('tells the page and stderr, connects again when the proxy is back, and the new snapshot brings its rows', async () => {
    const upstream = await echoServer()
    const config = await configFile(upstream)
    const first = cli(['proxy', '--listen', '127.0.0.1:0', '--seed', '3', '--config', config])
    const control = (await waitFor(first, /control (http:\/\/127\.0\.0\.1:\d+)/))[1] as string
    const ui = cli(['ui', '--control', control])
    const url = (await waitFor(ui, /live view: (http:\/\/127\.0\.0\.1:\d+\/)/))[1] as string
    process.kill(first.child.pid as number, 'SIGINT')
    await first.done
    await until('the notice', () => ui.out.stderr.includes(`the control server at ${control} closed the event stream`))
    // Back on the same address, with an experiment already running: it reaches the page through the snapshot.
    const second = cli(['proxy', '--listen', control.replace('http://', ''), '--seed', '3', '--config', config])
    await waitFor(second, /control http/)
    const x = (await (await post(`${control}/chaos/inject`, { type: 'tcp.latency', target: 'echo', params: { latency: 5 } })).json()) as { id: string }
    await until('connected again', () => ui.out.stderr.includes(`connected again to ${control}`))
    const res = await fetch(`${url}events`)
    const reader = (res.body as ReadableStream<Uint8Array>).getReader()
    const decoder = new TextDecoder()
    let text = ''
    const row = `"type":"experiment","id":"${x.id}","label":"tcp.latency","target":"echo","state":"active"`
    while (!text.includes(row)) {
      const chunk = await reader.read()
      if (chunk.done) break
      text += decoder.decode(chunk.value, { stream: true })
    }
    await reader.cancel()
    expect(text).toContain('"type":"notice","text":"the control server at')
    expect(text).toContain(row)
    expect(ui.out.exited).toBe(false)
  })
})

describe.skipIf(!haveChromium)(`forkchaos ui in Chromium${haveChromium ? '' : ` (${noChromium})`}`, () => {
  let browser: Browser
  beforeAll(async () => {
    browser = await launch()
  })
  afterAll(async () => {
    await browser?.close()
  })

  it('an injected fault arrives on the Tests tab (state, then verdict) and its apply/revert on the Timeline while it runs; the revert button ends one', async () => {
    const upstream = await echoServer()
    const proxy = cli(['proxy', '--listen', '127.0.0.1:0', '--seed', '4', '--config', await configFile(upstream)])
    const control = (await waitFor(proxy, /control (http:\/\/127\.0\.0\.1:\d+)/))[1] as string
    const ui = cli(['ui', '--control', control, '--ui-control'])
    const url = (await waitFor(ui, /live view: (http:\/\/127\.0\.0\.1:\d+\/)/))[1] as string
    const w = await watchedPage(browser)
    await w.page.goto(url)
    await w.page.locator('#summary', { hasText: 'no experiments yet' }).waitFor({ timeout: 20_000 })
    // The page's stream is open once the ui server has a client: give it the page's first request's time.
    await until('the page connected', () => w.requests.some((r) => r.endsWith('/events')), 20_000)

    // A fault held for 4 s: seen on the page while it runs.
    const x = (await (await post(`${control}/chaos/inject`, { type: 'tcp.latency', target: 'echo', params: { latency: 100 }, durationMs: 4_000 })).json()) as { id: string }
    const row = (state: string) => w.page.locator(`#states tr[data-id="${x.id}"][data-state="${state}"]`)
    await row('active').waitFor({ timeout: 20_000 })
    expect(await w.page.textContent(`#states tr[data-id="${x.id}"] td:nth-child(2)`)).toBe('echo')
    await w.page.click('nav button[data-tab="timeline"]')
    await w.page.locator('#events li', { hasText: `${x.id} fault applied tcp.latency @ echo` }).waitFor({ timeout: 20_000 })
    await w.page.screenshot({ path: path.join(outputDir, 'ui', 'proxy-active.png'), fullPage: true })
    // Still running: the proxy has not reverted it yet.
    expect(((await (await fetch(`${control}/chaos/experiments/${x.id}`)).json()) as { verdict: string }).verdict).toBe('active')
    await w.page.locator('#events li', { hasText: `${x.id} fault reverted tcp.latency @ echo` }).waitFor({ timeout: 20_000 })
    await w.page.click('nav button[data-tab="tests"]')
    await w.page.locator(`#states tr[data-id="${x.id}"][data-verdict="held"]`).waitFor({ timeout: 20_000 })
    expect(await w.page.getAttribute(`#states tr[data-id="${x.id}"]`, 'data-state')).toBe('ended')

    // --ui-control: the page's revert button ends an active experiment through the chaos API.
    const y = (await (await post(`${control}/chaos/inject`, { type: 'tcp.timeout', target: 'echo', params: { timeout: 0 } })).json()) as { id: string }
    await w.page.locator(`button.revert[data-id="${y.id}"]`).click({ timeout: 20_000 })
    await w.page.locator(`#states tr[data-id="${y.id}"][data-verdict="held"]`).waitFor({ timeout: 20_000 })
    const ended = (await (await fetch(`${control}/chaos/experiments/${y.id}`)).json()) as { verdict: string; endedBy: string }
    expect([ended.verdict, ended.endedBy]).toEqual(['held', 'revert'])

    const timeline = (await w.page.locator('#events li').allTextContents()).map((l) => l.replace(/^\+\d+\.\d s /, ''))
    const mine = timeline.filter((l) => l.startsWith(`${x.id} `) || l.includes(`forkchaos_${x.id} `))
    expect(mine).toEqual([
      `toxic added forkchaos_${x.id} (latency, downstream) on echo`,
      `${x.id} fault applied tcp.latency @ echo`,
      `toxic removed forkchaos_${x.id} (latency, downstream) on echo`,
      `${x.id} fault reverted tcp.latency @ echo`,
      expect.stringMatching(new RegExp(`^${x.id} tcp\\.latency: held \\(MTTR \\d+ ms\\)$`)),
    ])
    await w.page.click('nav button[data-tab="timeline"]')
    await w.page.screenshot({ path: path.join(outputDir, 'ui', 'proxy-timeline.png'), fullPage: true })
    await w.page.click('nav button[data-tab="tests"]')
    await w.page.screenshot({ path: path.join(outputDir, 'ui', 'proxy.png'), fullPage: true })

    await w.page.click('nav button[data-tab="timeline"]')
    // Inject → the page's Timeline line, 20 times (printed for the README, not asserted: the machine is shared).
    const latencies: number[] = []
    for (let i = 0; i < 20; i++) {
      const t0 = Date.now()
      const z = (await (await post(`${control}/chaos/inject`, { type: 'tcp.latency', target: 'echo', params: { latency: 1 } })).json()) as { id: string }
      const li = w.page.locator('#events li', { hasText: `${z.id} fault applied` })
      await li.waitFor({ timeout: 20_000 })
      latencies.push(Number(await li.getAttribute('data-at')) - t0)
      await post(`${control}/chaos/revert/${z.id}`)
    }
    const sorted = [...latencies].sort((a, b) => a - b)
    console.log(`forkchaos ui: inject → page latency over ${sorted.length} injects: median ${sorted[Math.floor(sorted.length / 2)]} ms, min ${sorted[0]} ms, max ${sorted.at(-1)} ms`)
    expect(w.errors).toEqual([])
    expect(w.blocked).toEqual([])
    expect(w.requests.every((r) => r.startsWith(url))).toBe(true)
  }, 120_000)
})

/** A `forkchaos proxy --config` file with one TCP proxy, `echo`, to `upstream`. */
async function configFile(upstream: string): Promise<string> {
  const fs = await import('node:fs')
  const os = await import('node:os')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forkchaos-ui-'))
  cleanups.push(async () => fs.rmSync(dir, { recursive: true, force: true }))
  const file = path.join(dir, 'proxy.yaml')
  fs.writeFileSync(file, `tcp:\n  - { name: echo, listen: "127.0.0.1:0", upstream: "${upstream}" }\n`)
  return file
}
