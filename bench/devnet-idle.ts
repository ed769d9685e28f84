/**
 * An idle devnet's cost: `node bin/forkchaos.js devnet up` (4 validators on Anvil, foreground,
 * its own FORKCHAOS_STATE_DIR), then 20 s of CPU sampled from /proc for the supervisor and every
 * process below it (consensus nodes, their Anvils), as % of one core, per process and in total,
 * with RSS; and up → first commit as the CLI prints it (from the start of its launch, after the
 * CLI's own start-up), and from the spawn of `devnet up` to its `devnet ready.` line (the CLI's
 * start-up included; the line follows the first commit). Ctrl-C (SIGINT) then stops it, and the
 * bench checks that every process it saw is gone. Run under the heavy lock:
 *   npx tsc -p tsconfig.json && flock /tmp/s17/heavy.lock node dist/bench/devnet-idle.js [rounds] [seconds]
 */
import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { packageRoot } from '../src/contracts.js'
import { isAlive } from '../src/process/registry.js'
import { median } from './stats.js'

const ROUNDS = Number(process.argv[2] ?? 1)
const SAMPLE_S = Number(process.argv[3] ?? 20)
/** Clock ticks per second of /proc/<pid>/stat's utime and stime (USER_HZ, 100 on Linux). */
const TICKS_PER_S = 100

type Stat = { pid: number; ppid: number; ticks: number; rssKiB: number; name: string }

function stat(pid: number): Stat | undefined {
  try {
    const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command name (which may hold spaces) in parentheses.
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' ')
    const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean)
    const name = cmdline.some((a) => a.includes('anvil')) ? 'anvil' : (cmdline.find((a) => /devnet\/node|node\/main|forkchaos\.js/.test(a))?.split('/').slice(-2).join('/') ?? cmdline.slice(0, 2).join(' '))
    return { pid, ppid: Number(rest[1]), ticks: Number(rest[11]) + Number(rest[12]), rssKiB: (Number(rest[21]) * 4096) / 1024, name }
  } catch {
    return undefined
  }
}

/** `root` and every process below it, by parent pid. */
function tree(root: number): Stat[] {
  const all = fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map((d) => stat(Number(d))).filter((s): s is Stat => s !== undefined)
  const out: Stat[] = []
  const queue = [root]
  while (queue.length) {
    const pid = queue.shift() as number
    const s = all.find((x) => x.pid === pid)
    if (s) out.push(s)
    for (const child of all.filter((x) => x.ppid === pid)) queue.push(child.pid)
  }
  return out
}

async function round() {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'forkchaos-devnet-idle-'))
  const child = spawn(process.execPath, [path.join(packageRoot, 'bin', 'forkchaos.js'), 'devnet', 'up'], { cwd: packageRoot, env: { ...process.env, FORKCHAOS_STATE_DIR: stateDir }, stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.on('data', (d) => (out += d))
  const seen = new Set<number>()
  try {
    const t0 = performance.now()
    let readyMs = Number.NaN
    child.stdout.on('data', () => {
      if (Number.isNaN(readyMs) && out.includes('devnet ready.')) readyMs = performance.now() - t0
    })
    while (!out.includes('devnet ready.')) {
      if (child.exitCode !== null) throw new Error(`devnet up exited ${child.exitCode}: ${out}`)
      if (performance.now() - t0 > 60_000) throw new Error(`devnet up not ready in 60 s: ${out}`)
      await new Promise((r) => setTimeout(r, 50))
    }
    const firstMs = Number(/first commit (\d+) ms/.exec(out)?.[1] ?? Number.NaN)
    // Settle 2 s past start-up, then sample.
    await new Promise((r) => setTimeout(r, 2_000))
    const before = tree(child.pid as number)
    for (const s of before) seen.add(s.pid)
    const t = performance.now()
    await new Promise((r) => setTimeout(r, SAMPLE_S * 1_000))
    const seconds = (performance.now() - t) / 1_000
    const after = tree(child.pid as number)
    for (const s of after) seen.add(s.pid)
    const rows = after.map((s) => {
      const was = before.find((b) => b.pid === s.pid)
      return { ...s, cpuPct: (((s.ticks - (was?.ticks ?? 0)) / TICKS_PER_S) * 100) / seconds }
    })
    return { firstMs, readyMs, rows }
  } finally {
    child.kill('SIGINT')
    const deadline = Date.now() + 20_000
    while ([...seen].some(isAlive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
    const left = [...seen].filter(isAlive)
    if (left.length) console.log(`  LEFT RUNNING after Ctrl-C: pids ${left.join(', ')}`)
    fs.rmSync(stateDir, { recursive: true, force: true })
  }
}

const results = []
for (let i = 0; i < ROUNDS; i++) results.push(await round())
console.log(`\nidle devnet (4 validators on Anvil), ${SAMPLE_S} s of CPU after start-up, ${ROUNDS} round(s) (load ${os.loadavg()[0]?.toFixed(1)}, ${os.cpus().length} cores)`)
const last = results[results.length - 1]
for (const r of last?.rows ?? []) console.log(`  ${String(r.pid).padStart(7)}  ${r.name.padEnd(34)} ${r.cpuPct.toFixed(1).padStart(5)} % of a core  RSS ${(r.rssKiB / 1024).toFixed(0)} MB`)
const totals = results.map((r) => r.rows.reduce((a, x) => a + x.cpuPct, 0))
console.log(`  total CPU: median ${median(totals).toFixed(1)} % of one core (rounds: ${totals.map((x) => x.toFixed(1)).join(', ')})`)
console.log(`  total RSS: ${((last?.rows.reduce((a, x) => a + x.rssKiB, 0) ?? 0) / 1024).toFixed(0)} MB`)
console.log(`  up → first commit: median ${median(results.map((r) => r.firstMs)).toFixed(0)} ms (rounds: ${results.map((r) => r.firstMs).join(', ')})`)
console.log(`  spawn of devnet up → its ready line: median ${median(results.map((r) => r.readyMs)).toFixed(0)} ms (rounds: ${results.map((r) => r.readyMs.toFixed(0)).join(', ')})`)
