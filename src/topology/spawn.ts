import * as fs from 'node:fs'
import * as path from 'node:path'
import { InputError } from '../errors.js'
import { devnetSizes } from '../targets/devnet-size.js'
import { type Placeholder, type Topology, topologyDir, type ValidatorSpec, validatorCount } from './topology.js'

/** An execution client as a topology names it (`execution.client`; absent: `other`). */
export type ClientKind = 'anvil' | 'ethereumjs' | 'reth' | 'other'

/**
 * A topology checked for `startDevnet`: its size, each validator's spec and client, and which
 * placeholders each part uses (forkchaos picks a port only for a placeholder that is used).
 */
export type DevnetPlan = {
  topology: Topology
  n: number
  spec(id: number): ValidatorSpec
  /** Where a field of validator `id` is written: `validators.template` or `validators[2]`. */
  at(id: number): string
  client(id: number): ClientKind
  uses(id: number, part: 'consensus' | 'execution', placeholder: Placeholder): boolean
}

/**
 * The placeholders whose values do not depend on the run: known when the file is loaded.
 * `anvil` / `ethereumjs` are looked up when used (absent: a program written with them is not
 * checked here; startDevnet looks it up, and a missing client is exit 3 with its install command).
 */
export type StaticValues = { node: string; forkchaos: string; anvil?: () => string; ethereumjs?: () => string }

/** The static values a loader knows without importing the clients' modules. */
export const loadTimeStatics = (forkchaos: string): StaticValues => ({ node: process.execPath, forkchaos })

const placeholderRe = /\{([A-Za-z][A-Za-z0-9]*)\}/g

/**
 * Checks a topology before anything starts (every problem an `InputError`, exit 2, naming the
 * file and the field): its validator count is a devnet size (4, 7, 10; `validators`, when
 * given, sets a template's count), every validator is commands (`consensus` and `execution`, not
 * compose services), an execution command uses `{enginePort}` (an Engine API client also
 * `{rpcPort}`, where the consensus node reads eth_*) and neither `{engineUrl}` nor `{peers}`
 * (those are the consensus side's), and every command's program exists.
 */
export function planDevnet(t: Topology, statics: StaticValues, validators?: number): DevnetPlan {
  const fail = (field: string, message: string) => new InputError(`${t.file}: \`${field}\` ${message}`, { context: { File: t.file, Field: field } })
  const listed = Array.isArray(t.validators) ? t.validators : undefined
  if (listed && validators !== undefined && validators !== listed.length)
    throw fail('validators', `lists ${listed.length} validators; ${validators} were asked for (a list topology has the size it lists; a \`count\` + \`template\` one takes any devnet size).`)
  const n = listed ? listed.length : (validators ?? validatorCount(t))
  if (!(devnetSizes as readonly number[]).includes(n))
    throw fail(listed ? 'validators' : 'validators.count', `must be 3f+1 validators for f = 1–3: ${devnetSizes.join(', ')}. Got \`${n}\`.`)
  const topology: Topology = listed ? t : { ...t, validators: { count: n, template: (t.validators as { template: ValidatorSpec }).template } }
  const spec = (id: number) => (listed ? (listed[id] as ValidatorSpec) : (t.validators as { template: ValidatorSpec }).template)
  const at = (id: number) => (listed ? `validators[${id}]` : 'validators.template')
  const client = (id: number): ClientKind => spec(id).execution?.client ?? 'other'
  const used = (p: { command: string[]; env?: Record<string, string> } | undefined) => new Set([...(p?.command ?? []), ...Object.values(p?.env ?? {})].flatMap((s) => [...s.matchAll(placeholderRe)].map((m) => m[1] as string)))
  const uses = (id: number, part: 'consensus' | 'execution', ph: Placeholder) => used(spec(id)[part]).has(ph)
  for (let id = 0; id < (listed ? n : 1); id++) {
    const v = spec(id)
    const where = at(id)
    if (v.compose || !v.consensus || !v.execution)
      throw fail(v.compose ? `${where}.compose` : `${where}.${v.consensus ? 'execution' : 'consensus'}`, v.compose
        ? 'names compose services: forkchaos starts validators from commands (`consensus` and `execution`). Run compose services with docker compose and judge them with `forkchaos run --target endpoints.yaml`.'
        : 'is required: forkchaos starts each validator as a consensus command and an execution command.')
    for (const ph of ['engineUrl', 'peers'] as const)
      if (uses(id, 'execution', ph)) throw fail(`${where}.execution`, `uses \`{${ph}}\`, which only a consensus command may use (the execution client is behind the engine link; it has no peers of forkchaos's).`)
    if (!uses(id, 'execution', 'enginePort'))
      throw fail(`${where}.execution.command`, `must use \`{enginePort}\`: the port the consensus process calls, behind forkchaos's engine link proxy${client(id) === 'anvil' ? ' (0 for Anvil: the kernel picks it, and Anvil prints it)' : ''}.`)
    if (client(id) !== 'anvil' && !uses(id, 'execution', 'rpcPort'))
      throw fail(`${where}.execution.command`, 'must use `{rpcPort}`: an Engine API client serves eth_* there, which the consensus node and the probes read.')
    for (const part of ['consensus', 'execution'] as const) checkProgram(t, (v[part] as { command: string[] }).command[0] as string, `${where}.${part}.command[0]`, statics)
  }
  return { topology, n, spec, at, client, uses }
}

/** The program of a command: `{node}` and the like substituted; a name without `/` is looked up on PATH, a relative path in the topology's directory. */
export function resolveProgram(t: Topology, program: string, statics: StaticValues): { program: string; resolved: string | undefined } | undefined {
  let unknown = false
  const value = program.replace(placeholderRe, (whole, key: string) => {
    const s = statics[key as keyof StaticValues]
    if (s === undefined) {
      unknown = true
      return whole
    }
    return typeof s === 'function' ? s() : s
  })
  // A program under a run's own directory ({dataDir}/…) is known only when it runs.
  if (unknown) return undefined
  return { program: value, resolved: findProgram(value, topologyDir(t)) }
}

function checkProgram(t: Topology, program: string, field: string, statics: StaticValues) {
  const r = resolveProgram(t, program, statics)
  if (r && r.resolved === undefined)
    throw new InputError(`${t.file}: \`${field}\` is \`${r.program}\`, which is not ${r.program.includes('/') ? `an executable file (looked for ${path.resolve(topologyDir(t), r.program)})` : 'a program on PATH'}.`, {
      context: { File: t.file, Field: field },
      hint: 'Give the path of an executable, or install the program.',
    })
}

/** The executable `program` names: on PATH when it has no `/`, else relative to `baseDir`. */
export function findProgram(program: string, baseDir: string): string | undefined {
  const executable = (p: string) => {
    try {
      fs.accessSync(p, fs.constants.X_OK)
      return fs.statSync(p).isFile()
    } catch {
      return false
    }
  }
  if (program.includes('/')) {
    const p = path.resolve(baseDir, program)
    return executable(p) ? p : undefined
  }
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) if (dir && executable(path.join(dir, program))) return path.join(dir, program)
  return undefined
}
