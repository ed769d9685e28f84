import type { Address } from 'viem'
import { InputError } from './errors.js'
import { onTeardown } from './lifecycle.js'
import type { Receipt } from './targets/chain.js'
import type { Devnet } from './targets/devnet.js'
import type { Rpc } from './targets/rpc.js'
import type { Prng } from './util/prng.js'

/** What a fault works on: an RPC to a process the toolkit started, names, a seeded PRNG. */
export type FaultContext = {
  rpc: Rpc
  prng: Prng
  /** Resolves a contract or account name from the scenario (or a 0x address) to an address. */
  resolve(nameOrAddress: string, field: string): Address
  /** Milliseconds since the experiment started (for tStart / tStop). */
  now(): number
  /** JSON-RPC fault proxies by name (`fork`, `upstream`, …), for the `rpc.*` faults. */
  rpcProxy?(name: string): RuleHost
  /** The devnet under test, for `node.*`, `net.*`, `byzantine.*` and `mempool.*` faults. */
  devnet?: Devnet
}

/** What the `rpc.*` faults need of a JSON-RPC fault proxy (src/proxy/jsonrpc). */
export type RuleHost = {
  name: string
  addRule(spec: unknown): string
  removeRule(id: string): void
  stats(): { requests: number; forwarded: number; byMethod: Record<string, { requests: number; errors: number }> }
}

/** What happened on the target while a fault was active, for `detect`. */
export type Observations = {
  steps: StepObservation[]
  /** Protocol views read before the fault and at the end of its window, by signature. */
  viewsBefore: Record<string, string>
  viewsAfter: Record<string, string>
}

export type StepObservation = {
  label: string
  ok: boolean
  reason?: string
  receipt?: Receipt
  /** Names of the protocol's signal events this step emitted. */
  signals?: string[]
}

/** `took`: the fault is in effect, as read back from the target. `seen`: what the system showed. */
export type Evidence = { took: string; seen: string | null }

/**
 * One fault primitive. `apply` does the damage and returns what `revert` needs; `revert` puts
 * things back (idempotent: the wrapper calls it at most once); `detect` says what the system
 * under test showed that it noticed. Params are validated by `parse` before anything is applied.
 */
export type FaultDefinition<Params, State> = {
  type: string
  /** One line for `forkchaos list` and the README. */
  summary: string
  /** JSON Schema of params, published in the scenario schema. */
  paramsSchema: Record<string, unknown>
  /** Validates raw params; throws `InputError` naming the field. */
  parse(raw: Record<string, unknown>, where: string): Params
  apply(ctx: FaultContext, target: string | undefined, params: Params): Promise<State>
  revert(ctx: FaultContext, state: State): Promise<void>
  detect(ctx: FaultContext, state: State, observations: Observations): Promise<Evidence>
  /** Runs before every step while the fault is active, to hold an effect the chain decays. */
  beforeStep?(ctx: FaultContext, state: State): Promise<void>
  /** Whether the fault needs a fresh fork instead of a snapshot (reorgs do). */
  needsFreshTarget?: boolean
  /**
   * Checks, before the target boots, what this machine must have for these params (a Debian
   * package for processes forkchaos did not write); throws `PrerequisiteMissingError`, which
   * ends the scenario `skipped` without booting anything.
   */
  prerequisites?(params: Params): void
}

/** A fault that has been applied: plain data plus its revert, as reports need it. */
export type ActiveFault = {
  type: string
  target: string | undefined
  params: Record<string, unknown>
  tStart: number
  tStop: number | null
  revert(): Promise<void>
  detect(observations: Observations): Promise<Evidence>
  beforeStep(): Promise<void>
}

// biome-ignore lint/suspicious/noExplicitAny: the registry holds faults of every param type
export type AnyFault = FaultDefinition<any, any>

/** Declares a fault; only here so TypeScript infers `Params` and `State` from the object. */
export function define<P, S>(definition: FaultDefinition<P, S>): FaultDefinition<P, S> {
  return definition
}

/**
 * Validates params, applies the fault and wraps it: timing (`tStart`, `tStop`), a revert that
 * runs at most once, and teardown on error, Ctrl-C and SIGTERM are handled here, once, for
 * every fault.
 */
