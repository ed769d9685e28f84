import { InputError } from '../../errors.js'
import type { Prng } from '../../util/prng.js'

/**
 * The shared toxic wrapper, after toxiproxy's model: every toxic has a name, a type, the
 * stream it acts on and a toxicity; its own attributes are declared by its definition
 * (one file per type under `toxics/`) and validated here, once, at the boundary.
 *
 * A toxic is data (`Toxic`). On each connection a proxy turns it into a `Stage` by calling
 * its definition's `create`; stages are chained per direction and hand bytes on through
 * `StageIo`.
 */

/** `upstream` acts on client → server bytes, `downstream` on server → client bytes. */
export type Stream = 'upstream' | 'downstream'
/** Both stream names, upstream first (toxiproxy's listing order). */
export const streams = ['upstream', 'downstream'] as const satisfies readonly Stream[]

/** An attribute's value: toxiproxy attributes are JSON numbers; forkchaos also allows booleans and enumerated strings. */
export type AttributeValue = number | boolean | string

/** One attribute of a toxic type: its JSON type, default and bounds. Units belong in `doc`. */
export type AttributeSpec =
  | { type: 'number'; default: number; min: number; max: number; integer?: boolean; doc: string }
  | { type: 'boolean'; default: boolean; doc: string }
  | { type: 'string'; default: string; values: readonly string[]; doc: string }

/**
 * Upper bounds shared by toxic attributes (a limit on everything): durations in milliseconds
 * at most one hour, sizes at most 1 MiB, a byte budget at most 1 TiB, a rate at most
 * 10,000,000 KB/s.
 */
export const ATTRIBUTE_LIMITS = {
  durationMs: 3_600_000,
  delayUs: 10_000_000,
  sizeBytes: 1_048_576,
  budgetBytes: 2 ** 40,
  rateKbPerS: 10_000_000,
} as const

/** A toxic type's attributes by name. */
export type AttributeSpecs = Record<string, AttributeSpec>

/** The validated attribute values a definition's `create` receives. */
export type AttributeValues<A extends AttributeSpecs> = { [K in keyof A]: ValueOf<A[K]> }

type ValueOf<S extends AttributeSpec> = S extends { type: 'number' }
  ? number
  : S extends { type: 'boolean' }
    ? boolean
    : S extends { values: readonly (infer V)[] }
      ? V
      : string

/** A toxic as the API shows it (toxiproxy's JSON shape). */
export type Toxic = {
  name: string
  type: string
  stream: Stream
  /** Probability, 0..1, that the toxic acts on a given connection. Default 1. */
  toxicity: number
  attributes: Record<string, AttributeValue>
}

/** What a stage hands its output to: the next stage in the chain, or the destination socket. */
export type StageIo = {
  /** Hands bytes on. */
  push(chunk: Buffer): void
  /** Ends the stream: the destination gets a FIN after everything pushed before. */
  end(): void
  /** Ends the stream like `end`, then closes the whole connection once the end reaches the destination. */
  close(): void
  /** Resets both sockets of the connection now (an RST where the platform allows). */
  reset(): void
}

/**
 * One toxic acting on one direction of one connection. `write` receives bytes in order;
 * `end` the source's FIN (default: pass it on). `flush` runs when the toxic is removed from a
 * live connection: hand on what is held and stop timers. `dispose` runs when the connection
 * goes away: stop timers, drop what is held. `buffered` counts held bytes toward the
 * connection's back-pressure limit. `update`, when present, takes new attributes in place
 * (keeping per-connection state, e.g. bytes counted); otherwise the stage is replaced.
 */
export type Stage<V = Record<string, AttributeValue>> = {
  write(chunk: Buffer): void
  end?(): void
  update?(attributes: V): void
  flush?(): void
  dispose?(): void
  buffered?(): number
}

/** One toxic type: its name, attributes and behaviour. Registered in `registry.ts`. */
export type ToxicDefinition<A extends AttributeSpecs = AttributeSpecs> = {
  type: string
  /** One line for docs and listings. */
  summary: string
  attributes: A
  /** Checks across attributes, after each was validated alone. Throws `ToxicInputError`. */
  validate?(attributes: AttributeValues<A>): void
  /** Builds the stage for one connection. `prng` is this toxic's stream on this connection. */
  create(attributes: AttributeValues<A>, prng: Prng, io: StageIo): Stage<AttributeValues<A>>
}

/** Identity helper that keeps attribute names and literal types for `create`. */
export function defineToxic<const A extends AttributeSpecs>(definition: ToxicDefinition<A>): ToxicDefinition<A> {
  return definition
}

/** Longest toxic or proxy name accepted. */
export const MAX_NAME_LENGTH = 64

/**
 * What a proxy or toxic name may be: 1 to 64 of `A-Z a-z 0-9 _ . -`, and not `.` or `..`.
 * Such a name is the same in a URL path with or without escaping, so every proxy and toxic
 * that can be created can also be read, updated and deleted by name.
 */
