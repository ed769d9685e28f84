import { InputError } from './errors.js'

/**
 * A params spec: one declaration that gives a unit's JSON Schema (published in the scenario
 * schema), its parser (typed values out, an error naming the field and the expected value
 * otherwise) and its `forkchaos list` text. Faults declare their params with it; checks and
 * steps can.
 *
 * ```ts
 * const params = Params.object({
 *   bps: Params.number({ min: 0, max: 9_999, description: 'Move in basis points.' }),
 *   direction: Params.oneOf(['up', 'down'], { default: 'down' }),
 * })
 * type P = Params.Infer<typeof params> // { bps: number; direction: 'up' | 'down' }
 * ```
 *
 * Every bound the parser enforces is in the schema, and the other way round, with two
 * exceptions the schema cannot state, both declared where they are used: `refine` (a check
 * over the whole value, such as "no validator in two groups"; its note goes into the schema's
 * `description`) and bounds taken from the target at load (`validators`: a validator id must
 * be below the scenario's validator count; the schema holds the global maximum). The domain is
 * JSON: NaN and ±Infinity never reach a parser (the YAML loader and JSON refuse them).
 */
export type Spec<T> = {
  /** JSON Schema of the value. */
  readonly schema: JsonSchema
  /** Whether an object must have the key: no default and not `optional`. */
  readonly required: boolean
  /** The raw default, parsed like a given value when the key is absent. */
  readonly default?: unknown
  /** One phrase for `forkchaos list`: `integer 1–64, default 1`. */
  readonly text: string
  /** Checks and converts a raw value (never `undefined` here: absent keys are the object's). */
  parse(value: unknown, at: ParseContext): T
  /** An object spec's fields and its rules over them (`exactlyOne`, `atMostOne`), for `describeParams`. */
  readonly fields?: Readonly<Record<string, Spec<unknown>>>
  readonly rules?: readonly string[]
}

export type JsonSchema = Record<string, unknown>

/** Where a value sits (for messages) and the bounds the target sets. */
export type ParseContext = {
  /** Field path below the params object: `['groups', 1, 0]`. */
  path: Path
  /** How many validators the devnet has; validator ids must be below it. Default: the global maximum. */
  validators?: number
}

export type Path = readonly (string | number)[]

/** The parsed type of a spec. */
export type Infer<S> = S extends Spec<infer T> ? T : never

type Common<T> = { description?: string; default?: T }

/** An integer in [`min`, `max`] (both required: a limit on everything). */
export function integer(o: Common<number> & { min: number; max: number; unit?: string }): Spec<number> {
  return numeric({ ...o, integer: true })
}

/** A finite number in [`min`, `max`], or (`exclusiveMin`) above `min`. */
export function number(o: Common<number> & { min: number; max: number; exclusiveMin?: boolean; unit?: string }): Spec<number> {
  return numeric({ ...o, integer: false })
}

function numeric(o: Common<number> & { min: number; max: number; exclusiveMin?: boolean; integer: boolean; unit?: string }): Spec<number> {
  const kind = o.integer ? 'an integer' : 'a number'
  const low = o.exclusiveMin ? `above ${o.min}` : `${o.min}`
  const range = o.exclusiveMin ? `${kind} above ${o.min} and at most ${o.max}` : `${kind} between ${o.min} and ${o.max}`
  return leaf<number>({
    schema: { type: o.integer ? 'integer' : 'number', [o.exclusiveMin ? 'exclusiveMinimum' : 'minimum']: o.min, maximum: o.max },
    o,
    text: `${o.integer ? 'integer' : 'number'} ${o.exclusiveMin ? `> ${o.min}` : low}–${o.max}${o.unit ? ` ${o.unit}` : ''}`,
    parse(value, at) {
      if (typeof value !== 'number' || !Number.isFinite(value) || (o.integer && !Number.isInteger(value))) throw fail(at, `must be ${range}`, value)
      if (o.exclusiveMin ? value <= o.min : value < o.min) throw fail(at, o.exclusiveMin ? `must be greater than ${o.min}` : `must be at least ${o.min}`, value)
      if (value > o.max) throw fail(at, `must be at most ${o.max}`, value)
      return value
    },
  })
}

/** A string of at most `maxLength` characters (code points, as JSON Schema counts them). */
export function string(o: Common<string> & { maxLength: number; minLength?: number; pattern?: { regex: string; expected: string } }): Spec<string> {
  const pattern = o.pattern ? new RegExp(o.pattern.regex, 'u') : undefined
  return leaf<string>({
    schema: { type: 'string', ...(o.minLength ? { minLength: o.minLength } : {}), maxLength: o.maxLength, ...(o.pattern ? { pattern: o.pattern.regex } : {}) },
    o,
    text: `${o.pattern ? o.pattern.expected : 'string'} (≤ ${o.maxLength} chars)`,
    parse(value, at) {
      if (typeof value !== 'string') throw fail(at, o.pattern ? `must be ${o.pattern.expected}` : 'must be a string', value)
      const length = [...value].length
      if (o.minLength && length < o.minLength) throw fail(at, o.minLength === 1 ? 'must not be empty' : `must be at least ${o.minLength} characters long`, value)
      if (length > o.maxLength) throw new ParamsError(`\`${name(at.path)}\` must be at most ${o.maxLength} characters long. Got ${length}.`, at.path)
      if (pattern && !pattern.test(value)) throw fail(at, `must be ${o.pattern?.expected}`, value)
      return value
    },
  })
}

