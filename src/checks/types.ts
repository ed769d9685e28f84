import type { RunContext, StepRecord } from '../scenario/context.js'
import type { CheckSpec, Phase } from '../scenario/types.js'

export type Outcome = { ok: boolean; observed: string; expected: string }

/** One check kind: a predicate over what the target shows, for one phase's steps. */
export type CheckFn<K extends keyof CheckSpec> = (
  ctx: RunContext,
  body: NonNullable<CheckSpec[K]>,
  phase: { name: Phase; steps: StepRecord[] },
) => Promise<Outcome>