export const NAME_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/

/**
 * Parses a toxic from an API body (or code). Checks in toxiproxy's order: body, stream, name
 * (default `<type>_<stream>`), type, then attributes. A duplicate name is the caller's check.
 */
export function parseToxic(input: unknown, definitions: Readonly<Record<string, ToxicDefinition>>): Toxic {
  if (!isPlainObject(input)) throw new ToxicInputError(`A toxic must be a JSON object. Got ${show(input)}.`, 'body')
  const stream = input.stream ?? 'downstream'
  if (stream !== 'upstream' && stream !== 'downstream')
    throw new ToxicInputError(`"stream" must be "upstream" or "downstream". Got ${show(stream)}.`, 'stream')
  if (typeof input.type !== 'string' || input.type === '')
    throw new ToxicInputError(`"type" must be a toxic type name. Got ${show(input.type)}.`, 'type')
  const type = input.type
  const name = input.name === undefined || input.name === '' ? `${type}_${stream}` : parseName(input.name, 'name')
  const definition = Object.hasOwn(definitions, type) ? definitions[type] : undefined
  if (!definition) throw new UnknownToxicTypeError(type, Object.keys(definitions))
  const toxicity = input.toxicity === undefined ? 1 : parseToxicity(input.toxicity)
  const attributes = parseAttributes(definition, input.attributes, undefined)
  return { name, type, stream, toxicity, attributes }
}

/**
 * Applies an update body to an existing toxic: `attributes` are merged over the current ones,
 * `toxicity` replaces the current one; name, type and stream cannot change (toxiproxy
 * ignores them too).
 */
export function parseToxicUpdate(existing: Toxic, input: unknown, definition: ToxicDefinition): Toxic {
  if (!isPlainObject(input)) throw new ToxicInputError(`A toxic update must be a JSON object. Got ${show(input)}.`, 'body')
  const toxicity = input.toxicity === undefined ? existing.toxicity : parseToxicity(input.toxicity)
  const attributes = parseAttributes(definition, input.attributes, existing.attributes)
  return { ...existing, toxicity, attributes }
}

/** Validates attributes against a definition; missing ones come from `base`, then defaults. */
export function parseAttributes(definition: ToxicDefinition, raw: unknown, base: Record<string, AttributeValue> | undefined): Record<string, AttributeValue> {
  if (raw !== undefined && raw !== null && !isPlainObject(raw))
    throw new ToxicInputError(`"attributes" must be an object. Got ${show(raw)}.`, 'attributes')
  const given = (raw ?? {}) as Record<string, unknown>
  const known = Object.keys(definition.attributes)
  for (const key of Object.keys(given))
    if (!Object.hasOwn(definition.attributes, key))
      throw new ToxicInputError(
        `Unknown attribute ${show(key)} for toxic type "${definition.type}". Known: ${known.length > 0 ? known.join(', ') : '(none)'}.`,
        key,
      )
  const values: Record<string, AttributeValue> = {}
  for (const [key, spec] of Object.entries(definition.attributes)) {
    const value = given[key] !== undefined ? given[key] : base?.[key] !== undefined ? base[key] : spec.default
    values[key] = checkAttribute(key, spec, value)
  }
  definition.validate?.(values as never)
  return values
}

function checkAttribute(key: string, spec: AttributeSpec, value: unknown): AttributeValue {
  if (spec.type === 'boolean') {
    if (typeof value === 'boolean') return value
    throw new ToxicInputError(`"${key}" must be true or false. Got ${show(value)}.`, key)
  }
  if (spec.type === 'string') {
    if (typeof value === 'string' && spec.values.includes(value)) return value
    throw new ToxicInputError(`"${key}" must be one of ${spec.values.map((v) => `"${v}"`).join(', ')}. Got ${show(value)}.`, key)
  }
  const ok = typeof value === 'number' && Number.isFinite(value) && (!spec.integer || Number.isInteger(value)) && value >= spec.min && value <= spec.max
  if (ok) return value
  throw new ToxicInputError(`"${key}" must be ${spec.integer ? 'an integer' : 'a number'} between ${spec.min} and ${spec.max}. Got ${show(value)}.`, key)
}

function parseToxicity(value: unknown): number {
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0 && value <= 1) return value
  throw new ToxicInputError(`"toxicity" must be a number between 0 and 1. Got ${show(value)}.`, 'toxicity')
}

/** A proxy or toxic name (`NAME_PATTERN`), or `ToxicInputError` naming `field`. */
export function parseName(value: unknown, field: string): string {
  if (typeof value === 'string' && NAME_PATTERN.test(value) && value !== '.' && value !== '..') return value
  throw new ToxicInputError(
    `"${field}" must be 1 to ${MAX_NAME_LENGTH} characters of A-Z, a-z, 0-9, "_", "." and "-", other than "." and "..". Got ${show(value)}.`,
    field,
  )
}

