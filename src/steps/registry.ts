import type { RunContext } from '../scenario/context.js'
import { oneKey } from '../scenario/schema-parts.js'
import type { AnyStep, BodyOf, StepEnv, StepTarget } from '../Step.js'
import { bundle } from './bundle.js'
import { call } from './call.js'
import { cycle } from './cycle.js'
import { fault } from './fault.js'
import { keeper } from './keeper.js'
import { mine } from './mine.js'
import { module } from './module.js'
import { stress } from './stress.js'
import { wait } from './wait.js'
import { warp } from './warp.js'

/** Every step kind a scenario can name, by its key in the file: `bundle` lives in steps/bundle.ts. */
export const steps = { cycle, call, bundle, mine, warp, stress, keeper, module, fault, wait } as const satisfies Record<string, AnyStep>

export type StepKind = keyof typeof steps
export const stepKinds = Object.keys(steps) as StepKind[]

/** A step as written in a scenario file: one key, the kind, holding its body. */
export type Step = { [K in StepKind]: { [P in K]: BodyOf<(typeof steps)[K]> } }[StepKind]

/** The JSON Schema of one step, published in the scenario schema: exactly one key of the registry. */
export const stepSchema = { oneOf: stepKinds.map((kind) => oneKey(kind, steps[kind].schema)) }

/** A step's kind (its one key) and body. */
export function stepKindOf(step: Step): { kind: StepKind; body: unknown } {
  const kind = stepKinds.find((k) => k in step) as StepKind
  return { kind, body: (step as Record<string, unknown>)[kind] }
}

/** Runs one step of a phase. */
export function runStep(ctx: RunContext, step: Step, env: StepEnv): Promise<void> {
  const { kind, body } = stepKindOf(step)
  return (steps[kind] as AnyStep).run(ctx, body, env)
}

/** The contract and account names a step uses, with their fields, for resolving before anything applies. */
export function stepNames(step: Step, where: string): [name: string, field: string][] {
  const { kind, body } = stepKindOf(step)
  return (steps[kind] as AnyStep).names?.(body, where) ?? []
}

/** What a step needs that the target does not give, at load: its kind, or a requirement of its own. */
export function stepProblem(step: Step, target: StepTarget, where: string): { message: string; field: string } | undefined {
  const { kind, body } = stepKindOf(step)
  const definition = steps[kind] as AnyStep
  if (!definition.target.includes(target.kind))
    return { message: `\`${where}.${kind}\` is a ${definition.target.join(' or ')} step; this scenario's target is a ${target.kind}.`, field: `${where}.${kind}` }
  return definition.requires?.(body, target, where)
}
