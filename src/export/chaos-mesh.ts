import { stringify } from 'yaml'
import { InputError } from '../errors.js'
import type { FaultSpec, Scenario } from '../scenario/types.js'
import { defaultDevnetSize, parseSizeExpr, sizeOf } from '../targets/devnet-size.js'
import { podsOf, type RenderedValidator, type Topology, validatorCount } from '../topology/topology.js'
import { formatDurationMs } from '../util/duration.js'

/**
 * `forkchaos export chaos-mesh`: a devnet scenario as a Chaos Mesh `Workflow`
 * (chaos-mesh.org/v1alpha1). The entry is a Serial node: baseline (Suspend) → inject (the
 * fault, or a Parallel node of them) → recover (Suspend), each with the scenario's duration as
 * its `deadline`. Pods are selected by the topology's namespace and labels. Checks are not part
 * of it: `forkchaos run <scenario> --target endpoints.yaml` judges them while it runs.
 */
export type ChaosMeshExport = {
  /** The multi-document YAML: a comment header, then every object. */
  yaml: string
  objects: Record<string, unknown>[]
  /** `inject.faults[i]` of each fault that became a chaos template. */
  exported: { type: string; field: string; kinds: string[] }[]
  /** Faults with no Chaos Mesh equivalent, and why. */
  skipped: { type: string; field: string; reason: string }[]
}

export const chaosMeshApiVersion = 'chaos-mesh.org/v1alpha1'

type Pod = RenderedValidator['pod']
type Selector = { namespaces: string[]; labelSelectors?: Record<string, string>; expressionSelectors?: { key: string; operator: 'In'; values: string[] }[] }
type ChaosTemplate = { kind: 'NetworkChaos' | 'PodChaos' | 'TimeChaos' | 'IOChaos'; spec: Record<string, unknown> }

/** The template fields of a Workflow that hold each chaos kind's spec. */
const specField = { NetworkChaos: 'networkChaos', PodChaos: 'podChaos', TimeChaos: 'timeChaos', IOChaos: 'ioChaos' } as const

/** Why a fault family has no Chaos Mesh form. */
const noEquivalent: Record<string, string> = {
  byzantine: "a byzantine proposer needs forkchaos's proxy on its execution link rewriting what it proposes; Chaos Mesh has no equivalent",
  mempool: 'a mempool flood is signed transactions forkchaos sends; Chaos Mesh has no equivalent',
  'net.flap': 'a link cut and healed every `periodMs` has no NetworkChaos form (a Schedule would not keep the period within the inject window)',
  'node.wedge': 'SIGSTOP (alive but silent) has no Chaos Mesh form: PodChaos pod-failure stops the container, which is `node.kill`',
  'node.restart-mid-round': "a restart timed to a validator's own round (killing others at its turn as proposer, restarting it once it signed) has no Chaos Mesh form: a Workflow's pod-kill runs at a fixed time, not at a consensus step",
}

/**
 * Exports `scenario` (a devnet scenario) for the validators of `topology`. Throws `InputError`
 * (exit 2) for a scenario that is not a devnet one, a topology with fewer validators than the
 * scenario, or when no fault could be exported (each named with its reason).
 */
