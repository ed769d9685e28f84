import type { Capability } from './targets/engine.js'
import type { KeeperStats } from './keeper/keeper.js'
import type { Around } from './probes/fork.js'
import type { RunContext } from './scenario/context.js'
import type { CheckKind, Expect, Phase } from './scenario/types.js'
import type { Receipt } from './targets/chain.js'
import type { StepFaults } from './steps/fault.js'

/** One executed action (a cycle() call, a contract call, a mine…) as checks and reports see it. */
export type StepRecord = {
  label: string
  phase: Phase
  /** When it was recorded, on the fork probe's clock (ms). */
  t: number
  /** `cycle` marks a call of the protocol's keeper entry point. */
  type: 'cycle' | 'call' | 'mine' | 'warp' | 'module' | 'keeper' | 'fault'
  ok: boolean
  reason?: string
  receipt?: Receipt
  /** The protocol's signal events in the receipt (`RiskModeChanged(0, 1, …)`). */
  signals?: string[]
  /** Amounts of the protocol's bounty events in the receipt, in wei. */
  bounties?: bigint[]
  /** The cap each bounty event says the protocol applied (`protocol.bountyEvent.cap`), in the same order. */
  bountyCaps?: bigint[]
  /** A bundle's calls: the block they were mined in, all in one. */
  bundle?: { block: bigint; index: number; of: number }
  expect?: Expect
  expectKind?: CheckKind
  expectReason?: string
  /** The protocol's views read right before and right after a keeper cycle. */
  before?: Around
  after?: Around
  /** A stress cycle: where the seeded walks of the pair's price and the feed's answer stood (bps from their start). */
  walk?: { pairBps: number; feedBps: number }
  /** A keeper step's measured load (offered vs effective requests, outcomes). */
  load?: KeeperStats
}

/** What a running step gets from the phase loop besides the scenario's context. */
export type StepEnv = {
  phase: Phase
  /** The step's place in the file (`inject.steps[2]`), for messages and seeded PRNG forks. */
  where: string
  /** Adds an executed action (a cycle, a call…) to the record checks and reports read. */
  record(step: Omit<StepRecord, 't'>): void
  /** Runs every active fault's `beforeStep` (an effect the chain decays is held again). */
  beforeStep(): Promise<void>
  /** Evaluates the stop conditions now; throws when one tripped. Long steps call it as they go. */
  stopCheck(): Promise<void>
  /** Progress of a long step (`done` of `total`), for the CLI. */
  progress(done: number, total: number): void
  /** Faults scheduled by `fault` steps (src/steps/fault.ts); absent where the phase loop schedules none. */
  faults?: StepFaults
}

/** What a step needs of the scenario's target, checked at load. */
export type StepTarget = { kind: 'fork' | 'devnet'; rpcProxy: boolean }

/**
 * One step kind: the key it has in a scenario file, the JSON Schema of its body (published in the
 * scenario schema), the names it uses (resolved before anything is applied) and what it does.
 */
export type StepDefinition<Kind extends string, Body> = {
  kind: Kind
  /** One line for `forkchaos list` and the README. */
  summary: string
  /** JSON Schema of the body (`cycle: { … }`). */
  schema: Record<string, unknown>
  /** Target kinds the step runs on. */
  target: readonly StepTarget['kind'][]
  /** Contract and account names in the body with their fields, resolved before any fault applies. */
  names?(body: Body, where: string): [name: string, field: string][]
  /** What the step needs of the target beyond its kind, checked at load: a message naming `field`, or undefined. */
  requires?(body: Body, target: StepTarget, where: string): { message: string; field: string } | undefined
  /** What it needs of the fork engine; an engine without it is refused at load. */
  engineNeeds?: readonly Capability[]
  run(ctx: RunContext, body: Body, env: StepEnv): Promise<void>
}

// biome-ignore lint/suspicious/noExplicitAny: the registry holds steps of every body type
export type AnyStep = StepDefinition<string, any>

/** The body type of a step definition. */
export type BodyOf<S> = S extends StepDefinition<string, infer B> ? B : never

/** Declares a step; only here so TypeScript infers `Kind` and `Body` from the object. */
export function define<const Kind extends string, Body>(definition: StepDefinition<Kind, Body>): StepDefinition<Kind, Body> {
  return definition
}
