import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { Ajv, type ValidateFunction } from 'ajv'
import { beforeAll, describe, expect, it } from 'vitest'
import { parseAllDocuments } from 'yaml'
import { packageRoot } from '../src/contracts.js'
import { InputError } from '../src/errors.js'
import { exportChaosMesh } from '../src/export/chaos-mesh.js'
import { loadScenario } from '../src/scenario/loader.js'
import { loadTopology } from '../src/topology/topology.js'

/**
 * `forkchaos export chaos-mesh`: every shipped devnet drill that can be expressed is exported and
 * every emitted object is validated against Chaos Mesh's own CRD schemas
 * (/work/shared/chaos-mesh/crd.yaml, `openAPIV3Schema` of each kind), read with Ajv:
 * - the Kubernetes extension keywords `x-kubernetes-list-type`, `x-kubernetes-map-type`,
 *   `x-kubernetes-int-or-string`, `x-kubernetes-list-map-keys` are declared as annotations
 *   (no validation of their own), and the OpenAPI formats int32, int64, byte, date-time are
 *   declared as known formats (not checked); Ajv otherwise runs strict.
 * - An object with `properties` and no `additionalProperties` gets `additionalProperties: false`:
 *   the API server with kubectl's default `--validate=strict` refuses unknown fields, where plain
 *   JSON Schema would let a misspelled field through.
 */
// ../shared/chaos-mesh/crd.yaml beside the work tree (issue 9), or FORKCHAOS_CHAOS_MESH_CRD.
const crdFile = process.env.FORKCHAOS_CHAOS_MESH_CRD ?? path.join(packageRoot, '..', 'shared', 'chaos-mesh', 'crd.yaml')
const embedded = path.join(packageRoot, 'devnet', 'topologies', 'embedded.yaml')
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fc-export-'))
const validators = new Map<string, ValidateFunction>()
const kinds = ['Workflow', 'NetworkChaos', 'PodChaos', 'TimeChaos', 'IOChaos'] as const
const specField = { NetworkChaos: 'networkChaos', PodChaos: 'podChaos', TimeChaos: 'timeChaos', IOChaos: 'ioChaos' } as const

function strictUnknownFields(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(strictUnknownFields)
  if (!schema || typeof schema !== 'object') return schema
  const out: Record<string, unknown> = Object.fromEntries(Object.entries(schema).map(([k, v]) => [k, k === 'properties' ? Object.fromEntries(Object.entries(v as object).map(([p, s]) => [p, strictUnknownFields(s)])) : strictUnknownFields(v)]))
  if (out.properties && out.additionalProperties === undefined && !out['x-kubernetes-preserve-unknown-fields']) out.additionalProperties = false
  return out
}

beforeAll(() => {
  const ajv = new Ajv({ allErrors: true, strict: true, strictTypes: false, strictRequired: false })
  for (const keyword of ['x-kubernetes-list-type', 'x-kubernetes-map-type', 'x-kubernetes-int-or-string', 'x-kubernetes-list-map-keys', 'x-kubernetes-preserve-unknown-fields']) ajv.addKeyword({ keyword })
  for (const format of ['int32', 'int64', 'byte', 'date-time']) ajv.addFormat(format, true)
  for (const doc of parseAllDocuments(fs.readFileSync(crdFile, 'utf8'))) {
    const crd = doc.toJS() as { spec: { names: { kind: string }; versions: { name: string; schema: { openAPIV3Schema: object } }[] } } | null
    const kind = crd?.spec.names.kind
    if (!crd || !kinds.includes(kind as (typeof kinds)[number])) continue
    const version = crd.spec.versions.find((v) => v.name === 'v1alpha1')
    validators.set(kind as string, ajv.compile(strictUnknownFields(version?.schema.openAPIV3Schema) as object))
  }
  expect([...validators.keys()].sort()).toEqual([...kinds].sort())
}, 120_000)