/** One of a few literal values (strings or numbers). */
export function oneOf<const V extends string | number>(values: readonly V[], o: Common<V> = {}): Spec<V> {
  const listed = values.map((v) => JSON.stringify(v)).join(', ')
  return leaf<V>({
    schema: { enum: [...values] },
    o,
    text: values.map((v) => JSON.stringify(v)).join(' | '),
    parse(value, at) {
      if (!values.includes(value as V)) throw fail(at, `must be one of ${listed}`, value)
      return value as V
    },
  })
}

export function boolean(o: Common<boolean> = {}): Spec<boolean> {
  return leaf<boolean>({
    schema: { type: 'boolean' },
    o,
    text: 'true | false',
    parse(value, at) {
      if (typeof value !== 'boolean') throw fail(at, 'must be true or false', value)
      return value
    },
  })
}

/** A list of `item`s, between `minItems` and `maxItems` long; `unique`: no value twice. */
export function array<T>(item: Spec<T>, o: { minItems?: number; maxItems: number; unique?: boolean; description?: string; default?: unknown[] }): Spec<T[]> {
  const min = o.minItems ?? 0
  return leaf<T[]>({
    schema: { type: 'array', items: item.schema, ...(min ? { minItems: min } : {}), maxItems: o.maxItems, ...(o.unique ? { uniqueItems: true } : {}) },
    o: o as Common<T[]>,
    text: `list of ${item.schema.type === 'array' ? `[${item.text}]` : item.text} (${min ? `${min}–` : 'at most '}${o.maxItems} items${o.unique ? ', no repeats' : ''})`,
    parse(value, at) {
      if (!Array.isArray(value)) throw fail(at, `must be a list of ${item.text}`, value)
      if (value.length < min) throw fail(at, `must have at least ${min} item${min === 1 ? '' : 's'}`, value)
      if (value.length > o.maxItems) throw new ParamsError(`\`${name(at.path)}\` must have at most ${o.maxItems} items. Got ${value.length}.`, at.path)
      const out = value.map((v, i) => item.parse(v, { ...at, path: [...at.path, i] }))
      if (o.unique) {
        const first = new Map<string, number>()
        for (const [i, v] of value.entries()) {
          const key = JSON.stringify(v)
          const earlier = first.get(key)
          if (earlier !== undefined) throw fail(at, `must not repeat an item (items ${earlier} and ${i} are equal)`, value)
          first.set(key, i)
        }
      }
      return out
    },
  })
}

/**
 * The params object: only the listed keys; each required unless it has a default or is
 * `optional`. `exactlyOne`: of these (optional) keys, exactly one must be given; `atMostOne`:
 * no two of them together. Both are in the schema (`oneOf` / `not`) as in the parser.
 */
export function object<const Shape extends Record<string, Spec<unknown>>>(
  shape: Shape,
  o: { exactlyOne?: readonly (keyof Shape & string)[]; atMostOne?: readonly (keyof Shape & string)[] } = {},
): Spec<{ [K in keyof Shape]: Infer<Shape[K]> }> {
  const keys = Object.keys(shape)
  const required = keys.filter((k) => shape[k]?.required)
  type Out = { [K in keyof Shape]: Infer<Shape[K]> }
  const pairs = (list: readonly string[]) => list.flatMap((a, i) => list.slice(i + 1).map((b) => [a, b]))
  const listed = (list: readonly string[]) => list.map((k) => `\`${k}\``).join(', ')
  return {
    schema: {
      type: 'object',
      additionalProperties: false,
      ...(required.length ? { required } : {}),
      properties: Object.fromEntries(keys.map((k) => [k, shape[k]?.schema])),
      ...(o.exactlyOne ? { oneOf: o.exactlyOne.map((k) => ({ required: [k] })) } : {}),
      ...(o.atMostOne ? { not: { anyOf: pairs(o.atMostOne).map((pair) => ({ required: pair })) } } : {}),
    },
    required: required.length > 0,
    text: keys.length ? keys.join(', ') : 'no params',
    fields: shape,
    rules: [...(o.exactlyOne ? [`exactly one of ${listed(o.exactlyOne)}`] : []), ...(o.atMostOne ? [`at most one of ${listed(o.atMostOne)}`] : [])],
    parse(value, at) {
      if (!value || typeof value !== 'object' || Array.isArray(value)) throw fail(at, 'must be a mapping of params', value)
      const raw = value as Record<string, unknown>
      const unknown = Object.keys(raw).find((k) => !Object.hasOwn(shape, k))
      if (unknown !== undefined)
        throw new ParamsError(
          `\`${name([...at.path, unknown])}\` is not a known param; ${keys.length ? `expected ${keys.map((k) => `\`${k}\``).join(', ')}` : 'this fault takes none'}.`,
          [...at.path, unknown],
        )
      const given = (list: readonly string[]) => list.filter((k) => raw[k] !== undefined)
      if (o.exactlyOne && given(o.exactlyOne).length !== 1) throw fail(at, `must have exactly one of ${listed(o.exactlyOne)}`, value)
      if (o.atMostOne && given(o.atMostOne).length > 1) throw fail(at, `must not have ${listed(given(o.atMostOne))} together`, value)
      const out: Record<string, unknown> = {}
      for (const key of keys) {
        const spec = shape[key] as Spec<unknown>
        const path = [...at.path, key]
        const given = Object.hasOwn(raw, key) ? raw[key] : undefined
        if (given === undefined && spec.required) throw new ParamsError(`\`${name(path)}\` is required.`, path)
        out[key] = given === undefined && !('default' in spec) ? undefined : spec.parse(given === undefined ? spec.default : given, { ...at, path })
      }
      return out as Out
    },
  }
}

