import { faults } from '../faults/registry.js'

/**
 * The JSON Schema of a scenario file. The loader validates every file against it; the build
 * writes it to `schema/scenario.schema.json` for editors (yaml-language-server).
 */
const phases = { enum: ['baseline', 'inject', 'recover'] }
const kind = { enum: ['safety', 'liveness'] }
const name = { type: 'string', pattern: '^[a-z0-9][a-z0-9-]*$' }
const addressOrName = { type: 'string', minLength: 1 }
const signature = { type: 'string', pattern: '^[A-Za-z_$][\\w$]*\\(.*\\)' }
const scalar = { type: ['string', 'number', 'boolean'] }
const args = { type: 'array', items: scalar }
const expect = { enum: ['success', 'revert', 'any'] }
const duration = { type: ['string', 'number'], pattern: '^\\d+(\\.\\d+)?(ms|s|m|h|d)$', description: 'A duration like "300ms", "2s", "5m".' }

const oneKey = (key: string, value: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  type: 'object',
  additionalProperties: false,
  required: [key],
  properties: { [key]: value, ...extra },
})

const txFields = {
  from: addressOrName,
  expect,
  reason: { type: 'string', description: 'With expect: revert, the reason must contain this.' },
  kind,
  label: { type: 'string' },
}

const walk = {
  type: 'object',
  additionalProperties: false,
  required: ['target', 'stepBps', 'maxBps'],
  properties: {
    target: addressOrName,
    stepBps: { type: 'number', exclusiveMinimum: 0, maximum: 1_000 },
    maxBps: { type: 'number', exclusiveMinimum: 0, maximum: 5_000 },
  },
}

export const stepSchema = {
  oneOf: [
    oneKey('cycle', {
      type: 'object',
      additionalProperties: false,
      properties: {
        ...txFields,
        count: { type: 'integer', minimum: 1, maximum: 100_000 },
        gasPriceGwei: { type: 'number', exclusiveMinimum: 0 },
        intervalS: { type: 'integer', minimum: 0, maximum: 86_400 },
      },
    }),
    oneKey('call', {
      type: 'object',
      additionalProperties: false,
      required: ['to', 'fn'],
      properties: { ...txFields, to: addressOrName, fn: signature, args, value: { type: 'string' } },
    }),
    oneKey('mine', {
      type: 'object',
      additionalProperties: false,
      properties: { blocks: { type: 'integer', minimum: 1, maximum: 10_000 }, intervalS: { type: 'integer', minimum: 1 } },
    }),
    oneKey('warp', {
      type: 'object',
      additionalProperties: false,
      required: ['seconds'],
      properties: { seconds: { type: 'integer', minimum: 1 } },
    }),
    oneKey('stress', {
      type: 'object',
      additionalProperties: false,
      required: ['cycles'],
      properties: {
        cycles: { type: 'integer', minimum: 1, maximum: 1_000_000 },
        from: addressOrName,
        intervalS: { type: 'integer', minimum: 0, maximum: 86_400 },
        walk: {
          type: 'object',
          additionalProperties: false,
          properties: { pair: walk, feed: walk },
        },
      },
    }),
    oneKey('keeper', {
      type: 'object',
      additionalProperties: false,
      required: ['mode', 'duration'],
      properties: {
        mode: { enum: ['naive', 'budgeted'] },
        duration: duration,
        interval: duration,
        timeout: duration,
        budgetRatio: { type: 'number', minimum: 0, maximum: 10 },
        maxAttempts: { type: 'integer', minimum: 1, maximum: 100 },
        from: addressOrName,
        label: { type: 'string' },
      },
    }),
    oneKey('module', {
      type: 'object',
      additionalProperties: false,
      required: ['path'],
      properties: { path: { type: 'string' }, label: { type: 'string' } },
    }),
  ],
}

