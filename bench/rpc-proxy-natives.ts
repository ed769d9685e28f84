/**
 * The native anchors the proxy benches measure forkchaos beside (issue 13): nginx (a fixed-answer
 * upstream, and a keep-alive reverse proxy), haproxy (http and tcp mode), and wrk as the load
 * generator. Debian packages, for benches only (`apt-get install -y wrk nginx haproxy`); a bench
 * skips what is not installed and says so. Each runs in the foreground as a process forkchaos's
 * process owner starts and stops (its own group), with its files in one temporary folder.
 */
import { spawn, spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as net from 'node:net'
import * as os from 'node:os'
import * as path from 'node:path'
import { create, type Instance } from '../src/process/Instance.js'

/** The install line the benches print for a missing anchor. */
export const INSTALL = 'apt-get install -y wrk nginx haproxy'

/** Whether a command is on PATH. */
export function installed(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0
}

/** A free port on 127.0.0.1 (closed again at once: a bench's small race, never a test's). */
export async function freePort(): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as net.AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

/** Resolves once something accepts connections on the port (at most `timeoutMs`). */
export async function listening(port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => {
        s.destroy()
        resolve(true)
      })
      s.on('error', () => resolve(false))
    })
    if (ok) return
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

export type Native = { port: number; pid: number; stop(): Promise<void> }

/** A folder for the anchors' configs, pid files and logs; removed by `removeWorkDir`. */
export const workDir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'forkchaos-bench-'))
export const removeWorkDir = (dir: string) => fs.rmSync(dir, { recursive: true, force: true })

async function run(label: string, command: string, args: string[], port: number): Promise<Native> {
  const instance: Instance = create({ kind: 'keeper', label, command, args, graceMs: 2_000 })
  await instance.start()
  try {
    await listening(port)
  } catch (error) {
    const output = instance.output()
    await instance.stop()
    throw new Error(`${label} did not start: ${(error as Error).message}\n${output.slice(-2_000)}`)
  }
  return { port, pid: instance.pid, stop: () => instance.stop() }
}

/** nginx in the foreground with one worker (as one Node process is one core), the `http` block given. */
async function nginx(dir: string, name: string, port: number, http: string): Promise<Native> {
  const conf = path.join(dir, `${name}.conf`)
  const tmp = path.join(dir, `${name}-tmp`)
  fs.mkdirSync(tmp, { recursive: true })
  const user = process.getuid?.() === 0 ? 'user root;\n' : ''
  fs.writeFileSync(
    conf,
    `${user}worker_processes 1;\ndaemon off;\npid ${dir}/${name}.pid;\nerror_log ${dir}/${name}-error.log warn;\nevents { worker_connections 4096; }\nhttp {\n  access_log off;\n  client_body_temp_path ${tmp}/body;\n  proxy_temp_path ${tmp}/proxy;\n  fastcgi_temp_path ${tmp}/fastcgi;\n  uwsgi_temp_path ${tmp}/uwsgi;\n  scgi_temp_path ${tmp}/scgi;\n  keepalive_requests 10000000;\n${http}\n}\n`,
  )
  return run(`bench-nginx-${name}`, 'nginx', ['-p', dir, '-c', conf], port)
}

/** nginx answering every request with one fixed JSON-RPC answer: an upstream that is never the bottleneck. */
export async function nginxFixedAnswer(dir: string, body: string): Promise<Native> {
  const port = await freePort()
  return nginx(dir, 'fixed', port, `  server {\n    listen 127.0.0.1:${port};\n    location / { default_type application/json; return 200 '${body}'; }\n  }`)
}

/** nginx as a keep-alive reverse proxy in front of `upstreamPort`. */
export async function nginxProxy(dir: string, upstreamPort: number): Promise<Native> {
  const port = await freePort()
  return nginx(
    dir,
    `proxy-${upstreamPort}`,
    port,
    `  upstream up { server 127.0.0.1:${upstreamPort}; keepalive 64; }\n  server {\n    listen 127.0.0.1:${port};\n    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; }\n  }`,
  )
}

/** haproxy in the foreground, one thread, in `mode` (http: keep-alive both ways, connections reused). */
export async function haproxy(dir: string, mode: 'http' | 'tcp', upstreamPort: number): Promise<Native> {
  const port = await freePort()
  const cfg = path.join(dir, `haproxy-${mode}-${upstreamPort}.cfg`)
  const http = mode === 'http' ? '  option http-keep-alive\n  http-reuse always\n' : ''
  fs.writeFileSync(
    cfg,
    `global\n  nbthread 1\n  maxconn 8192\ndefaults\n  mode ${mode}\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n${http}frontend f\n  bind 127.0.0.1:${port}\n  default_backend b\nbackend b\n  server s1 127.0.0.1:${upstreamPort}\n`,
  )
  return run(`bench-haproxy-${mode}`, 'haproxy', ['-f', cfg, '-db'], port)
}

/** CPU time (user + system) of a process and its direct children so far, in ms (Linux /proc). */
export function cpuMsOfTree(pid: number): number {
  const ticks = (p: number) => {
    try {
      const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8')
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      return { ppid: Number(f[1]), cpu: Number(f[11]) + Number(f[12]) }
    } catch {
      return undefined
    }
  }
  let total = ticks(pid)?.cpu ?? 0
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const t = ticks(Number(entry))
    if (t && t.ppid === pid) total += t.cpu
  }
  return (total * 1000) / 100 // USER_HZ is 100 on Linux
}

export type WrkResult = { requestsPerSecond: number; p50Ms: number; p99Ms: number; errors: string | undefined }

/**
 * `wrk -t1 -c<connections>` POSTing `body` for `seconds`; one thread, so on 2 cores the load
 * takes one and the hop the other (the setup).
 */
export async function wrk(url: string, body: string, seconds: number, connections: number, dir: string): Promise<WrkResult> {
  const script = path.join(dir, 'post.lua')
  fs.writeFileSync(script, `wrk.method = "POST"\nwrk.body = '${body}'\nwrk.headers["Content-Type"] = "application/json"\n`)
  // Not spawnSync: this process must keep reading its other children's output (Anvil logs every call).
  const child = spawn('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', '-s', script, url], { stdio: ['ignore', 'pipe', 'pipe'] })
  let text = ''
  let stderr = ''
  child.stdout.on('data', (c: Buffer) => {
    text += c.toString()
  })
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString()
  })
  const timer = setTimeout(() => child.kill('SIGKILL'), (seconds + 30) * 1000)
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve))
  clearTimeout(timer)
  if (code !== 0) throw new Error(`wrk failed (${code}): ${stderr || text}`)
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1])
  const quantile = (q: string) => {
    const m = new RegExp(`\\s${q}%\\s+([\\d.]+)(us|ms|s)`).exec(text)
    if (!m) return Number.NaN
    const v = Number(m[1])
    return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v
  }
  const errors = [/Socket errors:.*/.exec(text)?.[0], /Non-2xx or 3xx responses:.*/.exec(text)?.[0]].filter(Boolean).join('; ')
  return { requestsPerSecond: rps, p50Ms: quantile('50'), p99Ms: quantile('99'), errors: errors || undefined }
}
