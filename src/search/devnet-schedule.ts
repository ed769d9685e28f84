import type { Prng } from '../util/prng.js'

/**
 * One item of a devnet schedule: a fault applied to a validator, a fault reverted, or a wait.
 * `level` indexes the item's ladder (a fault's params, a wait's length), smallest first, so a
 * shrink lowers it.
 */
export type DevnetItem =
  | { kind: 'apply'; id: string; fault: number; validator: number; level: number }
  | { kind: 'revert'; id: string }
  | { kind: 'wait'; level: number }

/** A fault of the devnet pool: its type and one params text per level (smallest first). Each acts on the one validator it targets. */
export type DevnetPoolFault = { type: string; levels: string[] }

/** Limits of a devnet schedule: items per episode, and validators. */
export const devnetLimits = { steps: 32 } as const

/**
 * The waits between faults, smallest first. The top one holds a byzantine validator through
 * a restart and a few of its turns as proposer (every n-th height at about one a slot), which is
 * when an equivocation can meet a validator that votes twice.
 */
export const waitLadder = ['2s', '5s', '12s'] as const

/**
 * The pool, by family: node (kill, wedge, a crash-restart, a full disk, a corrupted store, the
 * node's own clock 30 s ahead), network (the validator cut off, latency, loss on its links) and
 * byzantine (equivocation, a flipped state root, an unexecutable transaction, a stale parent):
 * every fault of the shipped drills that acts on one validator. Every fault makes exactly the one
 * validator it targets faulty, so the budget is a count of validators.
 */
export const devnetPool: readonly DevnetPoolFault[] = [
  { type: 'node.kill', levels: ['{}'] },
  { type: 'node.wedge', levels: ['{}'] },
  { type: 'node.restart', levels: ['{}'] },
  { type: 'node.disk-full', levels: ['{}'] },
  { type: 'node.disk-corrupt', levels: ['{ bytes: 8 }'] },
  { type: 'node.clock-skew', levels: ['{ offsetS: 30 }'] },
  { type: 'net.partition', levels: ['{}'] },
  { type: 'net.latency', levels: ['{ latencyMs: 100 }', '{ latencyMs: 300, jitterMs: 100 }', '{ latencyMs: 1000 }'] },
  { type: 'net.loss', levels: ['{ probability: 0.3 }', '{ probability: 0.8 }'] },
  { type: 'byzantine.equivocate', levels: ['{}'] },
  { type: 'byzantine.state-root-flip', levels: ['{}'] },
  { type: 'byzantine.invalid-tx', levels: ['{}'] },
  { type: 'byzantine.stale-parent', levels: ['{}'] },
]

/** Faults whose proposals honest validators must reject, judged over the fault's own window (`rejects`). */
const rejected = new Set(['byzantine.state-root-flip', 'byzantine.invalid-tx', 'byzantine.stale-parent'])

/**
 * The safety checks a schedule's own faults call for, judged over each fault's window
 * (`during`): a byzantine proposer's bad blocks rejected and never committed, a skewed
 * validator's proposals refused and never committed (at least 0 of either: a short window may
 * hold none of its turns as proposer); and, unless the schedule corrupts a store (which drops its
 * damaged tail by design), no validator ever comes back lower than it was (`keepsCommitted`).
 */
export function faultChecks(items: readonly DevnetItem[]): { name: string; yaml: string }[] {
  const out: { name: string; yaml: string }[] = []
  let corrupt = false
  for (const it of items) {
    if (it.kind !== 'apply') continue
    const type = devnetPool[it.fault]?.type ?? ''
    if (type === 'node.disk-corrupt') corrupt = true
    if (rejected.has(type)) out.push({ name: `rejected-${it.id}`, yaml: `kind: safety, during: ${it.id}, rejects: { proposer: ${it.validator}, minRejections: 0 }` })
    if (type === 'node.clock-skew') out.push({ name: `skew-refused-${it.id}`, yaml: `kind: safety, during: ${it.id}, driftRejected: { proposer: ${it.validator}, minRefusals: 0 }` })
  }
  if (!corrupt) out.push({ name: 'keeps-committed', yaml: 'kind: safety, keepsCommitted: true' })
  return out
}

/**
 * Whether a schedule keeps at most `budget` validators faulty at once, each fault on a validator
 * not already faulty, every revert naming an applied fault (a shrink's candidates must be
 * schedules the search could have drawn).
 */
export function withinBudget(items: readonly DevnetItem[], budget: number): boolean {
  const active = new Map<string, number>()
  for (const it of items) {
    if (it.kind === 'apply') {
      if (active.size >= budget || [...active.values()].includes(it.validator)) return false
      active.set(it.id, it.validator)
    } else if (it.kind === 'revert') {
      if (!active.delete(it.id)) return false
    }
  }
  return true
}

/**
 * A seeded devnet schedule of `steps` items: a fault family first (node, network, byzantine),
 * then a fault of it, on a validator not faulty now, only while fewer than `budget` are; reverts
 * of active faults; waits between. Faults still applied at the end are reverted at the heal.
 */