const checkBodies = {
  sharePriceFloor: {
    type: 'object',
    additionalProperties: false,
    required: ['minBps'],
    properties: { minBps: { type: 'number', minimum: 0, maximum: 10_000, description: 'Floor as a share of the baseline share price.' } },
  },
  cycleAtomic: { const: true },
  bountyCapped: { const: true },
  flashRepaid: { const: true },
  cyclesSucceed: { const: true },
  riskMode: { type: 'object', additionalProperties: false, required: ['equals'], properties: { equals: { type: 'integer' } } },
  view: {
    type: 'object',
    additionalProperties: false,
    required: ['to', 'fn'],
    properties: {
      to: addressOrName,
      fn: signature,
      args,
      equals: scalar,
      atLeast: scalar,
      atMost: scalar,
      equalsView: {
        type: 'object',
        additionalProperties: false,
        required: ['to', 'fn'],
        properties: { to: addressOrName, fn: signature, args },
      },
    },
  },
  reverts: {
    type: 'object',
    additionalProperties: false,
    required: ['to', 'fn'],
    properties: { to: addressOrName, fn: signature, args, from: addressOrName, reason: { type: 'string' } },
  },
  progress: { type: 'object', additionalProperties: false, properties: { minCommitsPerSlot: { type: 'number', minimum: 0, maximum: 1 } } },
  noFork: { const: true },
  mustStall: { const: true },
  catchUp: { type: 'object', additionalProperties: false, required: ['node', 'withinMs'], properties: { node: { type: 'integer', minimum: 0, maximum: 3 }, withinMs: { type: 'integer', minimum: 0 } } },
  rejects: { type: 'object', additionalProperties: false, required: ['proposer'], properties: { proposer: { type: 'integer', minimum: 0, maximum: 3 } } },
  driftRejected: { type: 'object', additionalProperties: false, required: ['proposer'], description: "The validator's proposals are refused for timestamp drift by the others, and none of its blocks commits (clock-skew drills).", properties: { proposer: { type: 'integer', minimum: 0, maximum: 3 } } },
  evidence: { type: 'object', additionalProperties: false, required: ['validator'], properties: { validator: { type: 'integer', minimum: 0, maximum: 3 } } },
  memory: { type: 'object', additionalProperties: false, required: ['maxRssMb'], properties: { maxRssMb: { type: 'number', exclusiveMinimum: 0 } } },
  inclusion: { type: 'object', additionalProperties: false, required: ['maxMs'], properties: { maxMs: { type: 'integer', minimum: 1 } } },
  keeperLoad: {
    type: 'object',
    additionalProperties: false,
    properties: {
      step: { type: 'string', description: 'The keeper step\'s label; default every keeper step in the phase.' },
      maxAmplification: { type: 'number', minimum: 0 },
      minAmplification: { type: 'number', minimum: 0 },
      minSuccessRate: { type: 'number', minimum: 0, maximum: 1 },
      minStaleReads: { type: 'integer', minimum: 0, description: 'The keeper noticed a stale node this many times.' },
    },
  },
  module: { type: 'string' },
}

export const checkKeys = Object.keys(checkBodies) as (keyof typeof checkBodies)[]

export const checkSchema = {
  type: 'object',
  required: ['name', 'kind'],
  properties: { name, kind, phases: { type: 'array', items: phases, minItems: 1 }, ...checkBodies },
  additionalProperties: false,
  oneOf: checkKeys.map((key) => ({ required: [key] })),
}

const faultSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['type'],
  properties: {
    type: { enum: Object.keys(faults) },
    target: { type: ['string', 'integer'], description: 'A contract name or address (fork), a proxy name (rpc.*), or a validator id (devnet).' },
    params: { type: 'object' },
  },
  allOf: Object.values(faults).map((fault) => ({
    if: { properties: { type: { const: fault.type } } },
    then: { properties: { params: fault.paramsSchema } },
  })),
}

