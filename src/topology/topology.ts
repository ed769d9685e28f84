import * as path from 'node:path'
import { InputError } from '../errors.js'
import { maxValidators } from '../targets/devnet-size.js'
import { readYamlFile } from './yaml-file.js'

/**
 * A topology file (`devnet.yaml`): each validator of a devnet as a consensus command and an
 * execution command (argv templates with placeholders), or as compose services; the Kubernetes
 * pod that runs it (namespace + labels, what `forkchaos export chaos-mesh` selects); and the
 * JSON-RPC endpoint(s) the probes read. `devnet/topologies/embedded.yaml` describes exactly what
 * `startDevnet` spawns.
 */
export type Topology = {
  file: string
  name: string
  description?: string
  /**
   * What the probes read: `forkchaos` (default: the embedded node's own RPC, fc_* — signers,
   * rejections, evidence) or `eth` (each validator's `rpc` over standard eth_getBlockByNumber
   * latest / safe / finalized only: progress, agreement and catch-up on any client).
   */
  probe?: 'forkchaos' | 'eth'
  /** Validators as written: one template for `count` validators (`{id}` in it), or a list. */
  validators: { count: number; template: ValidatorSpec } | ValidatorSpec[]
}

/** One validator as the file writes it; every string may hold placeholders. */
export type ValidatorSpec = {
  name: string
  consensus?: ProcessSpec
  execution?: ProcessSpec & { client?: 'anvil' | 'ethereumjs' | 'reth' | 'other' }
  compose?: { file: string; consensus: string; execution?: string }
  pod: { namespace: string; labels: Record<string, string>; volumePath?: string; containerNames?: string[] }
  rpc: string[]
}

export type ProcessSpec = { command: string[]; env?: Record<string, string> }

/**
 * The placeholders a template may use, with what each stands for. A value forkchaos knows only
 * when it runs the validator (a kernel-picked port, a fresh data dir) is given to `renderValidator`.
 */
export const placeholders = {
  id: 'the validator id, 0 … n−1',
  name: "the validator's name (after its own placeholders)",
  node: 'the Node.js binary forkchaos runs under (process.execPath)',
  forkchaos: "forkchaos's package root (where dist/ is)",
  anvil: 'the Anvil binary forkchaos uses (npm @foundry-rs/anvil-*, or FORKCHAOS_ANVIL)',
  ethereumjs: "@ethereumjs/client's cli.js (run it with {node}; FORKCHAOS_ETHEREUMJS overrides)",
  dataDir: "the validator's data directory",
  genesis: 'the genesis file the execution client starts from',
  anvilGenesis: "an Anvil `--init` genesis: the devnet's chain id, gas limit, genesis time and prefunded accounts (so Anvil need not derive them)",
  genesisTime: 'the genesis timestamp, in seconds since the epoch',
  jwt: 'the JWT secret file of the engine link (hex)',
  rpcPort: "the validator's JSON-RPC port (the one the probes read); 0: the kernel picks",
  p2pPort: "the validator's peer-to-peer port; 0: the kernel picks",
  enginePort: "the execution client's port the consensus process calls (Engine API, or Anvil's JSON-RPC); 0: the kernel picks",
  peers: 'the peer list, host:port of each, comma-separated (forkchaos points it at its link proxies)',
  engineUrl: "the URL the consensus process calls its execution client at: forkchaos's engine link proxy in front of it (consensus commands only)",
} as const

export type Placeholder = keyof typeof placeholders

/** Limits of a topology file: validators ≤ the devnet limit, and the lengths below. */
export const topologyLimits = { validators: maxValidators, argv: 256, arg: 4_096, env: 64, labels: 16, rpc: 8, name: 63 } as const

const placeholderRe = /\{([A-Za-z][A-Za-z0-9]*)\}/g