/** Every problem of an object against its kind's CRD schema (empty: valid). */
function problems(object: Record<string, unknown>): string[] {
  const validate = validators.get(object.kind as string)
  if (!validate) return [`no CRD schema for kind ${String(object.kind)}`]
  if (object.apiVersion !== 'chaos-mesh.org/v1alpha1') return [`apiVersion ${String(object.apiVersion)}`]
  return validate(object) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}${e.params && 'allowedValues' in e.params ? ` ${JSON.stringify(e.params.allowedValues)}` : ''}${e.params && 'additionalProperty' in e.params ? ` (${e.params.additionalProperty})` : ''}`)
}

type Template = { name: string; templateType: string; deadline?: string; children?: string[] } & Record<string, unknown>
/** The objects a Workflow holds: itself, and each chaos template's spec as a standalone object of its kind. */
function objectsOf(workflow: Record<string, unknown>): Record<string, unknown>[] {
  const templates = (workflow.spec as { templates: Template[] }).templates
  return [
    workflow,
    ...templates.flatMap((t) =>
      t.templateType in specField ? [{ apiVersion: 'chaos-mesh.org/v1alpha1', kind: t.templateType, metadata: { name: t.name, namespace: 'forkchaos' }, spec: t[specField[t.templateType as keyof typeof specField]] }] : [],
    ),
  ]
}

const drills = fs.readdirSync(path.join(packageRoot, 'scenarios', 'devnet')).filter((f) => f.endsWith('.yaml')).sort()
const noEquivalent = ['equivocation.yaml', 'invalid-tx.yaml', 'mempool-flood.yaml', 'restart-mid-round.yaml', 'stale-parent.yaml', 'state-root-flip.yaml']

describe('every shipped devnet drill', () => {
  it.each(drills.filter((d) => !noEquivalent.includes(d)))('%s exports objects valid against the Chaos Mesh CRDs', (drill) => {
    const scenario = loadScenario(path.join(packageRoot, 'scenarios', 'devnet', drill))
    const out = exportChaosMesh(scenario, loadTopology(embedded))
    expect(out.skipped).toEqual([])
    // The text is what kubectl reads: parse it back and validate what it holds.
    const docs = parseAllDocuments(out.yaml).map((d) => d.toJS() as Record<string, unknown>)
    expect(docs).toEqual(out.objects)
    expect(docs.map((d) => d.kind)).toEqual(['Workflow'])
    const objects = docs.flatMap(objectsOf)
    expect(objects.length).toBeGreaterThan(1)
    for (const o of objects) expect(problems(o), `${String(o.kind)} ${JSON.stringify(o.metadata)}`).toEqual([])
    // Serial baseline → inject → recover with the scenario's durations.
    const spec = (docs[0] as { spec: { entry: string; templates: Template[] } }).spec
    const byName = new Map(spec.templates.map((t) => [t.name, t]))
    const entry = byName.get(spec.entry) as Template
    expect(entry.templateType).toBe('Serial')
    const [baseline, inject, recover] = (entry.children ?? []).map((c) => byName.get(c) as Template)
    expect([baseline?.templateType, baseline?.deadline]).toEqual(['Suspend', `${scenario.baseline.durationMs / 1000}s`])
    expect([recover?.templateType, recover?.deadline]).toEqual(['Suspend', `${scenario.recover.durationMs / 1000}s`])
    expect(inject?.deadline).toBe(`${scenario.inject.durationMs / 1000}s`)
    // Template types Chaos Mesh knows (the CRD types the field as a plain string).
    for (const t of spec.templates) expect(['Serial', 'Parallel', 'Suspend', 'NetworkChaos', 'PodChaos', 'TimeChaos', 'IOChaos']).toContain(t.templateType)
  })

  it.each(noEquivalent)('%s has no Chaos Mesh equivalent: refused with the reason (exit 2)', (drill) => {
    const file = path.join(packageRoot, 'scenarios', 'devnet', drill)
    const scenario = loadScenario(file)
    expect(() => exportChaosMesh(scenario, loadTopology(embedded))).toThrow(InputError)
    expect(() => exportChaosMesh(scenario, loadTopology(embedded))).toThrow(new RegExp(`^${file}: nothing to export to Chaos Mesh: ${scenario.inject.faults[0]?.type.replace('.', '\\.')} \\(inject\\.faults\\[0\\]\\): .*(Chaos Mesh has no equivalent|no Chaos Mesh form)`))
  })
})

describe('semantics', () => {
  const exp = (drill: string) => exportChaosMesh(loadScenario(path.join(packageRoot, 'scenarios', 'devnet', drill)), loadTopology(embedded))
  const templates = (drill: string) => ((exp(drill).objects[0] as { spec: { templates: Template[] } }).spec.templates)
  const sel = (ids: string[]) => ({ namespaces: ['forkchaos'], labelSelectors: { 'app.kubernetes.io/name': 'forkchaos-validator', ...(ids.length === 1 ? { 'forkchaos.dev/validator': ids[0] } : {}) }, ...(ids.length > 1 ? { expressionSelectors: [{ key: 'forkchaos.dev/validator', operator: 'In', values: ids }] } : {}) })

  it('partition-2-2: one NetworkChaos partition, {0, 1} against {2, 3}, both directions, for the inject duration of 6 s', () => {
    const t = templates('partition-2-2.yaml')
    expect(t.map((x) => [x.name, x.templateType, x.deadline])).toEqual([
      ['drill', 'Serial', undefined],
      ['baseline', 'Suspend', '3s'],
      ['fault-0-net-partition', 'NetworkChaos', '6s'],
      ['recover', 'Suspend', '15s'],
    ])
    expect(t[2]?.networkChaos).toEqual({ mode: 'all', selector: sel(['0', '1']), action: 'partition', direction: 'both', target: { mode: 'all', selector: sel(['2', '3']) } })
  })
  it('kill → pod-failure, restart → pod-kill, clock skew → TimeChaos +30s, disk-full → IOChaos ENOSPC, loss → 80 %', () => {
    expect(templates('kill-restart.yaml')[2]?.podChaos).toEqual({ mode: 'all', selector: sel(['3']), action: 'pod-failure' })
    expect(templates('restart.yaml')[2]?.podChaos).toEqual({ mode: 'all', selector: sel(['3']), action: 'pod-kill' })
    expect(templates('burst-kill.yaml')[2]?.podChaos).toEqual({ mode: 'all', selector: sel(['2', '3']), action: 'pod-failure' })
    expect(templates('clock-skew.yaml')[2]?.timeChaos).toEqual({ mode: 'all', selector: sel(['2']), timeOffset: '30s' })
    expect(templates('disk-full.yaml')[2]?.ioChaos).toMatchObject({ selector: sel(['3']), action: 'fault', errno: 28, volumePath: '/data', path: '/data/**/*', percent: 100 })
    expect(templates('lossy-validator.yaml')[2]?.networkChaos).toMatchObject({ selector: sel(['3']), action: 'loss', loss: { loss: '80' }, target: { selector: sel(['0', '1', '2']) } })
  })
  it('several faults in one phase go under a Parallel node; a fault with no equivalent is named in the header', () => {
    const file = path.join(tmp, 'two.yaml')
    fs.writeFileSync(
      file,
      'name: two\nhypothesis: h\ntarget: { kind: devnet }\nchecks: [{ name: nf, kind: safety, noFork: true }]\ninject:\n  duration: 4s\n  faults:\n    - { type: net.latency, target: 1, params: { latencyMs: 200 } }\n    - { type: node.kill, target: 2 }\n    - { type: byzantine.equivocate, target: 0 }\n',
    )
    const out = exportChaosMesh(loadScenario(file), loadTopology(embedded))
    const t = (out.objects[0] as { spec: { templates: Template[] } }).spec.templates
    expect(t.find((x) => x.name === 'drill')?.children).toEqual(['baseline', 'inject', 'recover'])
    expect(t.find((x) => x.name === 'inject')).toEqual({ name: 'inject', templateType: 'Parallel', deadline: '4s', children: ['fault-0-net-latency', 'fault-1-node-kill'] })
    expect(out.skipped.map((s) => `${s.type} ${s.field}`)).toEqual(['byzantine.equivocate inject.faults[2]'])
    expect(out.yaml.split('\n').filter((l) => l.startsWith('# not exported'))).toEqual([`# not exported (no Chaos Mesh equivalent): byzantine.equivocate (inject.faults[2]): ${out.skipped[0]?.reason}`])
    for (const o of out.objects.flatMap(objectsOf)) expect(problems(o)).toEqual([])
  })
  it('labels that cannot tell validators apart are refused, naming the topology', () => {
    const file = path.join(tmp, 'same-labels.yaml')
    fs.writeFileSync(file, fs.readFileSync(embedded, 'utf8').replace('        forkchaos.dev/validator: "{id}"\n', ''))
    expect(() => exp('partition-2-2.yaml')).not.toThrow()
    expect(() => exportChaosMesh(loadScenario(path.join(packageRoot, 'scenarios', 'devnet', 'partition-2-2.yaml')), loadTopology(file))).toThrow(/same-labels\.yaml: the pods' labels cannot select validators (0, 1|2, 3) alone: the selector .* also picks validators/)
  })
})

