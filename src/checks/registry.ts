import type { AnyCheck, DevnetSeries, ForkCheckSeries, Outcome, ParamsOf, Window } from '../Check.js'
import { InputError } from '../errors.js'
import type { ForkProbe, ForkSeries, Read } from '../probes/fork.js'
import type { RunContext } from '../scenario/context.js'
import { kind, name, phases } from '../scenario/schema-parts.js'
import type { CheckKind, Phase, Protocol } from '../scenario/types.js'
import { hasField, type ProtocolField } from '../scenario/protocol.js'
import type { Problem } from '../scenario/values.js'
import { bountyCapped } from './bounty-capped.js'
import { cycleAtomic } from './cycle-atomic.js'
import { cyclesSucceed } from './cycles-succeed.js'
import { catchUp } from './devnet/catch-up.js'
import { driftRejected } from './devnet/drift-rejected.js'
import { evidence } from './devnet/evidence.js'
import { honestNotAccused } from './devnet/honest-not-accused.js'
import { inclusion } from './devnet/inclusion.js'
import { memory } from './devnet/memory.js'
import { keepsCommitted } from './devnet/keeps-committed.js'
import { mustStall } from './devnet/must-stall.js'
import { noFork } from './devnet/no-fork.js'
import { progress } from './devnet/progress.js'
import { rejects } from './devnet/rejects.js'
import { flashRepaid } from './flash-repaid.js'
import { keeperLoad } from './keeper-load.js'
import { module } from './module.js'
import { reverts } from './reverts.js'
import { riskMode } from './risk-mode.js'
import { sharePriceFloor } from './share-price-floor.js'
import { view } from './view.js'

/**
 * Every check kind a scenario can name, by its key in the file, for the fork and the devnet:
 * `noFork` lives in checks/devnet/no-fork.ts, `sharePriceFloor` in checks/share-price-floor.ts.
 */
export const checks = {
  sharePriceFloor,
  cycleAtomic,
  bountyCapped,
  flashRepaid,
  cyclesSucceed,
  riskMode,
  view,
  reverts,
  progress,
  noFork,
  mustStall,
  keepsCommitted,
  catchUp,
  rejects,
  driftRejected,
  evidence,
  honestNotAccused,
  memory,
  inclusion,
  keeperLoad,
  module,
} as const satisfies Record<string, AnyCheck>

export type CheckName = keyof typeof checks
export const checkNames = Object.keys(checks) as CheckName[]

/** One line each, for `forkchaos list` and the README. */
export const checkDocs = Object.fromEntries(checkNames.map((n) => [n, checks[n].summary])) as Record<CheckName, string>

/**
 * A check as written in a scenario file: a name, safety or liveness, the phases it judges
 * (default all), and exactly one check kind with its params. Derived from the registry.
 */
export type CheckSpec = {
  name: string
  kind: CheckKind
  phases?: Phase[]
  /** Fork checks: judged after every step as well as at the phase's end; the first step that broke it is named. */
  always?: boolean
  /**
   * Devnet checks: judged over one scheduled fault's window only, from its `fault` step's apply
   * to its revert (the id of an `inject.steps` fault); its phases are then `[inject]`.
   */
  during?: string
} & { [K in CheckName]?: ParamsOf<(typeof checks)[K]> }

/** The JSON Schema of one check, published in the scenario schema: exactly one kind of the registry. */
export const checkSchema = {
  type: 'object',
  required: ['name', 'kind'],
  properties: {
    name,
    kind,
    phases: { type: 'array', items: phases, minItems: 1, maxItems: 3 },
    always: { type: 'boolean', description: "Fork checks: judged after every step too, not only at the phase's end; the report names the first step after which it broke." },
    during: { type: 'string', minLength: 1, maxLength: 64, description: "Devnet checks: judged over one scheduled fault's window, from the apply of the `inject.steps` fault with this id to its revert (phases then `[inject]`)." },
    ...Object.fromEntries(checkNames.map((n) => [n, checks[n].params])) },
  additionalProperties: false,
  oneOf: checkNames.map((key) => ({ required: [key] })),
}

/** A check spec's kind (its one registry key) and params. */
export function checkKindOf(spec: CheckSpec): { kind: CheckName; params: unknown } {
  const key = checkNames.find((k) => spec[k] !== undefined)
  if (!key) throw new InputError(`check \`${spec.name}\` names no check kind.`)
  return { kind: key, params: spec[key] }
}