const str = (maxLength: number, extra: Record<string, unknown> = {}) => ({ type: 'string', minLength: 1, maxLength, ...extra })
const env = { type: 'object', maxProperties: topologyLimits.env, propertyNames: { pattern: '^[A-Za-z_][A-Za-z0-9_]*$', maxLength: 128 }, additionalProperties: { type: 'string', maxLength: topologyLimits.arg } }
const processSpec = (extra: Record<string, unknown> = {}) => ({
  type: 'object',
  additionalProperties: false,
  required: ['command'],
  properties: { command: { type: 'array', minItems: 1, maxItems: topologyLimits.argv, items: { type: 'string', maxLength: topologyLimits.arg } }, env, ...extra },
})
// Kubernetes: a namespace is a DNS-1123 label; a label key is an optional DNS prefix and a name; a value ≤ 63.
const dnsLabel = { type: 'string', minLength: 1, maxLength: 63, pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' }
const validatorSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'pod', 'rpc'],
  properties: {
    name: str(topologyLimits.name),
    consensus: processSpec(),
    execution: processSpec({ client: { enum: ['anvil', 'ethereumjs', 'reth', 'other'] } }),
    compose: {
      type: 'object',
      additionalProperties: false,
      required: ['file', 'consensus'],
      properties: { file: str(4_096), consensus: str(topologyLimits.name), execution: str(topologyLimits.name) },
    },
    pod: {
      type: 'object',
      additionalProperties: false,
      required: ['namespace', 'labels'],
      properties: {
        namespace: dnsLabel,
        labels: {
          type: 'object',
          minProperties: 1,
          maxProperties: topologyLimits.labels,
          propertyNames: { maxLength: 253, pattern: '^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$' },
          // A value may hold `{id}`; it is checked again (≤ 63, Kubernetes' rule) once rendered.
          additionalProperties: { type: 'string', minLength: 1, maxLength: 63 },
        },
        volumePath: str(4_096, { pattern: '^/' }),
        containerNames: { type: 'array', minItems: 1, maxItems: 16, items: dnsLabel },
      },
    },
    rpc: { type: 'array', minItems: 1, maxItems: topologyLimits.rpc, items: str(2_048, { pattern: '^(https?|wss?)://' }) },
  },
}

/** The JSON Schema of a topology file. */
export const topologySchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  title: 'forkchaos topology file',
  type: 'object',
  additionalProperties: false,
  required: ['name', 'validators'],
  properties: {
    name: dnsLabel,
    description: { type: 'string', maxLength: 1_000 },
    probe: { enum: ['forkchaos', 'eth'] },
    validators: {
      oneOf: [
        {
          type: 'object',
          additionalProperties: false,
          required: ['count', 'template'],
          properties: { count: { type: 'integer', minimum: 1, maximum: topologyLimits.validators }, template: validatorSchema },
        },
        { type: 'array', minItems: 1, maxItems: topologyLimits.validators, items: validatorSchema },
      ],
    },
  },
}

/** The topology the CLI uses without `--topology`: the embedded devnet's. */
export const defaultTopologyFile = 'devnet/topologies/embedded.yaml'

/** Reads and validates a topology file; every placeholder it uses must be a known one. */
export function loadTopology(file: string): Topology {
  const specsOf = (raw: Omit<Topology, 'file'>) => (Array.isArray(raw.validators) ? raw.validators.map((v, i) => ({ v, at: `validators[${i}]`, path: ['validators', String(i)] })) : [{ v: raw.validators.template, at: 'validators.template', path: ['validators', 'template'] }])
  // A validator is either processes forkchaos starts or compose services: one of the two.
  const raw = readYamlFile(file, 'topology', topologySchema, (r) => {
    for (const { v, at, path } of specsOf(r as Omit<Topology, 'file'>))
      if ((v.consensus === undefined) === (v.compose === undefined))
        return { path, message: `\`${at}\` must have either \`consensus\` (a command, with \`execution\`) or \`compose\` (services). Got ${v.consensus ? 'both' : 'neither'}.` }
    return undefined
  }) as Omit<Topology, 'file'>
  const specs = specsOf(raw)
  for (const { v, at } of specs)
    for (const [field, value] of stringsOf(v, at)) {
      for (const m of value.matchAll(placeholderRe))
        if (!(m[1] as string in placeholders))
          throw new InputError(`${file}: \`${field}\` uses the placeholder \`{${m[1]}}\`, which is not one of ${Object.keys(placeholders).map((p) => `{${p}}`).join(', ')}.`, { context: { File: file, Field: field } })
    }
  return { file, ...raw }
}

/** Every string of a validator spec with its field name (`validators[1].execution.command[3]`). */
function stringsOf(value: unknown, at: string): [string, string][] {
  if (typeof value === 'string') return [[at, value]]
  if (Array.isArray(value)) return value.flatMap((v, i) => stringsOf(v, `${at}[${i}]`))
  if (value && typeof value === 'object') return Object.entries(value).flatMap(([k, v]) => stringsOf(v, `${at}.${k}`))
  return []
}

/** How many validators a topology has. */
export const validatorCount = (t: Topology) => (Array.isArray(t.validators) ? t.validators.length : t.validators.count)