/** A JSON object (not null, not an array). */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** A value as it appears in an error message: JSON, cut short. Never throws. */
export function show(value: unknown): string {
  let text: string
  try {
    text = value === undefined ? 'undefined' : (JSON.stringify(value) ?? String(value))
  } catch {
    // Too deep, circular or a BigInt: say what it is rather than fail while reporting.
    text = Array.isArray(value) ? '[…]' : typeof value === 'object' ? '{…}' : typeof value
  }
  return text.length > 80 ? `${text.slice(0, 77)}...` : text
}

/**
 * Runs `fn` after `ms` milliseconds, even past setTimeout's 2^31-1 ms ceiling (a longer wait
 * is chained). The timer does not keep the process alive. Returns a cancel function.
 */
export function startTimer(ms: number, fn: () => void): () => void {
  const MAX_TIMEOUT_MS = 2 ** 31 - 1
  const dueMs = performance.now() + ms
  let timer: NodeJS.Timeout | undefined
  const arm = () => {
    const waitMs = Math.min(MAX_TIMEOUT_MS, Math.max(0, dueMs - performance.now()))
    timer = setTimeout(() => {
      if (performance.now() < dueMs) arm()
      else fn()
    }, waitMs)
    timer.unref()
  }
  arm()
  return () => clearTimeout(timer)
}

/**
 * A FIFO of byte chunks (and at most one end marker) released at set times, on the
 * `performance.now()` clock, never out of order and never early. Latency, bandwidth and
 * slicer stages hold data in one of these.
 */
export type TimedQueue = {
  /** Queues bytes to go out at `dueMs`, or later if something queued before is due later. */
  push(chunk: Buffer, dueMs: number): void
  /** Queues the end of the stream after everything queued. */
  end(): void
  /** The due time of the last item queued so far (it stays after the queue drains). */
  tailMs(): number
  buffered(): number
  /** Releases everything now. */
  flush(): void
  /** Drops everything and stops the timer. */
  dispose(): void
}

/** A `TimedQueue` that releases into `io`. */
export function createTimedQueue(io: StageIo): TimedQueue {
  type Item = { dueMs: number; chunk: Buffer | null }
  let items: Item[] = []
  let head = 0
  let held = 0
  let tail = Number.NEGATIVE_INFINITY
  let timer: NodeJS.Timeout | undefined
  let disposed = false

  const emit = (item: Item) => {
    if (item.chunk === null) io.end()
    else {
      held -= item.chunk.length
      io.push(item.chunk)
    }
  }
  const release = () => {
    timer = undefined
    const now = performance.now()
    while (head < items.length && (items[head] as Item).dueMs <= now) {
      const item = items[head++] as Item
      emit(item)
      if (disposed) return
    }
    compact()
    arm()
  }
  const compact = () => {
    if (head === items.length) {
      items = []
      head = 0
    } else if (head > 1024 && head * 2 > items.length) {
      items = items.slice(head)
      head = 0
    }
  }
  const arm = () => {
    if (timer || disposed || head >= items.length) return
    // setTimeout takes at most 2^31-1 ms; a longer wait just re-arms.
    const waitMs = Math.min(2 ** 31 - 1, Math.max(1, Math.ceil((items[head] as Item).dueMs - performance.now())))
    timer = setTimeout(release, waitMs)
    timer.unref()
  }
  return {
    push(chunk, dueMs) {
      if (disposed) return
      const due = Math.max(dueMs, tail)
      tail = due
      if (head >= items.length && due <= performance.now()) {
        io.push(chunk)
        return
      }
      held += chunk.length
      items.push({ dueMs: due, chunk })
      arm()
    },
    end() {
      if (disposed) return
      if (head >= items.length) {
        io.end()
        return
      }
      items.push({ dueMs: tail, chunk: null })
    },
    tailMs: () => tail,
    buffered: () => held,
    flush() {
      if (timer) clearTimeout(timer)
      timer = undefined
      const pending = items.slice(head)
      items = []
      head = 0
      for (const item of pending) emit(item)
    },
    dispose() {
      disposed = true
      if (timer) clearTimeout(timer)
      timer = undefined
      items = []
      head = 0
      held = 0
    },
  }
}

/** Bad toxic input: names the field (`latency`, `stream`, `toxicity`, …). Exit code 2. */
export class ToxicInputError extends InputError {
  override name = 'ToxicInputError'
  constructor(
    message: string,
    readonly field: string,
  ) {
    super(message)
  }
}

/** A toxic type that is not registered. */
export class UnknownToxicTypeError extends InputError {
  override name = 'UnknownToxicTypeError'
  constructor(
    readonly type: string,
    known: string[],
  ) {
    super(`Unknown toxic type ${show(type)}. Known: ${known.join(', ')}.`)
  }
}
