import { type ActiveFault, acceptedFaultTargets, type Observations, seenIn } from '../Fault.js'
import { faults } from '../faults/registry.js'
import * as P from '../Params.js'
import type { FaultWindow } from '../report/types.js'
import { name } from '../scenario/schema-parts.js'
import type { FaultSpec, Phase } from '../scenario/types.js'
import { define, type StepEnv, type StepRecord } from '../Step.js'

/**
 * A fault applied or reverted at a point of a phase's steps (issue 10, item 3): `apply` names
 * the fault as `inject.faults` would (`type`, `target`, `params`) under an `id`; `revert`
 * names an id applied earlier in the same phase.
 */
export type FaultBody = { id: string; apply: { type: string; target?: string | number; params?: Record<string, unknown> } } | { revert: string }

/**
 * Fault types a step can schedule: the fork's own faults and the JSON-RPC fault proxy's, not
 * those needing a fresh fork (reorgs); and every devnet fault (a devnet scenario's inject steps).
 */
const schedulable = Object.values(faults)
  .filter((f) => (acceptedFaultTargets.fork.includes(f.target) && !('needsFreshTarget' in f && f.needsFreshTarget)) || f.target === 'devnet')
  .map((f) => f.type)

/**
 * Applies a fault at this step, or reverts one applied earlier in the phase. The fault contract
 * holds as for `inject.faults`: params are parsed at load, the fault is reverted on every way
 * out (a later `revert` step, the phase's end, a step error, a stop condition, Ctrl-C/SIGTERM),
 * and its report record carries its window (`faults[].window`: the step index and time it was
 * applied and reverted).
 */
export const fault = define<'fault', FaultBody>({
  kind: 'fault',
  summary: 'applies a fault at this step under an `id` (`apply: { type, target, params }`), or reverts one (`revert: <id>`); still applied at the phase end: reverted then',
  target: ['fork', 'devnet'],
  schema: {
    oneOf: [
      {
        type: 'object',
        additionalProperties: false,
        required: ['id', 'apply'],
        properties: {
          id: { ...name, description: 'Names the fault for its `revert` step and in the report; unique in the scenario.' },
          apply: {
            type: 'object',
            additionalProperties: false,
            required: ['type'],
            properties: {
              type: { enum: schedulable, description: 'A fork or JSON-RPC-proxy fault in a fork scenario (chain.reorg needs a fresh fork: only under `inject.faults`); a devnet fault in a devnet scenario.' },
              target: { type: ['string', 'integer'], maxLength: 256 },
              params: { type: 'object' },
            },
          },
        },
      },
      { type: 'object', additionalProperties: false, required: ['revert'], properties: { revert: { ...name, description: 'The `id` of a fault applied by an earlier step of this phase.' } } },
    ],
  },
  names: (body, where) => {
    if (!('apply' in body)) return []
    const out: [string, string][] = []
    const target = body.apply.target
    if (target !== undefined && faults[body.apply.type as keyof typeof faults]?.target === 'fork') out.push([String(target), `${where}.fault.apply.target`])
    const token = body.apply.params?.token
    if (typeof token === 'string') out.push([token, `${where}.fault.apply.params.token`])
    return out
  },
  requires: (body, target, where) => {
    if (!('apply' in body)) return undefined
    const definition = faults[body.apply.type as keyof typeof faults]
    if (!acceptedFaultTargets[target.kind].includes(definition.target))
      return { message: `\`${where}.fault.apply.type\` ${body.apply.type} is a ${definition.target === 'devnet' ? 'devnet' : 'fork'} fault; this scenario's target is a ${target.kind}.`, field: `${where}.fault.apply.type` }
    if (definition.target === 'devnet' && body.apply.target !== undefined && !/^(?:validator-)?\d+$/.test(String(body.apply.target)))
      return { message: `\`${where}.fault.apply.target\` must be a validator id (or \`validator-<id>\`). Got \`${JSON.stringify(body.apply.target)}\`.`, field: `${where}.fault.apply.target` }
    if (definition.target === 'proxy' && String(body.apply.target ?? 'fork') !== 'fork' && String(body.apply.target) !== 'upstream')
      return { message: `\`${where}.fault.apply.target\` must name a JSON-RPC fault proxy (\`fork\` or \`upstream\`) for \`${body.apply.type}\`.`, field: `${where}.fault.apply.target` }
    if (definition.target === 'proxy' && String(body.apply.target ?? 'fork') === 'fork' && !target.rpcProxy)
      return { message: `\`${where}.fault.apply\` is \`${body.apply.type}\` on the JSON-RPC fault proxy \`fork\`, which this scenario does not have: \`target: { rpcProxy: true }\` adds it.`, field: `${where}.fault.apply.target` }
    return undefined
  },
  async run(_ctx, body, env) {
    const schedule = env.faults
    if (!schedule) throw new Error(`\`${env.where}.fault\` runs only where the phase loop schedules faults (a fork scenario's phases, a devnet scenario's inject).`)
    if ('apply' in body) await schedule.apply(body.id, body.apply, env)
    else await schedule.revert(body.revert, env)
  },
})

