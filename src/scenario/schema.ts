import { faults } from '../faults/registry.js'
import { formatDurationMs } from '../util/duration.js'

/**
 * Limits on a scenario file, each stated in the schema and in the loader's error message (a
 * limit on everything). Sizes of the file itself are checked before it is parsed.
 */
export const limits = {
  /** Bytes in a scenario file (the shipped ones are under 2 KiB). */
  fileBytes: 65_536,
  /** Nesting levels of YAML collections. */
  depth: 64,
  /** Values (scalars and collections) after every alias is expanded: an alias bomb stops here. */
  expandedValues: 100_000,
  /** `baseline.duration`, `recover.duration`, `inject.duration` without `random`, a keeper step's `duration`, a soak's `every` and `hold`. */
  phaseMs: 3_600_000,
  /** `inject.duration` of a soak (with `inject.random`). */
  soakMs: 86_400_000,
  /** A keeper step's `interval` and `timeout`. */
  keeperTickMs: 600_000,
  /** `target.slot` (the devnet accepts 200 ms to 60 s). */
  slotMinMs: 200,
  slotMaxMs: 60_000,
  /** Steps per phase, checks, stop conditions. */
  steps: 1_000,
  checks: 1_000,
  /** Faults in `inject.faults` and in `inject.random.faults`. */
  faults: 100,
  /** Arguments of a call or view, names in `contracts` / `accounts`, signatures in `protocol.state` / `signals`. */
  args: 64,
  names: 1_000,
  signatures: 100,
  /** Characters of a string value (names, signatures, reasons, hypotheses). */
  stringChars: 10_000,
} as const

/**
 * The JSON Schema of a scenario file. The loader validates every file against it; the build
 * writes it to `schema/scenario.schema.json` for editors (yaml-language-server).
 */
const phases = { enum: ['baseline', 'inject', 'recover'] }
const kind = { enum: ['safety', 'liveness'] }
const text = { type: 'string', maxLength: limits.stringChars }
const name = { type: 'string', pattern: '^[a-z0-9][a-z0-9-]*$', maxLength: 128 }
const addressOrName = { type: 'string', minLength: 1, maxLength: 256 }
const signature = { type: 'string', pattern: '^[A-Za-z_$][\\w$]*\\(.*\\)', maxLength: 1_000 }
const scalar = { type: ['string', 'number', 'boolean'], maxLength: limits.stringChars }
const args = { type: 'array', items: scalar, maxItems: limits.args }
const expect = { enum: ['success', 'revert', 'any'] }
/** The pattern of a duration string; the loader's parser (src/util/duration.ts) reads the same. */
export const durationPattern = '^\\d+(\\.\\d+)?(ms|s|m|h|d)$'
/**
 * A duration: a string like "300ms", "2s", "5m", or a number of milliseconds, at most `maxMs`.
 * `maximum` bounds the number form for editors; `maxDurationMs` (checked by the loader's Ajv
 * keyword) bounds both forms.
 */
const duration = (maxMs: number, what = 'A duration', minMs = 0) => ({
  type: ['string', 'number'],
  pattern: durationPattern,
  maxLength: 32,
  minimum: minMs,
  maximum: maxMs,
  ...(minMs > 0 ? { minDurationMs: minMs } : {}),
  maxDurationMs: maxMs,
  description: `${what} like "300ms", "2s", "5m" (a number is milliseconds); ${minMs > 0 ? `at least ${formatDurationMs(minMs)} and ` : ''}at most ${formatDurationMs(maxMs)}.`,
})
const list = (items: unknown, maxItems: number, extra: Record<string, unknown> = {}) => ({ type: 'array', items, maxItems, ...extra })

const oneKey = (key: string, value: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  type: 'object',
  additionalProperties: false,
  required: [key],
  properties: { [key]: value, ...extra },
})