export function drawDevnetSchedule(prng: Prng, steps: number, validators: number, budget: number): DevnetItem[] {
  const items: DevnetItem[] = []
  const active: { id: string; validator: number }[] = []
  const families = [...new Set(devnetPool.map((f) => f.type.split('.')[0]))]
  let n = 0
  for (let i = 0; i < steps; i++) {
    const r = prng.next()
    if (r < 0.4 && active.length < budget) {
      const family = families[prng.int(0, families.length - 1)]
      const of = devnetPool.flatMap((f, k) => (f.type.startsWith(`${family}.`) ? [k] : []))
      const fault = of[prng.int(0, of.length - 1)] as number
      const free = Array.from({ length: validators }, (_, v) => v).filter((v) => !active.some((a) => a.validator === v))
      const validator = free[prng.int(0, free.length - 1)] as number
      const id = `f${n++}`
      active.push({ id, validator })
      items.push({ kind: 'apply', id, fault, validator, level: prng.int(0, (devnetPool[fault]?.levels.length ?? 1) - 1) })
    } else if (r < 0.6 && active.length > 0) {
      const { id } = active.splice(prng.int(0, active.length - 1), 1)[0] as { id: string }
      items.push({ kind: 'revert', id })
    } else items.push({ kind: 'wait', level: prng.int(0, waitLadder.length - 1) })
  }
  return items
}

/**
 * The checks every devnet episode is judged by: safety at all times, liveness and catch-up after
 * the heal; then those its faults call for (`faultChecks`: `keeps-committed`, `rejected-<id>`,
 * `skew-refused-<id>`).
 */
export const devnetSearchChecks = (validators: number, items: readonly DevnetItem[] = []) => [
  'no-fork',
  'honest-not-accused',
  'progress-after-heal',
  ...Array.from({ length: validators }, (_, v) => `catch-up-${v}`),
  ...faultChecks(items).map((c) => c.name),
]

/** The suffix of an episode's stop conditions: one per safety check, same predicate (`honest-not-accused-now`). */
export const stopSuffix = '-now'

/**
 * The devnet schedule as a standalone scenario file the normal loader reads. `stopOnSafety`
 * (the search's episodes): a stop condition on each safety check ends the run the moment one
 * breaks, instead of waiting out a heal the failure may have made impossible; the written file
 * has none, so `forkchaos run` judges it to the end (`failed`).
 */
export function devnetScheduleYaml(name: string, items: readonly DevnetItem[], o: { validators: number; budget: number; note: string; stopOnSafety?: boolean }): string {
  const steps = items.map((it) => {
    if (it.kind === 'wait') return `    - wait: { duration: ${waitLadder[it.level]} }`
    if (it.kind === 'revert') return `    - fault: { revert: ${it.id} }`
    const f = devnetPool[it.fault] as DevnetPoolFault
    return `    - fault: { id: ${it.id}, apply: { type: ${f.type}, target: ${it.validator}, params: ${f.levels[it.level]} } }`
  })
  const extra = faultChecks(items)
  return [
    `# Written by \`forkchaos search --target devnet\`: ${o.note}`,
    `name: ${name}`,
    'hypothesis: >',
    `  Under any timed schedule of node, network and byzantine faults with at most ${o.budget} of ${o.validators} validators`,
    '  faulty at once: at all times no two honest validators commit different blocks and no honest validator',
    '  is named in equivocation evidence, no validator comes back lower than it was (unless its store is corrupted),',
    "  and no bad or skewed validator's block is committed while its fault runs; after the heal the chain commits",
    '  again and every validator catches up.',
    `target: { kind: devnet, slot: 1s, validators: ${o.validators} }`,
    'checks:',
    '  - { name: no-fork, kind: safety, noFork: true }',
    '  - { name: honest-not-accused, kind: safety, honestNotAccused: true }',
    '  - { name: progress-after-heal, kind: liveness, phases: [recover], progress: { minCommitsPerSlot: 0.3 } }',
    ...Array.from({ length: o.validators }, (_, v) => `  - { name: catch-up-${v}, kind: liveness, phases: [recover], catchUp: { node: ${v}, withinMs: 10000 } }`),
    ...extra.map((c) => `  - { name: ${c.name}, ${c.yaml} }`),
    ...(o.stopOnSafety
      ? [
          'stop:',
          `  - { name: no-fork${stopSuffix}, kind: safety, noFork: true }`,
          `  - { name: honest-not-accused${stopSuffix}, kind: safety, honestNotAccused: true }`,
          ...(extra.some((c) => c.name === 'keeps-committed') ? [`  - { name: keeps-committed${stopSuffix}, kind: safety, keepsCommitted: true }`] : []),
        ]
      : []),
    'baseline: { duration: 2s }',
    'inject:',
    '  faults: []',
    '  steps:',
    // No item left: the inject phase is one short wait.
    ...(steps.length ? steps : [`    - wait: { duration: ${waitLadder[0]} }`]),
    'recover: { duration: 10s }',
    '',
  ].join('\n')
}