/** What a `fault` step needs of the phase loop (StepEnv.faults); made by `faultSchedule`. */
export type StepFaults = {
  apply(id: string, spec: FaultSpec, env: StepEnv): Promise<void>
  revert(id: string, env: StepEnv): Promise<void>
}

/** The index of `inject.steps[3]` → 3. */
const indexOf = (where: string) => Number(/\[(\d+)\]$/.exec(where)?.[1] ?? -1)

/**
 * One phase's step-scheduled faults: applied through the experiment's `apply` (so they are in
 * its list of active faults: every way out of the run reverts them, and Ctrl-C/SIGTERM through
 * the fault's teardown), each with its window record. `close` reverts what is still applied at
 * the phase's end (`by: "phase end"`) or after a step threw (`by: "error"`, the step that threw).
 * A fault's evidence is taken when it is reverted, over the steps of its window.
 */
export function faultSchedule(io: {
  phase: Phase
  apply(spec: FaultSpec, where: string, window: FaultWindow): Promise<ActiveFault>
  now(): number
  steps(): readonly StepRecord[]
  file: string
}): StepFaults & { close(by: 'phase end' | 'error', step?: number): Promise<void> } {
  const open = new Map<string, { fault: ActiveFault; window: FaultWindow; from: number }>()
  const revert = async (id: string, reverted: NonNullable<FaultWindow['reverted']>['by'], step: number | null) => {
    const entry = open.get(id)
    if (!entry) return
    open.delete(id)
    const steps = io.steps().slice(entry.from)
    const observations: Observations = {
      steps: steps.map((s) => ({ label: s.label, ok: s.ok, ...(s.reason ? { reason: s.reason } : {}), ...(s.signals ? { signals: s.signals } : {}) })),
      viewsBefore: {},
      viewsAfter: {},
    }
    const evidence = await entry.fault.detect(observations).catch((e: Error) => ({ took: `detect failed: ${e.message}`, seen: seenIn(observations) }))
    try {
      await entry.fault.revert()
    } finally {
      entry.window.reverted = { phase: io.phase, step, by: reverted, t: entry.fault.tStop ?? io.now() }
      // The experiment reads it into the fault's record (`evidence`): not a second copy in report.json.
      Object.defineProperty(entry.window, 'evidence', { value: evidence, enumerable: false, configurable: true })
      entry.fault.detect = async () => evidence
    }
  }
  return {
    async apply(id, spec, env) {
      const step = indexOf(env.where)
      const window: FaultWindow = { id, applied: { phase: io.phase, step, t: io.now() }, reverted: null }
      const from = io.steps().length
      const active = await io.apply(spec, `${io.file}: ${env.where}.fault.apply`, window)
      window.applied.t = active.tStart
      open.set(id, { fault: active, window, from })
      env.record({ label: `fault ${id}: apply ${spec.type}${spec.target !== undefined ? ` on ${spec.target}` : ''}`, phase: io.phase, type: 'fault', ok: true })
    },
    async revert(id, env) {
      if (!open.has(id)) throw new Error(`\`${env.where}.fault.revert\` names \`${id}\`, which is not applied now.`)
      await revert(id, 'step', indexOf(env.where))
      env.record({ label: `fault ${id}: revert`, phase: io.phase, type: 'fault', ok: true })
    },
    async close(by, step) {
      // Last applied, first reverted; every one is tried even when one's revert throws.
      let first: unknown
      for (const id of [...open.keys()].reverse()) await revert(id, by, step ?? null).catch((e) => (first ??= e))
      if (first !== undefined) throw first
    },
  }
}