describe('the validator can fail', () => {
  it('rejects a misspelled action, a misspelled field and a missing selector', () => {
    const good = exportChaosMesh(loadScenario(path.join(packageRoot, 'scenarios', 'devnet', 'partition-2-2.yaml')), loadTopology(embedded)).objects[0] as { spec: { templates: Template[] } }
    expect(problems(good)).toEqual([])
    const broken = (f: (t: Template) => void) => {
      const copy = structuredClone(good)
      f(copy.spec.templates.find((t) => t.templateType === 'NetworkChaos') as Template)
      return problems(copy)
    }
    expect(broken((t) => ((t.networkChaos as Record<string, unknown>).action = 'partiton'))).toEqual([
      '/spec/templates/2/networkChaos/action must be equal to one of the allowed values ["netem","delay","loss","duplicate","corrupt","partition","bandwidth"]',
    ])
    expect(broken((t) => ((t.networkChaos as Record<string, unknown>).directon = 'both'))).toEqual(['/spec/templates/2/networkChaos must NOT have additional properties (directon)'])
    expect(broken((t) => delete (t.networkChaos as Record<string, unknown>).selector)).toEqual(["/spec/templates/2/networkChaos must have required property 'selector'"])
    const pod = { apiVersion: 'chaos-mesh.org/v1alpha1', kind: 'PodChaos', metadata: { name: 'x' }, spec: { mode: 'all', selector: {}, action: 'pod-kil' } }
    expect(problems(pod)).toEqual(['/spec/action must be equal to one of the allowed values ["pod-kill","pod-failure","container-kill"]'])
  })
})