/** The spec with an absent key allowed: the value is then `undefined`. */
export function optional<T>(spec: Spec<T>): Spec<T | undefined> {
  return { ...spec, required: false, text: `${spec.text}, optional` }
}

/** Converts the parsed value (a signature to a selector, a number to a bigint). */
export function map<T, U>(spec: Spec<T>, convert: (value: T, at: ParseContext) => U): Spec<U> {
  return { ...spec, parse: (value, at) => convert(spec.parse(value, at), at) }
}

/**
 * A check JSON Schema cannot state (`note`, appended to the schema's description, says what
 * it is). `check` returns what is wrong (completing "`field` …") or undefined.
 */
export function refine<T>(spec: Spec<T>, note: string, check: (value: T) => string | undefined): Spec<T> {
  const description = typeof spec.schema.description === 'string' ? `${spec.schema.description} ${note}` : note
  return {
    ...spec,
    // The note is in the description, which `describeParams` shows: not in `text` as well.
    schema: { ...spec.schema, description },
    parse(value, at) {
      const parsed = spec.parse(value, at)
      const problem = check(parsed)
      if (problem !== undefined) throw fail(at, problem, value)
      return parsed
    },
  }
}

/**
 * One line per param for `forkchaos list`, from each field's own text
 * (`bps: number 0–9999, required. Move in basis points.`), then the object's rules.
 */
export function describeParams(spec: Spec<unknown>): string[] {
  const lines = Object.entries(spec.fields ?? {}).map(([key, field]) => {
    const description = typeof field.schema.description === 'string' ? `. ${field.schema.description}` : ''
    return `${key}: ${field.text}${field.required ? ', required' : ''}${description}`
  })
  return [...lines, ...(spec.rules ?? []).map((rule) => `(${rule})`)]
}

/** A leaf spec: the schema gets `description` and `default`; a default makes the key optional. */
function leaf<T>(d: { schema: JsonSchema; o: Common<T>; text: string; parse(value: unknown, at: ParseContext): T }): Spec<T> {
  const hasDefault = d.o.default !== undefined
  return {
    schema: { ...d.schema, ...(d.o.description ? { description: d.o.description } : {}), ...(hasDefault ? { default: d.o.default } : {}) },
    required: !hasDefault,
    ...(hasDefault ? { default: d.o.default } : {}),
    text: hasDefault ? `${d.text}, default ${JSON.stringify(d.o.default)}` : d.text,
    parse: d.parse,
  }
}

/** `groups[1][0]`; the params object itself is `params`. */
export function name(path: Path): string {
  if (path.length === 0) return 'params'
  return path.reduce<string>((acc, s) => (typeof s === 'number' ? `${acc}[${s}]` : acc ? `${acc}.${s}` : s), '')
}

export function fail(at: ParseContext, expected: string, value: unknown): ParamsError {
  return new ParamsError(`\`${name(at.path)}\` ${expected}. Got \`${preview(value)}\`.`, at.path)
}

const preview = (value: unknown) => {
  const s = JSON.stringify(value) ?? String(value)
  return s.length > 80 ? `${s.slice(0, 77)}…` : s
}

/** A param that does not meet its spec; `path` is below the params object, for the file's line. */
export class ParamsError extends InputError {
  override name = 'ParamsError'
  readonly path: Path
  constructor(message: string, path: Path, options: { context?: Record<string, string | number | undefined> } = {}) {
    super(message, options)
    this.path = path
  }
}
