/**
 * Fuzzes the scenario loader (`parseScenario`, the code behind `forkchaos validate` and `run`),
 * in-process, with the shipped scenario files (scenarios/**) as seeds.
 *
 * Each input takes one shipped file and applies, from fast-check with the run's seed, a few
 * structural mutations on its YAML tree — values replaced by huge, negative, non-finite,
 * fractional, wrongly typed or over-long ones, duration strings of any size, other fault types;
 * keys deleted or duplicated; anchors and aliases injected (valid, many, dangling, cyclic);
 * values nested deep; an alias bomb appended — and then a few byte-level ones: truncation,
 * random bytes, a duplicated line.
 *
 * Counted: crashes (anything thrown that is not an `InputError`, or an `InputError` whose
 * message does not start with the file's name), hangs (an input that costs more than 2 s of CPU
 * time, or 10 s of wall time: the loader is synchronous, so this is measured, not interrupted), and accepted-but-invalid (a file
 * the loader accepts although it breaks a limit that `schema/scenario.schema.json`, the
 * published document, states). That oracle walks the accepted file with the published schema:
 * every number must be finite and lie within the `minimum`/`maximum` stated where it sits, and
 * a number where no `maximum` (or `enum`) is stated counts as invalid too (every duration, count,
 * rate and size must have one; only comparison values — a view's `equals` / `atLeast` / `atMost` and call
 * arguments — are exempt); every list must state `maxItems` and keep to it; a duration string is
 * read by the oracle's own parser and held to the stated `maxDurationMs`.
 */
import * as fs from 'node:fs'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Ajv, type ValidateFunction } from 'ajv'
import fc from 'fast-check'
import { Alias, type Document, isMap, isScalar, isSeq, type Node, parse, parseDocument, Scalar, YAMLSeq } from 'yaml'
import { InputError } from '../src/errors.js'
import { faultTypes } from '../src/faults/registry.js'
import { parseScenario } from '../src/scenario/loader.js'
import type { FuzzTally, FuzzTarget } from './types.js'

/**
 * An input that costs the loader more than this much CPU time is a hang. The loader is
 * synchronous, so its CPU time is the work it did; wall time on a machine shared with other
 * test runs (load 10 on 2 cores here) stretches by whatever else runs. A wall time over
 * `HANG_WALL_MS` counts too, whatever the CPU says.
 */
const HANG_MS = 2_000
const HANG_WALL_MS = 10_000
const EXAMPLES_MAX = 8
const FILE = 'fuzz.yaml'

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..')
const published = JSON.parse(fs.readFileSync(path.join(root, 'schema', 'scenario.schema.json'), 'utf8')) as Schema

function shippedScenarios(): { file: string; text: string }[] {
  const out: { file: string; text: string }[] = []
  const visit = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(dir, entry.name)
      if (entry.isDirectory()) visit(p)
      else if (/\.ya?ml$/.test(entry.name)) out.push({ file: path.relative(root, p), text: fs.readFileSync(p, 'utf8') })
    }
  }
  visit(path.join(root, 'scenarios'))
  return out
}

// ─── Inputs ───────────────────────────────────────────────────────────────────────────────────

const units = ['ms', 's', 'm', 'h', 'd'] as const
const nasty = fc.oneof(
  fc.constantFrom<unknown>(1e308, -1e308, 1e300, 1e21, 2 ** 53 + 1, Number.MAX_SAFE_INTEGER, -1, 0, 0.5, 1.5, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY),
  fc.constantFrom<unknown>('99999999999999999999999d', '1e400', '-5s', '2h', '25h', '0ms', '1.5m', '', ' ', 'x'.repeat(12_000), '*nope', '&a', '~', 'null', '.nan'),
  fc.constantFrom<unknown>(true, false, null, [], {}, [1, 2, 3], { a: 1 }, Array.from({ length: 1_500 }, () => ({ cycle: {} }))),
  fc.tuple(fc.nat({ max: 1e9 }), fc.constantFrom(...units)).map(([n, u]) => `${n}${u}`),
  fc.tuple(fc.double({ min: 0, max: 1e30, noNaN: true }), fc.constantFrom(...units)).map(([n, u]) => `${n}${u}`),
  fc.double(),
  fc.integer({ min: -(2 ** 40), max: 2 ** 40 }),
  fc.string({ maxLength: 20 }),
  fc.constantFrom<unknown>(...faultTypes),
)