const txFields = {
  from: addressOrName,
  expect,
  reason: { ...text, description: 'With expect: revert, the reason must contain this.' },
  kind,
  label: text,
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
        gasPriceGwei: { type: 'number', exclusiveMinimum: 0, maximum: 1_000_000 },
        intervalS: { type: 'integer', minimum: 0, maximum: 86_400 },
      },
    }),
    oneKey('call', {
      type: 'object',
      additionalProperties: false,
      required: ['to', 'fn'],
      properties: { ...txFields, to: addressOrName, fn: signature, args, value: { type: 'string', maxLength: 100, description: 'Wei, e.g. "1e18".' } },
    }),
    oneKey('mine', {
      type: 'object',
      additionalProperties: false,
      properties: { blocks: { type: 'integer', minimum: 1, maximum: 10_000 }, intervalS: { type: 'integer', minimum: 1, maximum: 86_400 } },
    }),
    oneKey('warp', {
      type: 'object',
      additionalProperties: false,
      required: ['seconds'],
      properties: { seconds: { type: 'integer', minimum: 1, maximum: 315_360_000, description: 'At most 10 years.' } },
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
        duration: duration(limits.phaseMs, 'How long the keeper runs'),
        interval: duration(limits.keeperTickMs, 'Time between cycles'),
        timeout: duration(limits.keeperTickMs, 'Per-request timeout'),
        budgetRatio: { type: 'number', minimum: 0, maximum: 10 },
        maxAttempts: { type: 'integer', minimum: 1, maximum: 100 },
        from: addressOrName,
        label: text,
      },
    }),
    oneKey('module', {
      type: 'object',
      additionalProperties: false,
      required: ['path'],
      properties: { path: { type: 'string', maxLength: 4_096 }, label: text },
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
  riskMode: { type: 'object', additionalProperties: false, required: ['equals'], properties: { equals: { type: 'integer', minimum: 0, maximum: 255, description: 'A uint8 risk mode.' } } },
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
    properties: { to: addressOrName, fn: signature, args, from: addressOrName, reason: text },
  },
  progress: { type: 'object', additionalProperties: false, properties: { minCommitsPerSlot: { type: 'number', minimum: 0, maximum: 1 } } },
  noFork: { const: true },
  mustStall: { const: true },
  catchUp: { type: 'object', additionalProperties: false, required: ['node', 'withinMs'], properties: { node: { type: 'integer', minimum: 0, maximum: 3 }, withinMs: { type: 'integer', minimum: 0, maximum: limits.phaseMs } } },
  rejects: { type: 'object', additionalProperties: false, required: ['proposer'], properties: { proposer: { type: 'integer', minimum: 0, maximum: 3 } } },
  driftRejected: { type: 'object', additionalProperties: false, required: ['proposer'], description: "The validator's proposals are refused for timestamp drift by the others, and none of its blocks commits (clock-skew drills).", properties: { proposer: { type: 'integer', minimum: 0, maximum: 3 } } },
  evidence: { type: 'object', additionalProperties: false, required: ['validator'], properties: { validator: { type: 'integer', minimum: 0, maximum: 3 } } },
  memory: { type: 'object', additionalProperties: false, required: ['maxRssMb'], properties: { maxRssMb: { type: 'number', exclusiveMinimum: 0, maximum: 65_536 } } },
  inclusion: { type: 'object', additionalProperties: false, required: ['maxMs'], properties: { maxMs: { type: 'integer', minimum: 1, maximum: limits.phaseMs } } },
  keeperLoad: {
    type: 'object',
    additionalProperties: false,
    properties: {
      step: { ...text, description: 'The keeper step\'s label; default every keeper step in the phase.' },
      maxAmplification: { type: 'number', minimum: 0, maximum: 1_000_000 },
      minAmplification: { type: 'number', minimum: 0, maximum: 1_000_000 },
      minSuccessRate: { type: 'number', minimum: 0, maximum: 1 },
      minStaleReads: { type: 'integer', minimum: 0, maximum: 100_000, description: 'The keeper noticed a stale node this many times.' },
    },
  },
  module: { type: 'string', maxLength: 4_096 },
}

export const checkKeys = Object.keys(checkBodies) as (keyof typeof checkBodies)[]

