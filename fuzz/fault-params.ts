import { Ajv } from 'ajv'
import fc from 'fast-check'
import { InputError } from '../src/errors.js'
import type { AnyFault } from '../src/Fault.js'
import { faults } from '../src/faults/registry.js'
import type { FuzzTally, FuzzTarget } from './types.js'

/**
 * One declaration per fault gives its JSON Schema and its parser; this pins that they agree.
 * The oracle is Ajv over the published schema, and the values come from the schema alone
 * (`valuesFor`, which knows nothing of src/Params.ts): near and at every bound, inside the
 * range, every enum value and a wrong one, wrong types, missing and unknown keys.
 */
export type Schema = Record<string, unknown>
const ajv = new Ajv({ strict: false, allErrors: false })

/** What the schema cannot state, declared with `refine` in the fault: the parser's only extra refusals. */
export const refinements: Record<string, RegExp> = {
  'net.partition': /must not put a validator in two groups/,
  'dependency.revert': /is not a function signature that can be read/,
  'dependency.garbage': /is not a function signature that can be read/,
  'dependency.gas': /is not a function signature that can be read/,
  // Params that would do nothing together (`staleS` with `fn`), a view whose answer has no fixed word.
  'oracle.divergence': /is refused: it /,
}

const junk = fc.oneof(fc.constant(null), fc.boolean(), fc.string({ maxLength: 4 }), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.constant([]), fc.constant({}))

export function valuesFor(schema: Schema, depth = 0): fc.Arbitrary<unknown> {
  const options: fc.Arbitrary<unknown>[] = [junk]
  if (Array.isArray(schema.enum)) options.push(fc.constantFrom(...(schema.enum as unknown[])), fc.constantFrom(...(schema.enum as unknown[])), fc.constant('not-a-choice'), fc.constant(430))
  if (schema.type === 'integer' || schema.type === 'number') {
    const lo = (schema.minimum ?? schema.exclusiveMinimum) as number
    const hi = schema.maximum as number
    const edges = [lo, hi, lo - 1, hi + 1, lo + 0.5, hi - 0.5, lo - 1e-9, hi + 1e-9, 0, -0, 1, (lo + hi) / 2]
    options.push(fc.constantFrom(...edges), fc.integer({ min: Math.ceil(lo), max: Math.floor(hi) }), fc.double({ min: lo, max: hi, noNaN: true }), fc.double({ min: lo - 2 * (hi - lo + 1), max: hi + 2 * (hi - lo + 1), noNaN: true }))
  }
  if (schema.type === 'boolean') options.push(fc.boolean(), fc.constantFrom('true', 0, 1))
  if (schema.type === 'string') {
    const max = schema.maxLength as number
    const unit = fc.constantFrom('a', 'Z', ' ', '~', 'é', '😀', '\u0000', '(', ')', ',', '0', 'x')
    options.push(
      fc.string({ unit, maxLength: Math.min(max + 2, 40) }),
      fc.constantFrom('x'.repeat(max), 'x'.repeat(max + 1), '😀'.repeat(Math.min(max, 300)), '😀'.repeat(Math.min(max + 1, 301)), '', 'é'.repeat(Math.min(max, 300))),
      fc.constantFrom('closeTrade(uint256)', '0x12345678', '0x1234567', 'f(((', 'f(()', 'a()', 'f(uint256)) g(', '_x$(address,(uint8,bool))', '1f()', '0xZZ345678', 'eth_*', 'eth_call'),
    )
  }
  if (schema.type === 'array' && depth < 3) {
    const items = valuesFor((schema.items ?? {}) as Schema, depth + 1)
    const max = schema.maxItems as number
    options.push(fc.array(items, { maxLength: Math.min(max + 1, 12) }), fc.array(items, { minLength: max, maxLength: max + 1 }))
    // Lists of small distinct or repeated ids, so that "no repeats" and "two groups" are reached.
    options.push(fc.array(fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 4 }), fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 4 }))
  }
  if (schema.type === 'object') {
    const properties = (schema.properties ?? {}) as Record<string, Schema>
    const keys = Object.keys(properties)
    const record = fc.record(Object.fromEntries(keys.map((k) => [k, valuesFor(properties[k] as Schema, depth + 1)])), { requiredKeys: [] })
    // Mostly valid: every key meant to be in range, then one key (or none) replaced by any value.
    const valid = fc.record(Object.fromEntries(keys.map((k) => [k, validFor(properties[k] as Schema)])), { requiredKeys: (schema.required ?? []) as string[] })
    const oneOff = keys.length
      ? fc.tuple(valid, fc.constantFrom(...keys), fc.boolean()).chain(([r, k, drop]) =>
          drop ? fc.constant(omit(r, k)) : valuesFor(properties[k] as Schema, depth + 1).map((v) => ({ ...r, [k]: v })),
        )
      : valid
    options.push(record, valid, valid, oneOff, oneOff, oneOff, oneOff, valid.map((r) => ({ ...r, unexpected: 1 })))
  }
  return fc.oneof(...options)
}

const omit = (r: Record<string, unknown>, k: string) => Object.fromEntries(Object.entries(r).filter(([key]) => key !== k))