/** A number or a duration of any size, put where a number or a duration was (so the type still fits). */
const boundNumber: fc.Arbitrary<number> = fc.oneof(
  fc.constantFrom(1e308, 1e21, 2 ** 53 + 1, 2 ** 31, 1e9, 86_400_001, 3_600_001, 100_001, 10_001, 1_001, 101, 65, 5, 1, 0, -1, 0.5),
  fc.integer({ min: -1, max: 2 ** 32 }),
  fc.double({ min: -1, max: 1e12, noNaN: true, noDefaultInfinity: true }),
)
const boundDuration: fc.Arbitrary<string | number> = fc.oneof(
  fc.tuple(fc.nat({ max: 100_000 }), fc.constantFrom(...units)).map(([n, u]) => `${n}${u}`),
  fc.constantFrom('99999999999999999999999d', '1e400ms', '25h', '61m', '3601s', '3600001ms', '1.0000001h', '24.5h', '0.001ms', '199ms'),
  boundNumber,
)

type Mutation =
  | { op: 'replace'; at: number; value: unknown }
  | { op: 'bound'; at: number; number: number; duration: string | number }
  | { op: 'delete'; at: number }
  | { op: 'duplicateKey'; at: number }
  | { op: 'alias'; from: number; to: number }
  | { op: 'aliasMany'; from: number; count: number }
  | { op: 'dangling'; at: number; name: string }
  | { op: 'nest'; at: number; depth: number }
  | { op: 'bomb'; width: number; depth: number }

type ByteMutation = { op: 'truncate'; at: number } | { op: 'bytes'; at: number; bytes: number[] } | { op: 'dupLine'; at: number }

const position = fc.nat({ max: 10_000 })
const boundMutation = fc.record({ op: fc.constant('bound' as const), at: position, number: boundNumber, duration: boundDuration })
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('replace' as const), at: position, value: nasty }) },
  { weight: 6, arbitrary: boundMutation },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('delete' as const), at: position }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('duplicateKey' as const), at: position }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('alias' as const), from: position, to: position }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('aliasMany' as const), from: position, count: fc.integer({ min: 50, max: 300 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('dangling' as const), at: position, name: fc.constantFrom('nope', 'a0', 'x') }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('nest' as const), at: position, depth: fc.integer({ min: 1, max: 120 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('bomb' as const), width: fc.integer({ min: 2, max: 12 }), depth: fc.integer({ min: 1, max: 10 }) }) },
)
const byteMutation: fc.Arbitrary<ByteMutation> = fc.oneof(
  fc.record({ op: fc.constant('truncate' as const), at: position }),
  fc.record({ op: fc.constant('bytes' as const), at: position, bytes: fc.array(fc.oneof({ weight: 3, arbitrary: fc.integer({ min: 0x20, max: 0x7e }) }, { weight: 1, arbitrary: fc.nat({ max: 255 }) }), { minLength: 1, maxLength: 12 }) }),
  fc.record({ op: fc.constant('dupLine' as const), at: position }),
)

type Input = { seed: number; mutations: Mutation[]; bytes: ByteMutation[] }
const input = (seeds: number): fc.Arbitrary<Input> =>
  fc.record({
    seed: fc.nat({ max: seeds - 1 }),
    mutations: fc.oneof({ weight: 2, arbitrary: boundMutation.map((m) => [m] as Mutation[]) }, { weight: 3, arbitrary: fc.array(mutation, { minLength: 1, maxLength: 3 }) }),
    bytes: fc.oneof({ weight: 6, arbitrary: fc.constant([] as ByteMutation[]) }, { weight: 1, arbitrary: fc.array(byteMutation, { minLength: 1, maxLength: 2 }) }),
  })

/** A place in the tree: a value of a mapping's pair or an item of a list. */
type Slot = { get(): unknown; set(node: unknown): void; remove(): void; duplicate?(): void }

function slots(doc: Document): Slot[] {
  const out: Slot[] = []
  const walk = (node: unknown) => {
    if (isMap(node))
      node.items.forEach((pair) => {
        out.push({
          get: () => pair.value,
          set: (v) => {
            pair.value = v as Node
          },
          remove: () => {
            const i = node.items.indexOf(pair)
            if (i >= 0) node.items.splice(i, 1)
          },
          duplicate: () => node.items.push(pair.clone()),
        })
        walk(pair.value)
      })
    else if (isSeq(node))
      node.items.forEach((item, i) => {
        out.push({
          get: () => node.items[i],
          set: (v) => {
            node.items[i] = v
          },
          remove: () => node.items.splice(i, 1),
        })
        walk(item)
      })
  }
  walk(doc.contents)
  return out
}