const protocolSchema = {
  oneOf: [
    { const: 'reference' },
    {
      type: 'object',
      additionalProperties: false,
      required: ['vault', 'entry'],
      properties: {
        vault: addressOrName,
        entry: signature,
        sharePrice: signature,
        riskMode: signature,
        bountyCap: signature,
        bountyEvent: { type: 'string', description: 'Event signature with an `amount` field.' },
        lender: {
          type: 'object',
          additionalProperties: false,
          required: ['address', 'token'],
          properties: { address: addressOrName, token: addressOrName },
        },
        state: { type: 'array', items: signature },
        signals: { type: 'array', items: { type: 'string' } },
      },
    },
  ],
}

export const scenarioSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://forkchaos.dev/schema/scenario.json',
  title: 'forkchaos scenario',
  type: 'object',
  additionalProperties: false,
  required: ['name', 'hypothesis', 'inject'],
  properties: {
    name,
    description: { type: 'string' },
    hypothesis: { type: 'string', minLength: 1 },
    target: {
      type: 'object',
      additionalProperties: false,
      properties: {
        kind: { enum: ['fork', 'devnet'] },
        isolation: { enum: ['snapshot', 'fresh'] },
        validators: { const: 4, description: 'Devnet only: validators (4: f = 1).' },
        slot: { ...duration, description: 'Devnet only: slot time, e.g. "1s" or "500ms".' },
        honest: { type: 'array', items: { type: 'integer', minimum: 0, maximum: 3 }, description: 'Devnet only: validators whose agreement the safety checks judge (default: all not under a byzantine fault).' },
        rpcProxy: { type: 'boolean', description: 'Put a JSON-RPC fault proxy (named `fork`) in front of the fork, for keepers and rpc.* faults.' },
        upstreamProxy: {
          type: 'boolean',
          description: 'Fork the upstream through a JSON-RPC fault proxy (named `upstream`): the fork\'s own upstream reads can be degraded. Implies a fresh fork.',
        },
        anvil: {
          type: 'object',
          additionalProperties: false,
          description: 'Anvil\'s own upstream flags, set deliberately: they absorb or reshape upstream faults.',
          properties: {
            retries: { type: 'integer', minimum: 0, maximum: 100 },
            timeoutMs: { type: 'integer', minimum: 1 },
            computeUnitsPerSecond: { type: 'integer', minimum: 1 },
          },
        },
      },
    },
    contracts: { type: 'object', additionalProperties: { type: 'string', pattern: '^0x[0-9a-fA-F]{40}$' } },
    accounts: { type: 'object', additionalProperties: { type: 'string', pattern: '^0x[0-9a-fA-F]{40}$' } },
    protocol: protocolSchema,
    checks: { type: 'array', items: checkSchema },
    stop: { type: 'array', items: checkSchema, description: 'Checks that must keep holding; the first to break aborts the experiment.' },
    baseline: { type: 'object', additionalProperties: false, properties: { steps: { type: 'array', items: stepSchema }, duration } },
    inject: {
      type: 'object',
      additionalProperties: false,
      required: ['faults'],
      properties: {
        faults: { type: 'array', items: faultSchema },
        steps: { type: 'array', items: stepSchema },
        duration,
        random: {
          type: 'object',
          additionalProperties: false,
          required: ['faults', 'every'],
          description: 'Devnet soak: fire faults drawn from `faults` (seeded) every `every`, each for `hold`, never more than `budget` validators faulty at once.',
          properties: {
            faults: { type: 'array', minItems: 1, items: faultSchema },
            every: duration,
            hold: duration,
            budget: { type: 'integer', minimum: 0, maximum: 1 },
            flakeBudget: { type: 'integer', minimum: 0, description: 'Transient liveness misses allowed before the soak counts as degraded.' },
          },
        },
      },
    },
    recover: {
      type: 'object',
      additionalProperties: false,
      properties: {
        steps: { type: 'array', items: stepSchema },
        attempts: { type: 'integer', minimum: 1, maximum: 100, description: 'Times the recover steps may run until every check holds.' },
        duration,
      },
    },
  },
} as const
