import * as fs from 'node:fs'
import * as path from 'node:path'
import { Ajv, type ErrorObject } from 'ajv'
import { LineCounter, parseDocument } from 'yaml'
import { InputError } from '../errors.js'
import { parseDurationMs } from '../util/duration.js'
import { faults } from '../faults/registry.js'
import { scenarioSchema, stepSchema, checkKeys } from './schema.js'
import type { FaultSpec, Scenario, Step } from './types.js'

const ajv = new Ajv({ allErrors: true, strict: false })
const validate = ajv.compile(scenarioSchema)

/**
 * Parses and validates one scenario file. Every problem becomes an `InputError` (exit code 2)
 * that names the file, the line, the field and what was expected. Fault params are checked by
 * the faults' own parsers here too, so nothing is applied from a half-valid file.
 */
export function loadScenario(file: string): Scenario {
  let text: string
  try {
    text = fs.readFileSync(file, 'utf8')
  } catch {
    throw new InputError(`Cannot read the scenario file ${file}.`, { hint: 'Check the path; `forkchaos list` shows the scenarios it finds.' })
  }
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, { lineCounter, prettyErrors: false })
  if (doc.errors.length > 0) {
    const error = doc.errors[0] as (typeof doc.errors)[number]
    const pos = lineCounter.linePos(error.pos[0])
    throw new InputError(`${file}:${pos.line}:${pos.col}: the file is not valid YAML: ${error.message.split('\n')[0]}`)
  }
  const raw = doc.toJS() as unknown
  if (!validate(raw)) {
    const error = pickError(validate.errors ?? [])
    const segments = error.instancePath.split('/').slice(1).map(unescape)
    const node = doc.getIn(segments.map((s) => (/^\d+$/.test(s) ? Number(s) : s)), true) as { range?: [number] } | undefined
    const line = node?.range ? `:${lineCounter.linePos(node.range[0]).line}` : ''
    throw new InputError(`${file}${line}: ${describe(error, raw)}`, { context: { File: file, Field: fieldName(segments) || '(top level)' } })
  }
  const scenario = raw as RawScenario
  const ms = (value: unknown, field: string, fallback: number) => (value === undefined ? fallback : parseDurationMs(value, `${file}: ${field}`))
  ;[...scenario.inject.faults, ...(scenario.inject.random?.faults ?? [])].forEach((fault, i) => {
    const definition = faults[fault.type as keyof typeof faults]
    definition.parse(fault.params ?? {}, `${file}: inject.faults[${i}].params`)
  })
  const phases = { baseline: scenario.baseline?.steps, inject: scenario.inject.steps, recover: scenario.recover?.steps }
  for (const [phase, steps] of Object.entries(phases))
    (steps ?? []).forEach((step, i) => {
      if (!('keeper' in step)) return
      for (const key of ['duration', 'interval', 'timeout'] as const)
        if (step.keeper[key] !== undefined) parseDurationMs(step.keeper[key], `${file}: ${phase}.steps[${i}].keeper.${key}`)
      if (!scenario.target?.rpcProxy)
        throw new InputError(`${file}: \`${phase}.steps[${i}].keeper\` needs \`target: { rpcProxy: true }\`: the keeper talks to the fork through the fault proxy.`, {
          context: { File: file, Field: 'target.rpcProxy' },
        })
    })
  const names = [...(scenario.checks ?? []), ...(scenario.stop ?? [])].map((c) => c.name)
  const dup = names.find((n, i) => names.indexOf(n) !== i)
  if (dup) throw new InputError(`${file}: two checks are named \`${dup}\`; check names must be unique.`, { context: { File: file, Field: 'checks' } })
  return {
    file,
    name: scenario.name,
    ...(scenario.description !== undefined ? { description: scenario.description } : {}),
    hypothesis: scenario.hypothesis,
    target: {
      kind: scenario.target?.kind ?? 'fork',
      slotMs: parseDurationMs(scenario.target?.slot ?? '1s', `${file}: target.slot`),
      ...(scenario.target?.honest ? { honest: scenario.target.honest } : {}),
      isolation: scenario.target?.upstreamProxy ? 'fresh' : (scenario.target?.isolation ?? 'snapshot'),
      rpcProxy: scenario.target?.rpcProxy ?? false,
      upstreamProxy: scenario.target?.upstreamProxy ?? false,
      anvil: scenario.target?.anvil ?? {},
    },
    contracts: scenario.contracts ?? {},
    accounts: scenario.accounts ?? {},
    protocol: scenario.protocol ?? 'reference',
    checks: scenario.checks ?? [],
    stop: scenario.stop ?? [],
    baseline: { steps: scenario.baseline?.steps ?? [], durationMs: ms(scenario.baseline?.duration, 'baseline.duration', 3_000) },
    inject: {
      faults: scenario.inject.faults,
      steps: scenario.inject.steps ?? [],
      durationMs: ms(scenario.inject.duration, 'inject.duration', 10_000),
      ...(scenario.inject.random
        ? {
            random: {
              faults: scenario.inject.random.faults,
              everyMs: ms(scenario.inject.random.every, 'inject.random.every', 10_000),
              holdMs: ms(scenario.inject.random.hold, 'inject.random.hold', 5_000),
              budget: scenario.inject.random.budget ?? 1,
              flakeBudget: scenario.inject.random.flakeBudget ?? 0,
            },
          }
        : {}),
    },
    recover: { steps: scenario.recover?.steps ?? [], attempts: scenario.recover?.attempts ?? 3, durationMs: ms(scenario.recover?.duration, 'recover.duration', 5_000) },
  }
}