/** The input as the bytes of a file, and one line saying how it was made. */
function build(base: { file: string; text: string }, input: Input): { bytes: Uint8Array; label: string } {
  const doc = parseDocument(base.text)
  let anchors = 0
  let appended = ''
  for (const m of input.mutations) {
    const all = slots(doc)
    if (all.length === 0) break
    const pick = (n: number) => all[n % all.length] as Slot
    if (m.op === 'replace') pick(m.at).set(doc.createNode(m.value))
    else if (m.op === 'bound') {
      const numeric = all.filter((slot) => {
        const v = slot.get()
        return isScalar(v) && (typeof v.value === 'number' || (typeof v.value === 'string' && /^\d+(\.\d+)?(ms|s|m|h|d)$/.test(v.value)))
      })
      const slot = numeric[m.at % Math.max(1, numeric.length)]
      if (slot) slot.set(doc.createNode(typeof (slot.get() as Scalar).value === 'number' ? m.number : m.duration))
    }
    else if (m.op === 'delete') pick(m.at).remove()
    else if (m.op === 'duplicateKey') pick(m.at).duplicate?.()
    else if (m.op === 'dangling') pick(m.at).set(new Alias(m.name))
    else if (m.op === 'nest') {
      const slot = pick(m.at)
      let node = slot.get()
      for (let i = 0; i < m.depth; i++) {
        const seq = new YAMLSeq()
        seq.items.push(node)
        node = seq
      }
      slot.set(node)
    } else if (m.op === 'alias' || m.op === 'aliasMany') {
      const from = pick(m.from).get()
      if (!from || typeof from !== 'object' || !('range' in from || 'items' in from || from instanceof Scalar)) continue
      const anchored = from as Node
      const name = anchored.anchor ?? `f${anchors++}`
      anchored.anchor = name
      // Mostly after the anchor; one in four anywhere, even into the anchor (a cycle) or before it.
      const after = all.findIndex((s) => s.get() === from) + 1
      const targets = m.op === 'alias' ? [m.to % 4 === 0 ? pick(m.to) : pick(after + (m.to % Math.max(1, all.length - after)))] : all.slice(all.findIndex((s) => s.get() === from) + 1).filter((s) => isScalar(s.get())).slice(0, m.count)
      for (const slot of targets) if (slot.get() !== from) slot.set(new Alias(name))
    } else if (m.op === 'bomb') {
      appended += `b0: &b0 [${Array(m.width).fill('x').join(', ')}]\n`
      for (let i = 1; i <= m.depth; i++) appended += `b${i}: &b${i} [${Array(m.width).fill(`*b${i - 1}`).join(', ')}]\n`
    }
  }
  let text: string
  try {
    text = doc.toString({ verifyAliasOrder: false, lineWidth: 0 }) + appended
  } catch (error) {
    // The YAML writer refused the tree (a cycle it cannot print): the loader gets the original.
    text = base.text + appended
  }
  let bytes: Uint8Array = Buffer.from(text, 'utf8')
  for (const b of input.bytes) {
    const at = b.at % (bytes.length + 1)
    if (b.op === 'truncate') bytes = bytes.subarray(0, at)
    else if (b.op === 'bytes') bytes = Buffer.concat([bytes.subarray(0, at), Buffer.from(b.bytes), bytes.subarray(at)])
    else {
      const lines = Buffer.from(bytes).toString('latin1').split('\n')
      const i = b.at % lines.length
      lines.splice(i, 0, lines[i] ?? '')
      bytes = Buffer.from(lines.join('\n'), 'latin1')
    }
  }
  return { bytes, label: `${base.file} ${JSON.stringify({ mutations: input.mutations, bytes: input.bytes }, short)}` }
}

/** Keeps a label on one line: long strings and lists shortened, non-finite numbers named. */
function short(_key: string, v: unknown): unknown {
  if (typeof v === 'string' && v.length > 40) return `${v.slice(0, 20)}…(${v.length} chars)`
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v)
  if (Array.isArray(v) && v.length > 20) return `[${v.length} items]`
  return v
}

// ─── The oracle: the limits the published schema states ───────────────────────────────────────

