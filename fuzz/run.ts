/**
 * Runs the fuzz targets with large counts: `npm run fuzz -- [--count N] [--seed S] [name …]`.
 * Each target is a module `fuzz/<name>.ts` that exports one `FuzzTarget` (default or named); with no
 * names, all of them run, one after another (each starts its own servers and stops them).
 * Prints one tally line per target and exits 1 when any target crashed, hung or accepted an
 * invalid input, with the seed that replays the run.
 */
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { FuzzTally, FuzzTarget } from './types.js'

const COUNT_MAX = 1_000_000

function usage(message: string): never {
  process.stderr.write(`fuzz: ${message}\nusage: npm run fuzz -- [--count N (1–${COUNT_MAX}, default 10000)] [--seed S (integer, default: now)] [name …]\n`)
  process.exit(2)
}

function parseArgs(argv: string[]): { count: number; seed: number; names: string[] } {
  let count = 10_000
  let seed = Date.now() % 2 ** 31
  const names: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string
    if (arg === '--count' || arg === '--seed') {
      const value = Number(argv[++i])
      if (!Number.isSafeInteger(value)) usage(`${arg} must be an integer. Got \`${argv[i] ?? ''}\`.`)
      if (arg === '--count') {
        if (value < 1 || value > COUNT_MAX) usage(`--count must be between 1 and ${COUNT_MAX}. Got \`${value}\`.`)
        count = value
      } else seed = value
    } else if (arg.startsWith('-')) usage(`unknown option \`${arg}\`.`)
    else names.push(arg)
  }
  return { count, seed, names }
}

/** The module's `FuzzTarget`: its default export, or else its one exported target. */
function findTarget(module: Record<string, unknown>, name: string): FuzzTarget {
  const isTarget = (v: unknown): v is FuzzTarget => typeof v === 'object' && v !== null && typeof (v as FuzzTarget).run === 'function' && typeof (v as FuzzTarget).name === 'string'
  if (isTarget(module.default)) return module.default
  const found = Object.values(module).filter(isTarget)
  if (found.length !== 1) usage(`fuzz/${name}.ts must export one FuzzTarget (found ${found.length}).`)
  return found[0] as FuzzTarget
}

const here = path.dirname(fileURLToPath(import.meta.url))
const available = fs
  .readdirSync(here)
  .filter((f) => f.endsWith('.ts') && f !== 'types.ts' && f !== 'run.ts')
  .map((f) => f.slice(0, -3))
  .sort()

const { count, seed, names } = parseArgs(process.argv.slice(2))
for (const name of names) if (!available.includes(name)) usage(`no fuzz target \`${name}\`. Expected one of: ${available.join(', ')}.`)

let bad = 0
for (const name of names.length > 0 ? names : available) {
  const target = findTarget(await import(pathToFileURL(path.join(here, `${name}.ts`)).href), name)
  const t0 = performance.now()
  const tally: FuzzTally = await target.run({ count, seed })
  const seconds = ((performance.now() - t0) / 1000).toFixed(1)
  process.stdout.write(`${target.name}: ${tally.inputs} inputs, ${tally.crashes} crashes, ${tally.hangs} hangs, ${tally.acceptedInvalid} accepted-but-invalid (${seconds} s)\n`)
  for (const example of tally.examples) process.stdout.write(`  ${example}\n`)
  bad += tally.crashes + tally.hangs + tally.acceptedInvalid
}
process.stdout.write(`replay: npm run fuzz -- --count ${count} --seed ${seed}${names.length ? ` ${names.join(' ')}` : ''}\n`)
process.exit(bad > 0 ? 1 : 0)
