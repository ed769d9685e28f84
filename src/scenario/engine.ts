import { checkKindOf, checks } from '../checks/registry.js'
import type { AnyCheck } from '../Check.js'
import { faults } from '../faults/registry.js'
import type { AnyStep } from '../Step.js'
import { stepKindOf, steps } from '../steps/registry.js'
import { cannot, capabilityVerb, type Engine, missingCapability } from '../targets/engine.js'
import type { Scenario } from './types.js'

/**
 * What in a scenario its fork engine cannot do: the first fault (under `inject.faults`,
 * `inject.random.faults` or a `fault` step), step or check that needs a capability the engine
 * lacks, as a message (`engine hardhat cannot reorg: …`) naming the field. Undefined when the
 * engine can run all of it. A devnet scenario has no fork engine.
 */
export function engineProblem(scenario: Scenario, engine: Engine): { message: string; segments: string[]; field: string } | undefined {
  if (scenario.target.kind !== 'fork') return undefined
  const refuse = (needs: Parameters<typeof missingCapability>[1], segments: string[], what: string) => {
    const missing = missingCapability(engine, needs)
    if (!missing) return undefined
    const field = segments.map((s, i) => (/^\d+$/.test(s) ? `[${s}]` : `${i ? '.' : ''}${s}`)).join('')
    return { message: `\`${field}\` (${what}): ${cannot(engine, capabilityVerb[missing.capability], missing.reason)}`, segments, field }
  }
  const flags = Object.keys(scenario.target.anvil)
  if (engine !== 'anvil' && flags.length > 0)
    return { message: `\`target.anvil\` (${flags.join(', ')}): engine ${engine} cannot take Anvil's own upstream flags: a Hardhat node has no retry, timeout or compute-units-per-second settings for its fork; drop them or run on anvil.`, segments: ['target', 'anvil'], field: 'target.anvil' }
  const lists: [string, { type: string }[]][] = [
    ['inject.faults', scenario.inject.faults],
    ['inject.random.faults', scenario.inject.random?.faults ?? []],
  ]
  for (const [list, specs] of lists)
    for (const [i, f] of specs.entries()) {
      const found = refuse(faults[f.type as keyof typeof faults]?.engineNeeds, [...list.split('.'), String(i), 'type'], f.type)
      if (found) return found
    }
  const phases = { baseline: scenario.baseline.steps, inject: scenario.inject.steps, recover: scenario.recover.steps }
  for (const [phase, list] of Object.entries(phases))
    for (const [i, step] of list.entries()) {
      const { kind, body } = stepKindOf(step)
      const apply = kind === 'fault' ? (body as { apply?: { type: string } }).apply : undefined
      const found = apply
        ? refuse(faults[apply.type as keyof typeof faults]?.engineNeeds, [phase, 'steps', String(i), 'fault', 'apply', 'type'], apply.type)
        : refuse((steps[kind] as AnyStep).engineNeeds, [phase, 'steps', String(i), kind], `a ${kind} step`)
      if (found) return found
    }
  for (const list of ['checks', 'stop'] as const)
    for (const [i, spec] of scenario[list].entries()) {
      const { kind } = checkKindOf(spec)
      const found = refuse((checks[kind] as AnyCheck).engineNeeds, [list, String(i), kind], `the ${kind} check`)
      if (found) return found
    }
  return undefined
}