describe('forkchaos export chaos-mesh (the CLI)', () => {
  const cli = (args: string[]) => spawnSync(process.execPath, ['bin/forkchaos.js', ...args], { cwd: packageRoot, encoding: 'utf8', timeout: 60_000 })
  it('writes the workflow to stdout (default topology), or to -o FILE', () => {
    const r = cli(['export', 'chaos-mesh', 'scenarios/devnet/partition-2-2.yaml'])
    expect([r.status, r.stderr]).toEqual([0, ''])
    expect(r.stdout.split('\n')[0]).toBe('# forkchaos export chaos-mesh scenarios/devnet/partition-2-2.yaml --topology devnet/topologies/embedded.yaml')
    const docs = parseAllDocuments(r.stdout).map((d) => d.toJS() as Record<string, unknown>)
    expect(docs.map((d) => [d.kind, (d.metadata as { name: string }).name])).toEqual([['Workflow', 'partition-2-2']])
    const out = path.join(tmp, 'wf.yaml')
    const w = cli(['export', 'chaos-mesh', 'scenarios/devnet/kill-restart.yaml', '--topology', 'devnet/topologies/embedded.yaml', '-o', out])
    expect([w.status, w.stdout, w.stderr]).toEqual([0, '', ''])
    expect(parseAllDocuments(fs.readFileSync(out, 'utf8')).flatMap((d) => objectsOf(d.toJS())).flatMap(problems)).toEqual([])
  })
  it('a fault with no equivalent beside one that has: named on stderr, exit 0', () => {
    const file = path.join(tmp, 'mixed.yaml')
    fs.writeFileSync(file, 'name: mixed\nhypothesis: h\ntarget: { kind: devnet }\nchecks: [{ name: nf, kind: safety, noFork: true }]\ninject:\n  faults:\n    - { type: mempool.flood, params: { ratePerS: 10, durationMs: 1000, senders: 2 } }\n    - { type: node.restart, target: 1 }\n')
    const r = cli(['export', 'chaos-mesh', file])
    expect(r.status).toBe(0)
    expect(r.stderr).toBe(`forkchaos: not exported (no Chaos Mesh equivalent): mempool.flood (${file}: inject.faults[0]): a mempool flood is signed transactions forkchaos sends; Chaos Mesh has no equivalent\n`)
    expect(r.stdout).toContain('# not exported (no Chaos Mesh equivalent): mempool.flood (inject.faults[0]): a mempool flood')
    expect(parseAllDocuments(r.stdout).flatMap((d) => objectsOf(d.toJS())).map((o) => o.kind)).toEqual(['Workflow', 'PodChaos'])
  })
  it('exit 2 with the reason when nothing can be exported; a fork scenario; a bad topology', () => {
    const byz = cli(['export', 'chaos-mesh', 'scenarios/devnet/state-root-flip.yaml'])
    expect(byz.status).toBe(2)
    expect(byz.stdout).toBe('')
    expect(byz.stderr.split('\n')[0]).toBe(
      "forkchaos: scenarios/devnet/state-root-flip.yaml: nothing to export to Chaos Mesh: byzantine.state-root-flip (inject.faults[0]): a byzantine proposer needs forkchaos's proxy on its execution link rewriting what it proposes; Chaos Mesh has no equivalent.",
    )
    const fork = cli(['export', 'chaos-mesh', 'scenarios/defi/reorg.yaml'])
    expect([fork.status, fork.stderr.split('\n')[0]]).toEqual([2, 'forkchaos: scenarios/defi/reorg.yaml: only devnet scenarios (`target.kind: devnet`) can be exported to Chaos Mesh. Got `fork`.'])
    const bad = path.join(tmp, 'bad-topology.yaml')
    fs.writeFileSync(bad, 'name: Bad_Name\nvalidators: []\n')
    const t = cli(['export', 'chaos-mesh', 'scenarios/devnet/partition-2-2.yaml', '--topology', bad])
    expect([t.status, t.stderr.split('\n')[0]]).toEqual([2, `forkchaos: ${bad}:1: \`name\` must match ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$. Got \`"Bad_Name"\`.`])
  })
})