/** A scenario file as the schema admits it, before defaults and parsing. */
type RawScenario = Pick<Scenario, 'name' | 'hypothesis'> &
  Partial<Pick<Scenario, 'description' | 'contracts' | 'accounts' | 'protocol' | 'checks' | 'stop'>> & {
    target?: { kind?: 'fork' | 'devnet'; isolation?: 'snapshot' | 'fresh'; slot?: string | number; honest?: number[]; rpcProxy?: boolean; upstreamProxy?: boolean; anvil?: Scenario['target']['anvil'] }
    baseline?: { steps?: Step[]; duration?: string | number }
    inject: {
      faults: FaultSpec[]
      steps?: Step[]
      duration?: string | number
      random?: { faults: FaultSpec[]; every?: string | number; hold?: string | number; budget?: number; flakeBudget?: number }
    }
    recover?: { steps?: Step[]; attempts?: number; duration?: string | number }
  }

/** Scenario files under the given paths (files, or directories searched recursively). */
export function findScenarioFiles(paths: readonly string[]): string[] {
  const out: string[] = []
  const visit = (p: string) => {
    let stat: fs.Stats
    try {
      stat = fs.statSync(p)
    } catch {
      throw new InputError(`No such scenario file or directory: ${p}`)
    }
    if (stat.isDirectory()) {
      for (const entry of fs.readdirSync(p).sort()) visit(path.join(p, entry))
    } else if (/\.ya?ml$/.test(p)) out.push(p)
  }
  for (const p of paths) visit(p)
  return out
}

/** The most useful of Ajv's errors: the deepest, preferring concrete keywords over `oneOf`. */
function pickError(errors: ErrorObject[]): ErrorObject {
  const vague = new Set(['oneOf', 'anyOf', 'if', 'const', 'enum', 'required', 'additionalProperties'])
  const depth = (e: ErrorObject) => e.instancePath.split('/').length
  const sorted = [...errors].sort((a, b) => depth(b) - depth(a) || Number(vague.has(a.keyword)) - Number(vague.has(b.keyword)))
  return sorted[0] as ErrorObject
}

function describe(error: ErrorObject, raw: unknown): string {
  const segments = error.instancePath.split('/').slice(1).map(unescape)
  const field = fieldName(segments)
  const got = JSON.stringify(valueAt(raw, segments))
  const p = error.params as Record<string, unknown>
  switch (error.keyword) {
    case 'required': {
      const missing = String(p.missingProperty)
      const inStep = /steps\[\d+\]$/.test(field)
      if (inStep) return `\`${field}\` must be a step with one of the keys ${stepKeys().join(', ')}. Got \`${got}\`.`
      const isCheck = /(checks|stop)\[\d+\]$/.test(field)
      if (isCheck && checkKeys.includes(missing as never))
        return `\`${field}\` must have exactly one check: ${checkKeys.join(', ')}. Got \`${got}\`.`
      return `\`${field ? `${field}.` : ''}${missing}\` is required.`
    }
    case 'additionalProperties':
      return `\`${field ? `${field}.` : ''}${String(p.additionalProperty)}\` is not a known field${field ? ` of ${field}` : ''}.`
    case 'enum':
      return `\`${field}\` must be one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}. Got \`${got}\`.`
    case 'const':
      return `\`${field}\` must be ${JSON.stringify(p.allowedValue)}. Got \`${got}\`.`
    case 'type':
      return `\`${field}\` must be ${String(p.type)}. Got \`${got}\`.`
    case 'pattern':
      return `\`${field}\` must match ${String(p.pattern)}. Got \`${got}\`.`
    case 'oneOf':
      if (/steps\[\d+\]$/.test(field)) return `\`${field}\` must be a step with one of the keys ${stepKeys().join(', ')}. Got \`${got}\`.`
      return `\`${field}\` matches none of the allowed forms${/(checks|stop)\[\d+\]$/.test(field) ? ` (exactly one check: ${checkKeys.join(', ')})` : ''}. Got \`${got}\`.`
    default:
      return `\`${field}\` ${error.message ?? 'is invalid'}. Got \`${got}\`.`
  }
}

const stepKeys = () => stepSchema.oneOf.map((s) => s.required[0] as string)
const unescape = (s: string) => s.replaceAll('~1', '/').replaceAll('~0', '~')
const fieldName = (segments: string[]) =>
  segments.reduce((acc, s) => (/^\d+$/.test(s) ? `${acc}[${s}]` : acc ? `${acc}.${s}` : s), '')

function valueAt(raw: unknown, segments: string[]): unknown {
  let node: unknown = raw
  for (const s of segments) node = node && typeof node === 'object' ? (node as Record<string, unknown>)[s] : undefined
  return node
}