export const checkSchema = {
  type: 'object',
  required: ['name', 'kind'],
  properties: { name, kind, phases: { type: 'array', items: phases, minItems: 1, maxItems: 3 }, ...checkBodies },
  additionalProperties: false,
  oneOf: checkKeys.map((key) => ({ required: [key] })),
}

const faultSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['type'],
  properties: {
    type: { enum: Object.keys(faults) },
    target: { type: ['string', 'integer'], minimum: 0, maximum: 3, maxLength: 256, description: 'A contract name or address (fork), a proxy name (rpc.*), or a validator id 0–3 (devnet).' },
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
        bountyEvent: { type: 'string', maxLength: 1_000, description: 'Event signature with an `amount` field.' },
        lender: {
          type: 'object',
          additionalProperties: false,
          required: ['address', 'token'],
          properties: { address: addressOrName, token: addressOrName },
        },
        state: list(signature, limits.signatures),
        signals: list({ type: 'string', maxLength: 1_000 }, limits.signatures),
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
    description: text,
    hypothesis: { ...text, minLength: 1 },
    target: {
      type: 'object',
      additionalProperties: false,
      properties: {
        kind: { enum: ['fork', 'devnet'] },
        isolation: { enum: ['snapshot', 'fresh'] },
        validators: { const: 4, description: 'Devnet only: validators (4: f = 1).' },
        slot: duration(limits.slotMaxMs, 'Devnet only: slot time', limits.slotMinMs),
        honest: { type: 'array', items: { type: 'integer', minimum: 0, maximum: 3 }, maxItems: 4, description: 'Devnet only: validators whose agreement the safety checks judge (default: all not under a byzantine fault).' },
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
            timeoutMs: { type: 'integer', minimum: 1, maximum: 600_000 },
            computeUnitsPerSecond: { type: 'integer', minimum: 1, maximum: 1_000_000 },
          },
        },
      },
    },
    contracts: { type: 'object', maxProperties: limits.names, additionalProperties: { type: 'string', pattern: '^0x[0-9a-fA-F]{40}$' } },
    accounts: { type: 'object', maxProperties: limits.names, additionalProperties: { type: 'string', pattern: '^0x[0-9a-fA-F]{40}$' } },
    protocol: protocolSchema,
    checks: list(checkSchema, limits.checks),
    stop: { type: 'array', items: checkSchema, maxItems: limits.checks, description: 'Checks that must keep holding; the first to break aborts the experiment.' },
    baseline: { type: 'object', additionalProperties: false, properties: { steps: list(stepSchema, limits.steps), duration: duration(limits.phaseMs, 'How long the baseline is observed') } },
    inject: {
      type: 'object',
      additionalProperties: false,
      required: ['faults'],
      // A soak (with `random`) may hold its faults for a day; a drill for an hour.
      if: { required: ['random'] },
      else: { properties: { duration: duration(limits.phaseMs, 'How long the faults are held') } },
      properties: {
        faults: list(faultSchema, limits.faults),
        steps: list(stepSchema, limits.steps),
        duration: duration(limits.soakMs, 'How long the faults are held (at most 1h without `random`)'),
        random: {
          type: 'object',
          additionalProperties: false,
          required: ['faults', 'every'],
          description: 'Devnet soak: fire faults drawn from `faults` (seeded) every `every`, each for `hold`, never more than `budget` validators faulty at once.',
          properties: {
            faults: list(faultSchema, limits.faults, { minItems: 1 }),
            every: duration(limits.phaseMs, 'Time between random faults'),
            hold: duration(limits.phaseMs, 'How long each random fault is held'),
            budget: { type: 'integer', minimum: 0, maximum: 1 },
            flakeBudget: { type: 'integer', minimum: 0, maximum: 1_000, description: 'Transient liveness misses allowed before the soak counts as degraded.' },
          },
        },
      },
    },
    recover: {
      type: 'object',
      additionalProperties: false,
      properties: {
        steps: list(stepSchema, limits.steps),
        attempts: { type: 'integer', minimum: 1, maximum: 100, description: 'Times the recover steps may run until every check holds.' },
        duration: duration(limits.phaseMs, 'The recovery window'),
      },
    },
  },
} as const