/** A validator with its placeholders substituted. */
export type RenderedValidator = {
  id: number
  name: string
  consensus?: { command: string[]; env: Record<string, string> }
  execution?: { command: string[]; env: Record<string, string>; client?: string }
  compose?: { file: string; consensus: string; execution?: string }
  pod: { namespace: string; labels: Record<string, string>; volumePath?: string; containerNames?: string[] }
  rpc: string[]
}

/**
 * Validator `id` of the topology with every placeholder substituted from `values` (`id` and
 * `name` are filled in here; `node`, `forkchaos` and `anvil` default to what this forkchaos
 * runs). A placeholder used but given no value is an `InputError` naming it and the field.
 */
export function renderValidator(t: Topology, id: number, values: Partial<Record<Placeholder, string | number>> = {}, defaults: Partial<Record<Placeholder, string>> = {}): RenderedValidator {
  const n = validatorCount(t)
  if (!Number.isInteger(id) || id < 0 || id >= n) throw new InputError(`${t.file}: no validator ${id}; this topology has validators 0–${n - 1}.`)
  const spec = Array.isArray(t.validators) ? (t.validators[id] as ValidatorSpec) : t.validators.template
  const at = Array.isArray(t.validators) ? `validators[${id}]` : 'validators.template'
  const known: Partial<Record<Placeholder, string>> = { ...defaults, id: String(id) }
  for (const [k, v] of Object.entries(values)) if (v !== undefined) known[k as Placeholder] = String(v)
  const sub = (s: string, field: string) =>
    s.replace(placeholderRe, (_, key: string) => {
      const v = known[key as Placeholder]
      if (v === undefined) throw new InputError(`${t.file}: \`${field}\` uses \`{${key}}\`, which has no value here (${placeholders[key as Placeholder] ?? 'unknown'}).`, { context: { File: t.file, Field: field } })
      return v
    })
  const name = sub(spec.name, `${at}.name`)
  known.name = name
  const proc = (p: ProcessSpec | undefined, field: string) =>
    p && { command: p.command.map((a, i) => sub(a, `${field}.command[${i}]`)), env: Object.fromEntries(Object.entries(p.env ?? {}).map(([k, v]) => [k, sub(v, `${field}.env.${k}`)])) }
  const labels = Object.fromEntries(
    Object.entries(spec.pod.labels).map(([k, v]) => {
      const value = sub(v, `${at}.pod.labels.${k}`)
      if (value.length > 63 || !/^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(value))
        throw new InputError(`${t.file}: \`${at}.pod.labels.${k}\` must be a Kubernetes label value (≤ 63 characters of [A-Za-z0-9-_.], alphanumeric at both ends). Got \`${value}\` for validator ${id}.`, { context: { File: t.file, Field: `${at}.pod.labels.${k}` } })
      return [k, value]
    }),
  )
  const consensus = proc(spec.consensus, `${at}.consensus`)
  const execution = proc(spec.execution, `${at}.execution`)
  return {
    id,
    name,
    ...(consensus ? { consensus } : {}),
    ...(execution ? { execution: { ...execution, ...(spec.execution?.client ? { client: spec.execution.client } : {}) } } : {}),
    ...(spec.compose
      ? { compose: { file: sub(spec.compose.file, `${at}.compose.file`), consensus: sub(spec.compose.consensus, `${at}.compose.consensus`), ...(spec.compose.execution ? { execution: sub(spec.compose.execution, `${at}.compose.execution`) } : {}) } }
      : {}),
    pod: {
      namespace: spec.pod.namespace,
      labels,
      ...(spec.pod.volumePath ? { volumePath: sub(spec.pod.volumePath, `${at}.pod.volumePath`) } : {}),
      ...(spec.pod.containerNames ? { containerNames: spec.pod.containerNames } : {}),
    },
    rpc: spec.rpc.map((u, i) => sub(u, `${at}.rpc[${i}]`)),
  }
}

/**
 * Every validator's pod (namespace and labels, what a Chaos Mesh selector matches): these need
 * no runtime values, so only `{id}` and `{name}` may appear in them.
 */
export function podsOf(t: Topology): RenderedValidator['pod'][] {
  return Array.from({ length: validatorCount(t) }, (_, id) => {
    const spec = Array.isArray(t.validators) ? (t.validators[id] as ValidatorSpec) : t.validators.template
    // Only the pod needs rendering here: render a copy without the process templates.
    const podOnly: Topology = { ...t, validators: Array.from({ length: validatorCount(t) }, () => ({ name: spec.name, pod: spec.pod, rpc: ['http://x'] })) }
    return renderValidator(podOnly, id).pod
  })
}

/** Where a topology's relative paths are read from: the file's own directory. */
export const topologyDir = (t: Topology) => path.dirname(path.resolve(t.file))
