import type { Capability } from './targets/engine.js'
import type { Probe } from './scenario/devnet-probe.js'
import type { ForkSeries, Read, ReadResult } from './probes/fork.js'
import type { RunContext } from './scenario/context.js'
import type { ProtocolField } from './scenario/protocol.js'
import type { Phase } from './scenario/types.js'
import type { Problem } from './scenario/values.js'

/** What a check needs of the protocol block: fields, or lists of alternatives. */
export type Needs = readonly (ProtocolField | readonly ProtocolField[])[]

/** A check's verdict on one window: whether it held, what was seen, what was expected. */
export type Outcome = {
  ok: boolean
  observed: string
  expected: string
  /** Numbers the check measured on the way, for the report (`catchUpMs`, `rejectionLatencyMs`). */
  metrics?: Record<string, number | null>
}

/**
 * The time a check judges, in ms on the target probe's clock: a phase (or a stop condition's
 * look during one), from its start to now. `revertedAt` is when the faults were reverted
 * (recover windows).
 */
export type Window = { phase: Phase; from: number; to: number; revertedAt?: number }

/** The target kinds a check can apply to: each has its own probe and series. */
export type CheckTarget = 'fork' | 'devnet'

/** What a fork check reads: the fork probe's series, and the answers to its own reads at the window's end. */
export type ForkCheckSeries = ForkSeries & {
  reads: ReadResult[]
  /** The answers to the check's `start` reads, taken before the baseline (a value relative checks compare with). */
  startReads?: ReadResult[]
}

/** What a devnet check reads: the devnet probe's series and the devnet's shape. */
export type DevnetSeries = {
  probe: Probe
  slotMs: number
  /** Validators in the devnet, n = 3f + 1. */
  validators: number
  /** The validators whose agreement the safety checks judge. */
  honest: number[]
  /** Honest transactions' send → receipt times (ms) while the faults ran. */
  inclusionMs: number[]
}

export type SeriesOf<T extends CheckTarget> = T extends 'fork' ? ForkCheckSeries : DevnetSeries

/**
 * One check kind. `params` is the JSON Schema of its body in a scenario file (`sharePriceFloor:
 * { minBps: 9950 }`). A fork check may `prepare` its params once per window end: bind names to
 * addresses, name the protocol functions it needs, and list what the fork probe must read then.
 * `evaluate` is a pure function of the series: it reads, never acts.
 */
export type CheckDefinition<Name extends string, T extends CheckTarget, Params, Prepared = Params> = {
  name: Name
  target: T
  /** One line for `forkchaos list` and the README. */
  summary: string
  /** JSON Schema of the body. */
  params: Record<string, unknown>
  /**
   * Fork checks: the protocol fields the check reads, checked at load (a check whose protocol
   * block lacks one is refused, exit 2). Each entry is a field or a list of alternatives (any one
   * will do); a function of the body when that depends on it.
   */
  needs?: Needs | ((params: Params) => Needs)
  /** What it needs of the fork engine (a call tracer); an engine without it is refused at load. */
  engineNeeds?: readonly Capability[]
  /** Problems of the body the schema cannot see (a view's arity and argument types), checked at load; `field` is the body's path. */
  validate?(params: Params, field: string): Problem | undefined
  /**
   * Fork checks: the params with names resolved, and the reads to take at the window's end.
   * Throws `InputError` for a name that does not resolve, `Error` for what the protocol lacks.
   */
  prepare?(params: Params, ctx: RunContext): { params: Prepared; reads: Read[] }
  /** Fork checks: reads to take once, before the baseline (the values a check relative to the baseline compares with). */
  start?(params: Params, ctx: RunContext): Read[]
  evaluate(series: SeriesOf<T>, window: Window, params: Prepared): Outcome
}

// biome-ignore lint/suspicious/noExplicitAny: the registry holds checks of every param type
export type AnyCheck = CheckDefinition<string, CheckTarget, any, any>

/** The body type of a check definition. */
export type ParamsOf<C> = C extends CheckDefinition<string, CheckTarget, infer P, infer _> ? P : never

/** Declares a check; only here so TypeScript infers its types from the object (params from `prepare`, or from `evaluate` without one). */
export function define<const Name extends string, T extends CheckTarget, Params, Prepared>(
  definition: CheckDefinition<Name, T, Params, Prepared> & { prepare(params: Params, ctx: RunContext): { params: Prepared; reads: Read[] } },
): CheckDefinition<Name, T, Params, Prepared>
export function define<const Name extends string, T extends CheckTarget, Params>(definition: Omit<CheckDefinition<Name, T, Params, Params>, 'prepare'>): CheckDefinition<Name, T, Params, Params>
export function define(definition: AnyCheck): AnyCheck {
  return definition
}

/** The value of a read, or its error thrown (the check then could not be evaluated, and says why). */
export function valueOf<T>(result: ReadResult | undefined): T {
  if (!result) throw new Error('the probe took no such read')
  if (!result.ok) throw result.error
  return result.value as T
}

/** Throws when the protocol description lacks a function a check needs. */
export function need<V>(value: V | undefined, field: string): V {
  if (!value) throw new Error(`this check needs \`protocol.${field}\``)
  return value
}
