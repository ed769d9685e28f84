// The shipped dashboards against the real Prometheus (Debian's `prometheus`, skipped with the
// reason when absent): `promtool check config` passes on dashboards/prometheus.yml (and fails on
// a broken copy), `promtool check metrics` passes on a running `forkchaos proxy`'s /metrics;
// Prometheus started on 127.0.0.1 with the shipped config (only its target port rewritten)
// scrapes the proxy during an injected fault, and the fault-window series comes back through
// its HTTP API: 1 while the fault is active, 0 after the revert. Every query of the Grafana
// dashboard (dashboards/grafana-forkchaos.json, its variables set to match all) is valid PromQL
// there, and the metric names it reads are the ones the proxy serves. Run under the heavy lock.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as net from 'node:net'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type ProxyServer, startProxyServer } from '../src/cli/commands/proxy.js'
import { type AnvilInstance, startAnvil } from '../src/targets/anvil.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const shipped = path.join(root, 'dashboards', 'prometheus.yml')
const dashboard = JSON.parse(fs.readFileSync(path.join(root, 'dashboards', 'grafana-forkchaos.json'), 'utf8')) as {
  annotations: { list: { name: string; expr?: string }[] }
  panels: { title: string; targets: { expr: string }[] }[]
}
const prometheusBin = process.env.FORKCHAOS_PROMETHEUS ?? '/usr/bin/prometheus'
const promtool = path.join(path.dirname(prometheusBin), 'promtool')
const have = fs.existsSync(prometheusBin) && fs.existsSync(promtool)
const why = `skipped: no Prometheus at ${prometheusBin} (apt-get install -y prometheus, as .ci/run does; or set FORKCHAOS_PROMETHEUS)`
if (!have) console.warn(`forkchaos prometheus test ${why}`)

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port
      s.close(() => resolve(port))
    })
    s.on('error', reject)
  })