/** The target kind a check spec applies to. */
export const checkTargetOf = (spec: CheckSpec) => checks[checkKindOf(spec).kind].target

/**
 * Fork checks: takes the reads these checks ask for at the end of `window` (views, simulated
 * calls, traces, user modules), on the fork probe. Call before `evaluateCheck` for the window.
 */
export async function sampleForkChecks(ctx: RunContext, probe: ForkProbe, specs: readonly CheckSpec[], window: Window): Promise<void> {
  const asks = specs.flatMap((spec) => {
    const { kind: key, params } = checkKindOf(spec)
    const definition = checks[key] as AnyCheck
    if (definition.target !== 'fork' || !definition.prepare) return []
    const prepare = definition.prepare
    return [{ name: spec.name, prepare: () => prepare(params, ctx) }]
  })
  if (asks.length > 0) await probe.sampleEnd(window, asks)
}

/** The reads fork checks take once before the baseline (their `start`), by check name, for the probe's `readStart`. */
export function startReads(ctx: RunContext, specs: readonly CheckSpec[]): { name: string; reads: Read[] }[] {
  return specs.flatMap((spec) => {
    const { kind: key, params } = checkKindOf(spec)
    const definition = checks[key] as AnyCheck
    if (definition.target !== 'fork' || !definition.start) return []
    return [{ name: spec.name, reads: definition.start(params, ctx) }]
  })
}

/**
 * What a check needs of the scenario that the file does not give, at load: a protocol field it
 * reads (`needs`), or a problem of its body (`validate`). `field` is the check's path
 * (`checks[2]`); the problem's field is the path to the offending part.
 */
export function checkProblem(spec: CheckSpec, protocol: Protocol, field: string): Problem | undefined {
  const { kind: key, params } = checkKindOf(spec)
  const definition = checks[key] as AnyCheck
  const own = definition.validate?.(params, `${field}.${key}`)
  if (own) return own
  const needs = typeof definition.needs === 'function' ? definition.needs(params) : (definition.needs ?? [])
  for (const need of needs) {
    const options = (typeof need === 'string' ? [need] : need) as readonly ProtocolField[]
    if (options.some((f) => hasField(protocol, f))) continue
    const named = options.map((f) => (f === 'bountyEvent.cap' ? 'a `cap` field in `protocol.bountyEvent` (`bountyEvent: { event: …, cap: "<field>" }`)' : `\`protocol.${f}\``)).join(' or ')
    return { message: `\`${field}.${key}\` (check \`${spec.name}\`) needs ${named}, which this scenario's \`protocol\` block does not give.`, field: `${field}.${key}` }
  }
  return undefined
}

/** How a check's observation starts when its reads failed (a view that reverted): it could not be judged. */
export const unreadPrefix = 'the check could not be evaluated'

/** How a check's observation starts when it was judged on a read taken after the faults were reverted (`Session.rereadsUnread`). */
export const rereadPrefix = 'not readable under the fault'

/**
 * Judges one check over a window of its target's series. A check that cannot be judged (a view
 * that reverted, a protocol function it needs but the scenario does not name) is a failed
 * outcome that says why; a bad name in the file is an `InputError`.
 */
export function evaluateCheck(spec: CheckSpec, series: ForkSeries | DevnetSeries, window: Window): Outcome {
  const { kind: key, params } = checkKindOf(spec)
  const definition = checks[key] as AnyCheck
  try {
    if (definition.target === 'devnet') return definition.evaluate(series as DevnetSeries, window, params)
    const fork = series as ForkSeries
    if (!definition.prepare) return definition.evaluate({ ...fork, reads: [] } satisfies ForkCheckSeries, window, params)
    const end = fork.ends.find((e) => e.t === window.to)?.byCheck[spec.name]
    if (!end) throw new Error('the probe took no reads at the end of this window (sampleForkChecks was not called)')
    if ('error' in end) throw end.error
    return definition.evaluate({ ...fork, reads: end.reads, startReads: fork.startByCheck[spec.name] ?? [] } satisfies ForkCheckSeries, window, end.params)
  } catch (error) {
    if (error instanceof InputError) throw error
    return { ok: false, observed: `${unreadPrefix}: ${(error as Error).message}`, expected: spec.name }
  }
}