/** Values meant to satisfy the schema (read from the schema, not from the parser). */
export function validFor(schema: Schema): fc.Arbitrary<unknown> {
  if (Array.isArray(schema.enum)) return fc.constantFrom(...(schema.enum as unknown[]))
  if (schema.type === 'boolean') return fc.boolean()
  if (schema.type === 'integer' || schema.type === 'number') {
    const lo = (schema.minimum ?? schema.exclusiveMinimum) as number
    const hi = schema.maximum as number
    const ints = fc.integer({ min: Math.ceil(lo), max: Math.floor(hi) })
    return schema.type === 'integer' ? fc.oneof(ints, fc.constantFrom(Math.ceil(lo), Math.floor(hi))) : fc.oneof(ints, fc.double({ min: lo, max: hi, noNaN: true }), fc.constantFrom(lo, hi))
  }
  if (schema.type === 'string') {
    const max = schema.maxLength as number
    if (schema.pattern === '^[ -~]*$') return fc.string({ unit: fc.constantFrom('a', ' ', '~', ':', 'Z'), minLength: Number(schema.minLength ?? 0), maxLength: max })
    if (schema.pattern) return fc.constantFrom('closeTrade(uint256)', '0x12345678', 'a()', '_x$(address,(uint8,bool))', 'f(()', 'g((uint8)', 'h(uint8[2],bytes)')
    return fc.string({ unit: fc.constantFrom('a', 'é', '😀', '_', '*'), minLength: Number(schema.minLength ?? 0), maxLength: Math.min(max, 40) })
  }
  if (schema.type === 'array') {
    const min = Number(schema.minItems ?? 0)
    const max = Math.min(Number(schema.maxItems), min + 4)
    const item = validFor((schema.items ?? {}) as Schema)
    return schema.uniqueItems ? fc.uniqueArray(item, { minLength: min, maxLength: max, selector: (v) => JSON.stringify(v) }) : fc.array(item, { minLength: min, maxLength: max })
  }
  return junk
}

export type Outcome = { schemaOk: boolean; parsed?: unknown; error?: InputError }
export function outcome(fault: AnyFault, value: unknown): Outcome {
  const schemaOk = ajv.validate(fault.paramsSchema, value) as boolean
  try {
    return { schemaOk, parsed: fault.parse(value, 'test') }
  } catch (error) {
    // Anything but an InputError here is a crash: the parser must answer bad input with text.
    if (!(error instanceof InputError)) throw error
    return { schemaOk, error }
  }
}

/** The property: the parser accepts exactly what the schema accepts, but for the fault's declared refinements. */
export function agreement(fault: AnyFault, numRuns: number) {
  return fc.check(
    fc.property(valuesFor(fault.paramsSchema), (value) => {
      const o = outcome(fault, value)
      if (o.error === undefined) return o.schemaOk
      if (!o.schemaOk) return /Got|is required|is not a known param/.test(o.error.shortMessage)
      return refinements[fault.type]?.test(o.error.shortMessage) ?? false
    }),
    { seed: 8, numRuns },
  )
}


/**
 * The same oracle at large counts (`npm run fuzz -- fault-params`): values for every fault's
 * params drawn from its published schema, each parsed and checked with Ajv. `acceptedInvalid`
 * counts disagreements either way (the parser accepts what the schema refuses, or refuses what
 * it accepts without a declared refinement); `crashes`, a parser that throws anything but an
 * `InputError`; `hangs`, a parse slower than 1 s.
 */
export const faultParamsFuzz: FuzzTarget = {
  name: 'fault-params',
  async run({ count, seed }) {
    const tally: FuzzTally = { inputs: 0, crashes: 0, hangs: 0, acceptedInvalid: 0, examples: [] }
    const list = Object.values(faults) as AnyFault[]
    const note = (line: string) => {
      if (tally.examples.length < 5) tally.examples.push(line)
    }
    for (const [i, fault] of list.entries()) {
      const numRuns = Math.floor(count / list.length) + (i < count % list.length ? 1 : 0)
      if (numRuns === 0) continue
      for (const value of fc.sample(valuesFor(fault.paramsSchema), { seed: seed + i, numRuns })) {
        tally.inputs++
        const started = performance.now()
        let o: Outcome
        try {
          o = outcome(fault, value)
        } catch (error) {
          tally.crashes++
          note(`crash: ${fault.type} ${JSON.stringify(value)}: ${(error as Error).message.split('\n')[0]}`)
          continue
        }
        if (performance.now() - started > 1_000) {
          tally.hangs++
          note(`slow: ${fault.type} ${JSON.stringify(value)}`)
        }
        if (o.error === undefined && !o.schemaOk) {
          tally.acceptedInvalid++
          note(`the parser accepts what the schema refuses: ${fault.type} ${JSON.stringify(value)}`)
        } else if (o.error !== undefined && o.schemaOk && !refinements[fault.type]?.test(o.error.shortMessage)) {
          tally.acceptedInvalid++
          note(`the schema accepts what the parser refuses: ${fault.type} ${JSON.stringify(value)}: ${o.error.shortMessage}`)
        }
      }
    }
    return tally
  },
}