/**
 * Runs every listed fault's `prerequisites` check (params parsed as `apply` would), so that a
 * scenario that cannot run here is skipped before anything starts.
 */
export function checkPrerequisites(registry: Record<string, AnyFault>, specs: { type: string; params?: Record<string, unknown> | undefined }[], where: string): void {
  for (const spec of specs) {
    const definition = registry[spec.type]
    if (definition?.prerequisites) definition.prerequisites(definition.parse(spec.params ?? {}, `${where} ${spec.type}`))
  }
}

export async function applyFault(
  fault: AnyFault,
  ctx: FaultContext,
  spec: { target?: string | undefined; params: Record<string, unknown> },
  where: string,
): Promise<ActiveFault> {
  const params = fault.parse(spec.params, where)
  const tStart = ctx.now()
  const state = await fault.apply(ctx, spec.target, params)
  let reverted: Promise<void> | undefined
  const active: ActiveFault = {
    type: fault.type,
    target: spec.target,
    params: spec.params,
    tStart,
    tStop: null,
    revert() {
      reverted ??= (async () => {
        unregister()
        await fault.revert(ctx, state)
        active.tStop = ctx.now()
      })()
      return reverted
    },
    detect: (observations) => fault.detect(ctx, state, observations),
    beforeStep: async () => {
      if (!reverted && fault.beforeStep) await fault.beforeStep(ctx, state)
    },
  }
  const unregister = onTeardown(`fault ${fault.type}`, () => active.revert())
  return active
}

// ── param helpers, shared by every fault's `parse` ────────────────────────────────────────

export function num(
  raw: Record<string, unknown>,
  key: string,
  where: string,
  range: { min?: number; max?: number; default?: number; integer?: boolean } = {},
): number {
  const value = raw[key] ?? range.default
  const bounds = `${range.min ?? '-∞'} and ${range.max ?? '∞'}`
  if (typeof value !== 'number' || !Number.isFinite(value) || (range.integer && !Number.isInteger(value)))
    throw new InputError(`\`${key}\` must be ${range.integer ? 'an integer' : 'a number'} between ${bounds}. Got \`${JSON.stringify(value)}\`.`, {
      context: { Where: where },
    })
  if ((range.min !== undefined && value < range.min) || (range.max !== undefined && value > range.max))
    throw new InputError(`\`${key}\` must be between ${bounds}. Got \`${value}\`.`, { context: { Where: where } })
  return value
}

export function str(raw: Record<string, unknown>, key: string, where: string, options: { default?: string; oneOf?: readonly string[] } = {}): string {
  const value = raw[key] ?? options.default
  if (typeof value !== 'string' || (options.oneOf && !options.oneOf.includes(value)))
    throw new InputError(
      `\`${key}\` must be ${options.oneOf ? `one of ${options.oneOf.map((o) => `"${o}"`).join(', ')}` : 'a string'}. Got \`${JSON.stringify(value)}\`.`,
      { context: { Where: where } },
    )
  return value
}

export function optionalStr(raw: Record<string, unknown>, key: string, where: string): string | undefined {
  return raw[key] === undefined ? undefined : str(raw, key, where)
}

export function requireTarget(target: string | undefined, type: string): string {
  if (!target) throw new InputError(`The fault \`${type}\` needs a \`target\` (a contract name or address).`)
  return target
}

/**
 * What the system under test showed while a fault was active, read the same way for every
 * fault: protocol views that changed, steps that reverted (with their reasons), and the
 * protocol's signal events (`protocol.signals` in the scenario).
 */
export function seenIn(observations: Observations): string | null {
  const seen: string[] = []
  for (const [view, before] of Object.entries(observations.viewsBefore)) {
    const after = observations.viewsAfter[view]
    if (after !== undefined && after !== before) seen.push(`${view}: ${before} → ${after}`)
  }
  for (const step of observations.steps) {
    if (!step.ok) seen.push(`${step.label} reverted${step.reason ? `: ${step.reason}` : ''}`)
    for (const signal of step.signals ?? []) seen.push(`${step.label} emitted ${signal}`)
  }
  return seen.length > 0 ? seen.slice(0, 8).join('; ') : null
}
