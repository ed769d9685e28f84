/**
 * CLI start-up, side by side in one run: `node -e 0`, `forkchaos --version` and `forkchaos
 * validate scenarios/defi` (`node bin/forkchaos.js`, as installed), 5 rounds each, interleaved;
 * wall time and CPU time (user + sys, from /usr/bin/time when present: a busy machine stretches
 * wall time but much less CPU time), the module files each opens, and the scenario validator
 * from the build (ajv standalone code) against compiling the schema at run time, in process.
 *   npx tsc -p tsconfig.json && node scripts/compile-schema.mjs && node dist/bench/startup.js
 * `--before <dir>`: the same two commands from another checkout, built (`dist/` there), e.g. the
 * main branch, interleaved in the same rounds so that both sides see the same load.
 */
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { packageRoot } from '../src/contracts.js'
import { median } from './stats.js'

const ROUNDS = 5
const bin = path.join(packageRoot, 'bin', 'forkchaos.js')
const beforeAt = process.argv.indexOf('--before')
const beforeDir = beforeAt >= 0 ? process.argv[beforeAt + 1] : undefined
if (beforeAt >= 0 && (!beforeDir || !fs.existsSync(path.join(beforeDir, 'bin', 'forkchaos.js')) || !fs.existsSync(path.join(beforeDir, 'dist')))) {
  console.error(`--before needs a checkout with bin/forkchaos.js and a built dist/; got ${JSON.stringify(beforeDir ?? '')}`)
  process.exit(2)
}
const beforeBin = beforeDir ? path.resolve(beforeDir, 'bin', 'forkchaos.js') : undefined
const commands: [string, string[]][] = [
  ['node -e 0', ['-e', '0']],
  ['forkchaos --version', [bin, '--version']],
  ['forkchaos validate scenarios/defi', [bin, 'validate', 'scenarios/defi']],
  ...(beforeBin
    ? ([
        ['before: forkchaos --version', [beforeBin, '--version']],
        ['before: forkchaos validate scenarios/defi', [beforeBin, 'validate', 'scenarios/defi']],
      ] as [string, string[]][])
    : []),
]
const time = fs.existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined

/** One run: wall ms, and CPU ms (user + sys) when /usr/bin/time is there. */
function once(args: string[]): { wallMs: number; cpuMs?: number } {
  const t = performance.now()
  const run = time
    ? spawnSync(time, ['-f', 'cpu %U %S', process.execPath, ...args], { cwd: packageRoot, encoding: 'utf8' })
    : spawnSync(process.execPath, args, { cwd: packageRoot, encoding: 'utf8' })
  const wallMs = performance.now() - t
  if (run.status !== 0) throw new Error(`node ${args.join(' ')} exited ${run.status}: ${run.stderr}`)
  const cpu = /cpu (\d+\.\d+) (\d+\.\d+)/.exec(run.stderr)
  return cpu ? { wallMs, cpuMs: (Number(cpu[1]) + Number(cpu[2])) * 1_000 } : { wallMs }
}

/** The ES module files one run opens (a load hook that appends each URL to a file). */
function modules(args: string[]): number {
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'forkchaos-startup-')), 'modules.txt')
  const hook = `data:text/javascript,${encodeURIComponent(`import fs from 'node:fs'; export async function load(url, context, next) { fs.appendFileSync(${JSON.stringify(out)}, url + '\\n'); return next(url, context) }`)}`
  const register = `data:text/javascript,${encodeURIComponent(`import { register } from 'node:module'; register(${JSON.stringify(hook)})`)}`
  spawnSync(process.execPath, ['--import', register, ...args], { cwd: packageRoot })
  const n = fs.existsSync(out) ? fs.readFileSync(out, 'utf8').split('\n').filter(Boolean).length : 0
  fs.rmSync(path.dirname(out), { recursive: true, force: true })
  return n
}

const runs = new Map(commands.map(([name]) => [name, [] as { wallMs: number; cpuMs?: number }[]]))
for (let round = 0; round < ROUNDS; round++) for (const [name, args] of commands) runs.get(name)?.push(once(args))

console.log(`\nCLI start-up, median of ${ROUNDS} (load ${os.loadavg()[0]?.toFixed(1)}, ${os.cpus().length} cores)`)
const base = median(runs.get('node -e 0')?.map((r) => r.wallMs) ?? [])
for (const [name, args] of commands) {
  const rs = runs.get(name) ?? []
  const wall = median(rs.map((r) => r.wallMs))
  const cpu = rs.every((r) => r.cpuMs !== undefined) ? `  cpu ${median(rs.map((r) => r.cpuMs as number)).toFixed(0).padStart(5)} ms` : ''
  console.log(`  ${name.padEnd(44)} wall ${wall.toFixed(0).padStart(5)} ms (+${(wall - base).toFixed(0)} over node -e 0)${cpu}  modules ${modules(args)}`)
}

// The validator: the generated module against compiling the schema, each in a fresh process.
const validatorRun = (file: string) => {
  const code = `const t = performance.now(); const m = await import(${JSON.stringify(path.join(packageRoot, 'dist', 'src', 'scenario', 'validate-schema.js'))}); const t1 = performance.now(); const v = m.loadValidator(${JSON.stringify(file)}); console.log(JSON.stringify({ origin: v.origin, ms: performance.now() - t1 }))`
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', code], { cwd: packageRoot, encoding: 'utf8' })
  return JSON.parse(run.stdout) as { origin: string; ms: number }
}
const { generatedValidatorFile } = await import('../src/scenario/validate-schema.js')
const rows = { build: [] as number[], compiled: [] as number[] }
for (let round = 0; round < ROUNDS; round++)
  for (const file of [generatedValidatorFile, path.join(os.tmpdir(), 'no-such-validator.cjs')]) {
    const r = validatorRun(file)
    rows[r.origin as keyof typeof rows]?.push(r.ms)
  }
console.log('\nscenario validator, median of 5 (fresh process each)')
console.log(`  from the build (ajv standalone)     ${rows.build.length ? `${median(rows.build).toFixed(0)} ms` : 'missing: run node scripts/compile-schema.mjs'}`)
console.log(`  compiled at run time               ${median(rows.compiled).toFixed(0)} ms`)