export function exportChaosMesh(scenario: Scenario, topology: Topology, command = `forkchaos export chaos-mesh ${scenario.file} --topology ${topology.file}`): ChaosMeshExport {
  if (scenario.target.kind !== 'devnet')
    throw new InputError(`${scenario.file}: only devnet scenarios (\`target.kind: devnet\`) can be exported to Chaos Mesh. Got \`${scenario.target.kind}\`.`, { context: { File: scenario.file, Field: 'target.kind' } })
  const n = scenario.target.validators ?? defaultDevnetSize
  if (validatorCount(topology) < n)
    throw new InputError(`${topology.file}: the scenario ${scenario.file} needs ${n} validators (\`target.validators\`); this topology has ${validatorCount(topology)}.`, { context: { File: topology.file, Field: 'validators' } })
  const pods = podsOf(topology).slice(0, n)
  const select = (ids: number[]) => selectorFor(ids, pods, topology.file)
  const all = pods.map((_, i) => i)
  const rest = (ids: number[]) => all.filter((i) => !ids.includes(i))

  const exported: ChaosMeshExport['exported'] = []
  const skipped: ChaosMeshExport['skipped'] = []
  const templates: Record<string, unknown>[] = []
  const injectDeadline = formatDurationMs(scenario.inject.durationMs)
  for (const [i, spec] of scenario.inject.faults.entries()) {
    const field = `inject.faults[${i}]`
    const outcome = chaosOf(spec, n, { select, rest, all, pods })
    if ('reason' in outcome) {
      skipped.push({ type: spec.type, field, reason: outcome.reason })
      continue
    }
    outcome.forEach((t, k) =>
      templates.push({ name: `fault-${i}-${spec.type.replace('.', '-')}${outcome.length > 1 ? `-${k}` : ''}`, templateType: t.kind, deadline: injectDeadline, [specField[t.kind]]: t.spec }),
    )
    exported.push({ type: spec.type, field, kinds: outcome.map((t) => t.kind) })
  }
  for (const [i, spec] of (scenario.inject.random?.faults ?? []).entries())
    skipped.push({ type: spec.type, field: `inject.random.faults[${i}]`, reason: "a soak draws its faults from the seed while inject runs; a Workflow's faults are fixed" })
  if (templates.length === 0)
    throw new InputError(`${scenario.file}: nothing to export to Chaos Mesh: ${skipped.length ? skipped.map((s) => `${s.type} (${s.field}): ${s.reason}`).join('; ') : 'the scenario has no faults'}.`, {
      context: { File: scenario.file, Field: 'inject.faults' },
    })

  const name = k8sName(scenario.name)
  const inject =
    templates.length === 1
      ? (templates[0] as { name: string })
      : { name: 'inject', templateType: 'Parallel', deadline: injectDeadline, children: templates.map((t) => t.name as string) }
  const workflow = {
    apiVersion: chaosMeshApiVersion,
    kind: 'Workflow',
    metadata: {
      name,
      namespace: pods[0]?.namespace as string,
      labels: { 'app.kubernetes.io/managed-by': 'forkchaos' },
      annotations: { 'forkchaos.dev/scenario': scenario.file, 'forkchaos.dev/topology': topology.file },
    },
    spec: {
      entry: 'drill',
      templates: [
        { name: 'drill', templateType: 'Serial', children: ['baseline', inject.name, 'recover'] },
        { name: 'baseline', templateType: 'Suspend', deadline: formatDurationMs(scenario.baseline.durationMs) },
        ...(templates.length === 1 ? [] : [inject]),
        ...templates,
        { name: 'recover', templateType: 'Suspend', deadline: formatDurationMs(scenario.recover.durationMs) },
      ],
    },
  }
  const objects = [workflow]
  const header = [
    `# ${command}`,
    `# ${scenario.name}: baseline ${formatDurationMs(scenario.baseline.durationMs)} → inject ${injectDeadline} → recover ${formatDurationMs(scenario.recover.durationMs)} on ${n} validators (${topology.name})`,
    ...skipped.map((s) => `# not exported (no Chaos Mesh equivalent): ${s.type} (${s.field}): ${s.reason}`),
    `# The checks run from forkchaos while this workflow runs: forkchaos run ${scenario.file} --target endpoints.yaml`,
  ]
  const yaml = `${header.join('\n')}\n${objects.map((o) => `---\n${stringify(o, { lineWidth: 0 })}`).join('')}`
  return { yaml, objects, exported, skipped }
}

/** A Kubernetes object name (DNS-1123 subdomain, ≤ 63 here) from a scenario name. */
export function k8sName(name: string): string {
  const s = name.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 63).replace(/-+$/, '')
  return s || 'forkchaos-drill'
}

type Helpers = { select: (ids: number[]) => Selector; rest: (ids: number[]) => number[]; all: number[]; pods: Pod[] }

/** One fault as chaos specs, or why it has none. */
function chaosOf(spec: FaultSpec, n: number, h: Helpers): ChaosTemplate[] | { reason: string } {
  const family = spec.type.split('.')[0] as string
  const why = noEquivalent[spec.type] ?? noEquivalent[family]
  if (why) return { reason: why }
  const p = (spec.params ?? {}) as Record<string, unknown>
  const id = spec.target === undefined ? undefined : Number(String(spec.target).replace('validator-', ''))
  const one = (kind: ChaosTemplate['kind'], ids: number[], extra: Record<string, unknown>): ChaosTemplate => ({ kind, spec: { mode: 'all', selector: h.select(ids), ...extra } })
  // Peer traffic only: from the faulty validators to (and from) the others, not the probes' RPC.
  const link = (ids: number[], others: number[], direction: 'to' | 'from' | 'both', extra: Record<string, unknown>): ChaosTemplate =>
    one('NetworkChaos', ids, { ...extra, direction, target: { mode: 'all', selector: h.select(others) } })
  switch (spec.type) {
    case 'net.partition': {
      const groups = partitionGroups(p, id, n)
      return groups.flatMap((g, i) => groups.slice(i + 1).map((other) => link(g, other, 'both', { action: 'partition' })))
    }
    case 'net.loss': {
      const pct = String(Math.round(Number(p.probability) * 10_000) / 100)
      return [id === undefined ? link(h.all, h.all, 'both', { action: 'loss', loss: { loss: pct, correlation: '0' } }) : link([id], h.rest([id]), 'both', { action: 'loss', loss: { loss: pct, correlation: '0' } })]
    }
    case 'net.latency': {
      const delay = { latency: `${Number(p.latencyMs)}ms`, jitter: `${Number(p.jitterMs ?? 0)}ms`, correlation: '0' }
      return [id === undefined ? link(h.all, h.all, 'both', { action: 'delay', delay }) : link([id], h.rest([id]), 'both', { action: 'delay', delay })]
    }
    case 'net.firewall-inbound':
      // `from`: what the target pods send to the selected one is dropped; its own packets go out.
      return [link([id ?? 0], h.rest([id ?? 0]), 'from', { action: 'partition' })]
    case 'node.kill':
      return [one('PodChaos', [id ?? 0], { action: 'pod-failure' })]
    case 'node.restart':
      return [one('PodChaos', [id ?? 0], { action: 'pod-kill' })]
    case 'node.burst-kill': {
      const ids = Array.isArray(p.validators) ? (p.validators as number[]) : (() => {
        const count = sizeOf(parseSizeExpr(p.count, 'count'), n)
        return Array.from({ length: count }, (_, i) => n - count + i)
      })()
      return [one('PodChaos', ids, { action: 'pod-failure' })]
    }
    case 'node.clock-skew':
      return [one('TimeChaos', [id ?? 0], { timeOffset: `${Number(p.offsetS)}s` })]
    case 'node.disk-full':
    case 'node.disk-corrupt': {
      const v = id ?? 0
      const volumePath = h.pods[v]?.volumePath
      if (!volumePath) return { reason: `IOChaos needs the data volume's mount path: the topology gives validator ${v} no \`pod.volumePath\`` }
      const containers = h.pods[v]?.containerNames ? { containerNames: h.pods[v]?.containerNames } : {}
      const io =
        spec.type === 'node.disk-full'
          ? { action: 'fault', errno: 28, methods: ['write', 'create', 'mkdir', 'fsync'] }
          : { action: 'mistake', methods: ['read'], mistake: { filling: 'random', maxOccurrences: 1, maxLength: Number(p.bytes ?? 8) } }
      return [one('IOChaos', [v], { ...io, volumePath, path: `${volumePath}/**/*`, percent: 100, ...containers })]
    }
    default:
      return { reason: `no Chaos Mesh mapping for \`${spec.type}\`` }
  }
}