describe.skipIf(!have)(`the shipped Prometheus config and Grafana dashboard${have ? '' : ` (${why})`}`, () => {
  let anvil: AnvilInstance
  let proxy: ProxyServer
  let prometheus: ChildProcess | undefined
  let promUrl = ''
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forkchaos-prom-'))

  beforeAll(async () => {
    anvil = await startAnvil({ label: 'prometheus-test' })
    proxy = await startProxyServer({ listen: '127.0.0.1:0', seed: 1, config: { rpc: [{ name: 'anvil', upstream: anvil.url }], tcp: [] } })
    const controlPort = new URL(proxy.server.url).port
    const promPort = await freePort()
    const config = fs.readFileSync(shipped, 'utf8').replace('targets: ["127.0.0.1:8474"]', `targets: ["127.0.0.1:${controlPort}"]`)
    expect(config).toContain(`targets: ["127.0.0.1:${controlPort}"]`)
    fs.writeFileSync(path.join(dir, 'prometheus.yml'), config)
    // Its own process group, stopped by that group in afterAll.
    prometheus = spawn(prometheusBin, [`--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${promPort}`, '--log.level=warn'], { detached: true, stdio: 'ignore' })
    promUrl = `http://127.0.0.1:${promPort}`
    const deadline = Date.now() + 30_000
    while (Date.now() < deadline) {
      const ok = await fetch(`${promUrl}/-/ready`).then((r) => r.ok, () => false)
      if (ok) break
      await new Promise((r) => setTimeout(r, 100))
    }
  }, 60_000)

  afterAll(async () => {
    if (prometheus?.pid && prometheus.exitCode === null) {
      const gone = new Promise((r) => prometheus?.once('exit', r))
      process.kill(-prometheus.pid, 'SIGTERM')
      await Promise.race([gone, new Promise((r) => setTimeout(r, 5_000))])
      if (prometheus.exitCode === null && prometheus.signalCode === null) process.kill(-prometheus.pid, 'SIGKILL')
    }
    await proxy?.close()
    await anvil?.stop()
    fs.rmSync(dir, { recursive: true, force: true })
  })

  const query = async (promql: string) => {
    const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(promql)}`)
    return (await res.json()) as { status: string; error?: string; data: { result: { metric: Record<string, string>; value: [number, string] }[] } }
  }
  const until = async <T>(what: string, read: () => Promise<T | undefined>, ms = 20_000): Promise<T> => {
    const deadline = Date.now() + ms
    for (;;) {
      const v = await read()
      if (v !== undefined) return v
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
      await new Promise((r) => setTimeout(r, 250))
    }
  }
  const call = () => fetch(proxy.rpc.get('anvil')?.url as string, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}' })

  it('promtool: the shipped config is valid, a broken copy is not, and the proxy /metrics pass check metrics', async () => {
    const good = spawnSync(promtool, ['check', 'config', shipped], { encoding: 'utf8' })
    expect(good.status, good.stdout + good.stderr).toBe(0)
    fs.writeFileSync(path.join(dir, 'broken.yml'), fs.readFileSync(shipped, 'utf8').replace('scrape_interval: 1s', 'scrape_interval: soon'))
    const bad = spawnSync(promtool, ['check', 'config', path.join(dir, 'broken.yml')], { encoding: 'utf8' })
    expect(bad.status).not.toBe(0)
    expect(bad.stdout + bad.stderr).toContain('soon')
    await call()
    const text = await (await fetch(`${proxy.server.url}/metrics`)).text()
    expect(text).toContain('forkchaos_rpc_requests_total')
    const lint = spawnSync(promtool, ['check', 'metrics'], { input: text, encoding: 'utf8' })
    expect(lint.status, lint.stdout + lint.stderr).toBe(0)
  })

  it('scrapes the proxy during an injected fault: forkchaos_fault_window is 1 while active, 0 after revert, read back from the HTTP API', async () => {
    await call()
    const injected = await fetch(`${proxy.server.url}/chaos/inject`, { method: 'POST', body: JSON.stringify({ type: 'rpc.latency', target: 'anvil', params: { latencyMs: 50 } }) })
    expect(injected.status).toBe(201)
    const { id } = (await injected.json()) as { id: string }
    await call()
    const active = await until('the fault window at 1', async () => {
      const r = await query(`forkchaos_fault_window{id="${id}"}`)
      return r.data.result.find((x) => x.value[1] === '1')
    })
    expect(active.metric).toMatchObject({ __name__: 'forkchaos_fault_window', id, type: 'rpc.latency', target: 'anvil', job: 'forkchaos', drill: 'local' })
    expect((await query('sum(forkchaos_active_faults{type="rpc.latency"})')).data.result[0]?.value[1]).toBe('1')
    const reverted = await fetch(`${proxy.server.url}/chaos/revert/${id}`, { method: 'POST' })
    expect([200, 202]).toContain(reverted.status)
    const ended = await until('the fault window back at 0', async () => (await query(`forkchaos_fault_window{id="${id}"}`)).data.result.find((x) => x.value[1] === '0'))
    expect(ended.metric.id).toBe(id)
    // The window as a range: a 1 then a 0, in that order, as Grafana's annotation query sees it.
    const range = (await (await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(`forkchaos_fault_window{id="${id}"}[1m]`)}`)).json()) as { data: { result: { values: [number, string][] }[] } }
    const values = range.data.result[0]?.values.map((v) => v[1]) ?? []
    expect(values.indexOf('1')).toBeGreaterThanOrEqual(0)
    expect(values.lastIndexOf('0')).toBeGreaterThan(values.indexOf('1'))
  })

  it("every dashboard query is valid PromQL on this Prometheus, and reads only series the proxy serves; the annotations come from forkchaos_fault_window", async () => {
    const exprs = [...dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr)), ...dashboard.annotations.list.flatMap((a) => (a.expr ? [a.expr] : []))]
    expect(dashboard.annotations.list.find((a) => a.name === 'Fault windows')?.expr).toBe('forkchaos_fault_window == 1')
    const served = new Set((await (await fetch(`${proxy.server.url}/metrics`)).text()).split('\n').flatMap((l) => (/^# TYPE (\S+) (\w+)/.exec(l) ? [/^# TYPE (\S+)/.exec(l)?.[1] as string] : [])))
    for (const expr of exprs) {
      const concrete = expr.replaceAll('$__rate_interval', '1m').replaceAll('$upstream', '.*').replaceAll('$method', '.*')
      const r = await query(concrete)
      expect(r.status, `${expr}: ${r.error}`).toBe('success')
      for (const name of concrete.match(/forkchaos_[a-z_]+/g) ?? []) expect(served.has(name.replace(/_bucket$/, '')), `${name} in "${expr}"`).toBe(true)
    }
    // And the check can fail: a misspelled query is refused by this Prometheus.
    expect((await query('sum by (upstream (rate(forkchaos_rpc_requests_total[1m]))')).status).toBe('error')
  })
})
