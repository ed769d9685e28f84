import type { Capability } from './targets/engine.js'
import type { Address } from 'viem'
import { InputError } from './errors.js'
import type { DevnetObservations } from './experiment/observations.js'
import type { EngineEvidence } from './faults/byzantine/engine.js'
import { onTeardown } from './lifecycle.js'
import { describeParams, type JsonSchema, ParamsError, type Spec } from './Params.js'
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
  /** Devnet targets: what the devnet probe saw over the inject window (src/experiment/observations.ts). */
  devnet?: DevnetObservations
}

export type StepObservation = {
  label: string
  ok: boolean
  reason?: string
  receipt?: Receipt
  /** Names of the protocol's signal events this step emitted. */
  signals?: string[]
}

/**
 * `took`: the fault is in effect, as read back from the target. `seen`: what the system showed.
 * `engine`: an Engine API byzantine fault's record (tampered blocks, each honest EL's
 * newPayload answer, whether a bad block is canonical anywhere), kept in report.json.
 */
export type Evidence = { took: string; seen: string | null; engine?: EngineEvidence }

/**
 * What a fault needs of the system under test: `fork` (an Anvil fork: contracts, storage,
 * time), `devnet` (validator processes and the links between them), or `proxy` (a JSON-RPC
 * fault proxy, in front of a fork or reached through the chaos API). A scenario takes the
 * faults its target kind accepts (`acceptedFaultTargets`); any other is an exit-2 load error.
 */
export type FaultTarget = 'fork' | 'devnet' | 'proxy'

/** Which fault targets a scenario of each kind accepts. */
export const acceptedFaultTargets: Record<'fork' | 'devnet', readonly FaultTarget[]> = { fork: ['fork', 'proxy'], devnet: ['devnet'] }

/**
 * One fault primitive, as declared. `params` is its one params declaration (src/Params.ts):
 * the JSON Schema, the parser and the `list` text all come from it. `apply` does the damage
 * and returns what `revert` needs; `revert` puts things back (idempotent: the wrapper calls it
 * at most once); `detect` says what the system under test showed that it noticed.
 */
export type FaultDeclaration<Params, State> = {
  type: string
  /** One line for `forkchaos list` and the README. */
  summary: string
  /** What the fault works on; checked against the scenario's target kind at load. */
  target: FaultTarget
  params: Spec<Params>
  apply(ctx: FaultContext, target: string | undefined, params: Params): Promise<State>
  revert(ctx: FaultContext, state: State): Promise<void>
  detect(ctx: FaultContext, state: State, observations: Observations): Promise<Evidence>
  /** Runs before every step while the fault is active, to hold an effect the chain decays. */
  beforeStep?(ctx: FaultContext, state: State): Promise<void>
  /** Whether the fault needs a fresh fork instead of a snapshot (reorgs do). */
  needsFreshTarget?: boolean
  /**
   * Refuses, at load, params that cannot work on the target as far as the scenario tells what it
   * is: `functions` are the target's function signatures (`latestRoundData()`) from an ABI the
   * loader can reach (the embedded contract of that name, or a Foundry/Hardhat project's
   * artifact), undefined when none is. Returns the param and why, or undefined.
   */
  targetProblem?(params: Params, target: { name: string; functions: readonly string[] | undefined }): { key: string; why: string } | undefined
  /** What it needs of the fork engine beyond the shared cheat methods; an engine without one is refused at load. */
  engineNeeds?: readonly Capability[]
  /**
   * Checks, before the target boots, what this machine must have for these params (a Debian
   * package for processes forkchaos did not write); throws `PrerequisiteMissingError`, which
   * ends the scenario `skipped` without booting anything.
   */
  prerequisites?(params: Params): void
}

/** A declared fault plus what `define` derives from its params spec. */
export type FaultDefinition<Params, State> = FaultDeclaration<Params, State> & {
  /** JSON Schema of params, published in the scenario schema (from `params`). */
  paramsSchema: JsonSchema
  /**
   * Validates raw params and fills defaults (from `params`); throws `ParamsError` (an
   * `InputError`) naming the param and the expected value. `validators`: the devnet's size,
   * which bounds validator ids.
   */
  parse(raw: unknown, where: string, bounds?: { validators?: number | undefined }): Params
  /** One line per param for `forkchaos list`. */
  paramsText: string[]
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

/**
 * Declares a fault: its params spec gives the schema, the parser and the `list` text, so
 * they cannot drift apart.
 */
export function define<P, S>(declaration: FaultDeclaration<P, S>): FaultDefinition<P, S> {
  return {
    ...declaration,
    paramsSchema: declaration.params.schema,
    parse(raw, where, bounds = {}) {
      try {
        return declaration.params.parse(raw === undefined ? {} : raw, { path: [], ...(bounds.validators !== undefined ? { validators: bounds.validators } : {}) })
      } catch (error) {
        if (!(error instanceof ParamsError)) throw error
        throw new ParamsError(error.shortMessage, error.path, { context: { Where: where } })
      }
    },
    paramsText: describeParams(declaration.params as Spec<unknown>),
  }
}

/**
 * Runs every listed fault's `prerequisites` check with its params as loaded (`parsed`; parsed
 * here only for a spec that did not come through the loader), so that a scenario that cannot
 * run here is skipped before anything starts.
 */
export function checkPrerequisites(
  registry: Record<string, AnyFault>,
  specs: { type: string; params?: Record<string, unknown> | undefined; parsed?: unknown }[],
  where: string,
): void {
  for (const spec of specs) {
    const definition = registry[spec.type]
    if (definition?.prerequisites) definition.prerequisites(spec.parsed ?? definition.parse(spec.params ?? {}, `${where} ${spec.type}`))
  }
}

/**
 * Applies a fault and wraps it: timing (`tStart`, `tStop`), a revert that runs at most once,
 * and teardown on error, Ctrl-C and SIGTERM are handled here, once, for every fault. Params
 * are the ones parsed at load (`spec.parsed`); a spec without them (the chaos API, a test) is
 * parsed here, before anything is applied.
 */
export async function applyFault(
  fault: AnyFault,
  ctx: FaultContext,
  spec: { target?: string | undefined; params: Record<string, unknown>; parsed?: unknown },
  where: string,
): Promise<ActiveFault> {
  const params = spec.parsed ?? fault.parse(spec.params, where, { validators: ctx.devnet?.nodes.length })
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

/** The devnet of the context, or a clear error when a devnet fault reaches another target. */
export function devnetOf(ctx: FaultContext, type: string): Devnet {
  if (!ctx.devnet) throw new InputError(`The fault \`${type}\` needs a devnet target (\`target: { kind: devnet }\`).`)
  return ctx.devnet
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