/** The sides of a partition on n validators: `groups`, groups of `sizes` (the rest one more), or `target` against the rest. */
export function partitionGroups(p: Record<string, unknown>, id: number | undefined, n: number): number[][] {
  if (Array.isArray(p.groups)) {
    const groups = p.groups as number[][]
    const listed = groups.flat()
    const rest = Array.from({ length: n }, (_, i) => i).filter((i) => !listed.includes(i))
    return rest.length ? [...groups, rest] : groups
  }
  if (Array.isArray(p.sizes)) {
    const groups: number[][] = []
    let next = 0
    for (const [i, raw] of p.sizes.entries()) {
      const size = sizeOf(parseSizeExpr(raw, `sizes[${i}]`), n)
      groups.push(Array.from({ length: size }, (_, j) => next + j))
      next += size
    }
    if (next < n) groups.push(Array.from({ length: n - next }, (_, j) => next + j))
    return groups
  }
  const v = id ?? 0
  return [[v], Array.from({ length: n }, (_, i) => i).filter((i) => i !== v)]
}

/**
 * A Chaos Mesh selector that picks exactly the pods of `ids`: their namespaces, the labels they
 * share as `labelSelectors`, and a label whose values differ among them as an `In` expression.
 * It is checked against every pod of the topology; a selector that would also pick another
 * validator (labels that do not tell them apart) is an `InputError`.
 */
export function selectorFor(ids: number[], pods: Pod[], file: string): Selector {
  const chosen = ids.map((i) => pods[i] as Pod)
  const namespaces = [...new Set(chosen.map((p) => p.namespace))].sort()
  const keys = Object.keys(chosen[0]?.labels ?? {}).filter((k) => chosen.every((p) => k in p.labels))
  const common: Record<string, string> = {}
  const expressions: { key: string; operator: 'In'; values: string[] }[] = []
  for (const k of keys) {
    const values = [...new Set(chosen.map((p) => p.labels[k] as string))]
    if (values.length === 1) common[k] = values[0] as string
    else expressions.push({ key: k, operator: 'In', values: values.sort() })
  }
  const selector: Selector = { namespaces, ...(Object.keys(common).length ? { labelSelectors: common } : {}), ...(expressions.length ? { expressionSelectors: expressions } : {}) }
  const picked = pods.flatMap((p, i) => (matches(selector, p) ? [i] : []))
  if (picked.join() !== [...ids].sort((a, b) => a - b).join())
    throw new InputError(`${file}: the pods' labels cannot select validators ${ids.join(', ')} alone: the selector ${JSON.stringify(selector)} also picks validators ${picked.filter((i) => !ids.includes(i)).join(', ')}.`, {
      context: { File: file, Field: 'validators.pod.labels' },
      hint: 'Give each validator a label of its own, e.g. `forkchaos.dev/validator: "{id}"`.',
    })
  return selector
}

/** Whether a pod matches a selector, as Chaos Mesh reads one (every condition must hold). */
export function matches(s: Selector, pod: Pod): boolean {
  if (!s.namespaces.includes(pod.namespace)) return false
  for (const [k, v] of Object.entries(s.labelSelectors ?? {})) if (pod.labels[k] !== v) return false
  for (const e of s.expressionSelectors ?? []) if (!e.values.includes(pod.labels[e.key] as string)) return false
  return true
}