type Schema = Record<string, unknown>
const ajv = new Ajv({ strict: false })
const compiled = new WeakMap<object, ValidateFunction>()
const matches = (schema: Schema, value: unknown) => {
  let f = compiled.get(schema)
  if (!f) {
    // The published schema's custom keywords are annotations here; branches are told apart by structure.
    // A branch is compiled on its own, with the published `definitions` its `$ref`s point into.
    f = ajv.compile(JSON.parse(JSON.stringify({ ...schema, definitions: published.definitions }), (k, v) => (k === 'maxDurationMs' || k === 'minDurationMs' ? undefined : v)))
    compiled.set(schema, f)
  }
  return f(value)
}

/** Every subschema that applies to `value` at this place: the schema and its matching branches. */
function applicable(ref: Schema, value: unknown): Schema[] {
  // A `$ref` into the published `definitions` (a value: a constant or a view) stands for the definition.
  const target = typeof ref.$ref === 'string' ? /^#\/definitions\/(.+)$/.exec(ref.$ref)?.[1] : undefined
  const schema = target ? ((published.definitions as Record<string, Schema>)[target] as Schema) : ref
  const out = [schema]
  for (const s of (schema.allOf as Schema[] | undefined) ?? []) out.push(...applicable(s, value))
  // A branch applies when it matches, or when the value has every key it requires: an invalid
  // value matches no branch, and its numbers must still be held to the branch's bounds.
  const keyed = (s: Schema) =>
    Array.isArray(s.required) && s.required.length > 0 && value !== null && typeof value === 'object' && !Array.isArray(value) && s.required.every((k) => k in value)
  for (const key of ['oneOf', 'anyOf'] as const) for (const s of (schema[key] as Schema[] | undefined) ?? []) if (matches(s, value) || keyed(s)) out.push(...applicable(s, value))
  if (schema.if) {
    const branch = matches(schema.if as Schema, value) ? schema.then : schema.else
    if (branch) out.push(...applicable(branch as Schema, value))
  }
  return out
}

const exemptNumber = /(view\.(equals|atLeast|atMost|max)|\.args\[\d+\]|warp\.to|bountyCapped\.(gasTokenPrice|assets))$/
const unitsMs: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** What in an accepted file breaks a stated limit (empty: nothing). */
export function limitViolations(value: unknown, schema: Schema = published, at = ''): string[] {
  const schemas = applicable(schema, value)
  const stated = (key: string) => schemas.map((s) => s[key]).filter((v): v is number => typeof v === 'number')
  const out: string[] = []
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) out.push(`${at}: ${value} is not finite`)
    const max = stated('maximum')
    const enumerated = schemas.some((s) => Array.isArray(s.enum) || 'const' in s)
    if (max.length === 0 && !enumerated && !exemptNumber.test(at)) out.push(`${at}: ${value} where no maximum is stated`)
    for (const m of max) if (value > m) out.push(`${at}: ${value} > maximum ${m}`)
    for (const m of stated('minimum')) if (value < m) out.push(`${at}: ${value} < minimum ${m}`)
  } else if (typeof value === 'string') {
    const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(value)
    for (const m of stated('maxDurationMs')) if (!match || Number(match[1]) * (unitsMs[match[2] as string] as number) > m) out.push(`${at}: "${value}" beyond maxDurationMs ${m}`)
    for (const m of stated('maxLength')) if (value.length > m) out.push(`${at}: a string of ${value.length} > maxLength ${m}`)
  } else if (Array.isArray(value)) {
    const max = stated('maxItems')
    if (max.length === 0) out.push(`${at}: a list of ${value.length} where no maxItems is stated`)
    for (const m of max) if (value.length > m) out.push(`${at}: ${value.length} items > maxItems ${m}`)
    // Every schema that applies here speaks for the children together (`allOf`), so a key one
    // of them leaves open (a fault's `params: {type: object}`) is described by another.
    const items = schemas.map((s) => s.items as Schema | undefined).filter((s): s is Schema => s !== undefined)
    value.forEach((item, i) => out.push(...limitViolations(item, { allOf: items }, `${at}[${i}]`)))
  } else if (value && typeof value === 'object') {
    for (const [key, child] of Object.entries(value)) {
      const field = at ? `${at}.${key}` : key
      const subs = schemas
        .map((s) => (s.properties as Record<string, Schema> | undefined)?.[key] ?? (s.additionalProperties && typeof s.additionalProperties === 'object' ? (s.additionalProperties as Schema) : undefined))
        .filter((s): s is Schema => s !== undefined)
      // A key no schema describes has no stated limits either: accepting it is accepting the unknown.
      if (subs.length === 0) out.push(`${field}: a key the schema does not describe`)
      else out.push(...limitViolations(child, { allOf: subs }, field))
    }
  }
  return [...new Set(out)]
}