/** A problem in a scenario's step-scheduled faults, with where it is in the file. */
export type ScheduleProblem = { message: string; field: string; segments: string[] }

/**
 * Checks a scenario's `fault` steps at load, before anything boots: ids unique in the scenario,
 * each `revert` names a fault applied by an earlier step of the same phase and not yet reverted
 * (one applied in an earlier phase was reverted at that phase's end), and each applied fault's
 * params parse (its own parser; the result is carried as `parsed`, as for `inject.faults`).
 */
export function scheduleProblem(phases: [Phase, readonly unknown[]][], validators?: number): ScheduleProblem | undefined {
  const applied = new Map<string, string>()
  for (const [phase, steps] of phases) {
    const open = new Map<string, string>()
    const reverted = new Map<string, string>()
    for (const [i, step] of steps.entries()) {
      if (typeof step !== 'object' || step === null || !('fault' in step)) continue
      const body = (step as { fault: FaultBody }).fault
      const where = `${phase}.steps[${i}]`
      if ('apply' in body) {
        const before = applied.get(body.id)
        if (before !== undefined)
          return { message: `\`${where}.fault.id\` is \`${body.id}\`, which \`${before}\` already uses; fault ids must be unique in a scenario.`, field: `${where}.fault.id`, segments: [phase, 'steps', String(i), 'fault', 'id'] }
        applied.set(body.id, where)
        open.set(body.id, where)
        const definition = faults[body.apply.type as keyof typeof faults]
        const at = `${where}.fault.apply.params`
        try {
          Object.defineProperty(body.apply, 'parsed', { value: definition.parse(body.apply.params ?? {}, at, { validators }), enumerable: false, configurable: true })
        } catch (error) {
          if (!(error instanceof P.ParamsError)) throw error
          const message = error.shortMessage.replace(/^`([^`]+)`/, `\`${at}.$1\``).replace(/^`([^`]+)\.params`/, '`$1`')
          return { message, field: P.name([at, ...error.path]), segments: [phase, 'steps', String(i), 'fault', 'apply', ...(body.apply.params ? ['params', ...error.path.map(String)] : [])] }
        }
        continue
      }
      const id = body.revert
      const field = `${where}.fault.revert`
      const segments = [phase, 'steps', String(i), 'fault', 'revert']
      if (reverted.has(id)) return { message: `\`${field}\` reverts \`${id}\`, which \`${reverted.get(id)}\` already reverted.`, field, segments }
      if (open.has(id)) {
        open.delete(id)
        reverted.set(id, where)
        continue
      }
      const earlier = applied.get(id)
      if (earlier !== undefined)
        return { message: `\`${field}\` reverts \`${id}\`, applied at \`${earlier}\`, in an earlier phase: it was reverted at that phase's end.`, field, segments }
      const later = steps.findIndex((s, j) => j > i && typeof s === 'object' && s !== null && 'fault' in s && 'id' in (s as { fault: object }).fault && (s as { fault: { id: string } }).fault.id === id)
      return { message: `\`${field}\` reverts \`${id}\`, which no earlier step of ${phase} applies${later >= 0 ? ` (\`${phase}.steps[${later}]\` applies it after)` : ''}; ids applied so far: ${[...open.keys()].map((k) => `\`${k}\``).join(', ') || 'none'}.`, field, segments }
    }
  }
  return undefined
}