// ─── The target ───────────────────────────────────────────────────────────────────────────────

export type Outcome = { kind: 'accepted' | 'rejected' | 'crash' | 'hang' | 'acceptedInvalid'; detail: string }

function tryOne(bytes: Uint8Array): Outcome {
  const t0 = performance.now()
  const cpu0 = process.cpuUsage()
  let outcome: Outcome
  try {
    const loaded = parseScenario(bytes, FILE)
    const raw = parse(Buffer.from(bytes).toString('utf8'), { maxAliasCount: -1 }) as unknown
    const problems = limitViolations(raw)
    for (const [field, ms] of [['baseline', loaded.baseline.durationMs], ['inject', loaded.inject.durationMs], ['recover', loaded.recover.durationMs], ['slot', loaded.target.slotMs]] as const)
      if (!(Number.isFinite(ms) && ms >= 0 && ms <= 86_400_000)) problems.push(`${field}: ${ms} ms after loading`)
    outcome = problems.length > 0 ? { kind: 'acceptedInvalid', detail: problems.slice(0, 3).join('; ') } : { kind: 'accepted', detail: '' }
  } catch (error) {
    if (!(error instanceof InputError)) outcome = { kind: 'crash', detail: `${(error as Error)?.name}: ${String((error as Error)?.message).split('\n')[0]}` }
    else if (!error.message.startsWith(FILE)) outcome = { kind: 'crash', detail: `an InputError that does not name the file: ${error.message.split('\n')[0]}` }
    else outcome = { kind: 'rejected', detail: error.message.split('\n')[0] as string }
  }
  const wallMs = performance.now() - t0
  const cpu = process.cpuUsage(cpu0)
  const cpuMs = (cpu.user + cpu.system) / 1_000
  return cpuMs > HANG_MS || wallMs > HANG_WALL_MS ? { kind: 'hang', detail: `${Math.round(cpuMs)} ms CPU, ${Math.round(wallMs)} ms wall` } : outcome
}

/** The inputs of a run as file bytes with their outcomes, for tests that look at the mix. */
export function sampleOutcomes(count: number, seed: number): { label: string; bytes: Uint8Array; outcome: Outcome }[] {
  const bases = shippedScenarios()
  return fc.sample(input(bases.length), { seed, numRuns: count }).map((one) => {
    const made = build(bases[one.seed] as (typeof bases)[number], one)
    return { ...made, outcome: tryOne(made.bytes) }
  })
}

export const scenarioFuzz: FuzzTarget = {
  name: 'scenario',
  async run({ count, seed }) {
    const bases = shippedScenarios()
    const arbitrary = input(bases.length)
    const tally: FuzzTally = { inputs: 0, crashes: 0, hangs: 0, acceptedInvalid: 0, examples: [] }
    const firstOf: Partial<Record<Outcome['kind'], true>> = {}
    for (const one of fc.sample(arbitrary, { seed, numRuns: count })) {
      const { bytes, label } = build(bases[one.seed] as (typeof bases)[number], one)
      const outcome = tryOne(bytes)
      tally.inputs++
      if (outcome.kind === 'accepted' || outcome.kind === 'rejected') continue
      tally[outcome.kind === 'crash' ? 'crashes' : outcome.kind === 'hang' ? 'hangs' : 'acceptedInvalid']++
      if (firstOf[outcome.kind]) continue
      firstOf[outcome.kind] = true
      // The first failure of each kind, shrunk by fast-check to a small reproducer within 30 s;
      // a hang is not shrunk (every try would cost seconds), nor is anything on a large count.
      const shrunk =
        outcome.kind === 'hang' || count > 2_000
          ? undefined
          : fc.check(
              fc.property(arbitrary, (candidate) => tryOne(build(bases[candidate.seed] as (typeof bases)[number], candidate).bytes).kind !== outcome.kind),
              { seed, numRuns: count, interruptAfterTimeLimit: 30_000 },
            )
      const example = shrunk?.counterexample?.[0]
      const made = example ? build(bases[example.seed] as (typeof bases)[number], example) : { label, bytes }
      if (tally.examples.length < EXAMPLES_MAX) tally.examples.push(`${outcome.kind}: ${example ? tryOne(made.bytes).detail : outcome.detail} — ${made.label}`)
    }
    return tally
  },
}

export default scenarioFuzz
