import { faults } from '../faults/registry.js'
import { devnetSizes, maxValidators } from '../targets/devnet-size.js'
import { checkSchema } from '../checks/registry.js'
import { stepSchema } from '../steps/registry.js'
import { addressOrName, duration, limits, list, name, signature, text } from './schema-parts.js'
import { valueDefinition, valueLimits } from './values.js'
import { sweepSchema } from './sweep.js'

export { durationPattern, limits } from './schema-parts.js'
export { checkSchema } from '../checks/registry.js'
export { stepSchema } from '../steps/registry.js'

const faultSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['type'],
  properties: {
    type: { enum: Object.keys(faults) },
    target: { type: ['string', 'integer'], minimum: 0, maximum: maxValidators - 1, maxLength: 256, description: 'A contract name or address (fork), a proxy name (rpc.*), or a validator id 0 … n−1 (devnet, n = `target.validators`).' },
    params: { type: 'object' },
  },
  // Each fault's params schema as its declaration gives it (src/Params.ts), with its summary and target kind for editors.
  allOf: Object.values(faults).map((fault) => ({
    if: { properties: { type: { const: fault.type } } },
    then: { description: `${fault.summary} (needs a ${fault.target === 'proxy' ? 'JSON-RPC fault proxy' : `${fault.target} target`})`, properties: { params: fault.paramsSchema } },
  })),
}

/** References to the schema's shared definitions. */
const ref = { fault: { $ref: '#/definitions/fault' }, step: { $ref: '#/definitions/step' }, check: { $ref: '#/definitions/check' } } as const

/** A protocol view: a signature, or `{ fn, args }` with at most 8 constant arguments of at most 200 characters. */
const protocolView = {
  oneOf: [
    signature,
    {
      type: 'object',
      additionalProperties: false,
      required: ['fn'],
      properties: { fn: signature, args: list({ type: ['string', 'number', 'boolean'], maxLength: valueLimits.argChars }, valueLimits.args) },
    },
  ],
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
        sharePrice: protocolView,
        riskMode: protocolView,
        bountyCap: protocolView,
        bountyEvent: {
          oneOf: [
            { type: 'string', maxLength: 1_000, description: 'Event signature with an `amount` field.' },
            {
              type: 'object',
              additionalProperties: false,
              required: ['event'],
              description: 'The event with its fields named: `amount` (default `amount`) is the bounty; `cap`, if the event has one, the cap the protocol applied.',
              properties: { event: { type: 'string', maxLength: 1_000 }, amount: { type: 'string', maxLength: 128 }, cap: { type: 'string', maxLength: 128 } },
            },
          ],
        },
        lender: {
          type: 'object',
          additionalProperties: false,
          required: ['address', 'token'],
          properties: { address: addressOrName, token: addressOrName },
        },
        state: list(protocolView, limits.signatures),
        signals: list({ type: 'string', maxLength: 1_000 }, limits.signatures),
        guards: {
          type: 'object',
          additionalProperties: false,
          description: 'The guards the protocol means to have. `forkchaos explore` tests around each, and a threshold it finds more than 5 % away from one declared is a failing row naming both.',
          properties: {
            deviationBps: { type: 'integer', minimum: 1, maximum: 9_999, description: 'Most the price feed may sit from the TWAP before the vault stops trading (ONLY_UNWIND), in basis points.' },
            heartbeatS: { type: 'integer', minimum: 1, maximum: 31_536_000, description: 'Oldest feed answer the vault still trades on, in seconds (at most a year).' },
            maxGasPriceGwei: { type: 'number', minimum: 0.000_000_001, maximum: 1_000_000, description: "Gas price above which the keeper's bounty is capped, in gwei." },
          },
        },
      },
    },
  ],
}

/**
 * The JSON Schema of a scenario file. The loader validates every file against it; the build
 * writes it to `schema/scenario.schema.json` for editors (yaml-language-server). Steps and checks
 * come from their registries (src/steps/registry.ts, src/checks/registry.ts), faults from theirs.
 */
export const scenarioSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://forkchaos.dev/schema/scenario.json',
  title: 'forkchaos scenario',
  type: 'object',
  // A value (a constant or a view read from the chain), referenced wherever a step or check takes
  // one; a fault, a step and a check, each referenced from every list that holds one: the
  // validator the build writes (ajv standalone code) then holds each once, not once a place.
  definitions: { value: valueDefinition, fault: faultSchema, step: stepSchema, check: checkSchema },
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
        engine: { enum: ['anvil', 'hardhat'], description: 'Fork only: the node the fork runs on: anvil (default) or hardhat (a Hardhat node, EDR, from npm `hardhat`, forking the same chain at the same block). Faults, steps and checks a Hardhat node cannot serve (reorgs, call traces, a keeper process) are refused at load. `forkchaos run --engine` overrides it.' },
        validators: { enum: [...devnetSizes], description: 'Devnet only: validators, n = 3f+1 (4: f = 1, 7: f = 2, 10: f = 3). Default 4.' },
        slot: duration(limits.slotMaxMs, 'Devnet only: slot time (default 1s; 2s with `el: ethereumjs`)', limits.slotMinMs),
        el: { enum: ['anvil', 'ethereumjs'], description: 'Devnet only: every validator\'s execution client: anvil (default) or ethereumjs (npm @ethereumjs/client, over the Engine API). `forkchaos run --el` overrides it.' },
        topology: { type: 'string', minLength: 1, maxLength: 4_096, description: 'Devnet only: a topology file (devnet.yaml; relative to this file) the validators are started from: each a consensus and an execution command with placeholders. Default: devnet/topologies/embedded.yaml (ethereumjs.yaml with `el: ethereumjs`). `forkchaos run --topology` overrides it.' },
        honest: { type: 'array', items: { type: 'integer', minimum: 0, maximum: maxValidators - 1 }, maxItems: maxValidators, description: 'Devnet only: validators whose agreement the safety checks judge (default: all not under a byzantine fault).' },
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
    sweep: sweepSchema,
    contracts: {
      oneOf: [
        { type: 'object', maxProperties: limits.names, additionalProperties: { type: 'string', pattern: '^0x[0-9a-fA-F]{40}$' }, not: { anyOf: [{ required: ['foundry'] }, { required: ['hardhat'] }] } },
        {
          type: 'object',
          additionalProperties: false,
          required: ['foundry'],
          description: 'A Foundry project (relative to this file): addresses from broadcast/<script>/<chainId>/run-latest.json, ABIs from out/.',
          properties: { foundry: { type: 'string', minLength: 1, maxLength: 4_096 }, script: { type: 'string', pattern: '^[A-Za-z0-9_.-]{1,128}$' }, chainId: { type: 'integer', minimum: 1, maximum: 4_294_967_295 } },
        },
        {
          type: 'object',
          additionalProperties: false,
          required: ['hardhat'],
          description: 'A Hardhat project (relative to this file): addresses from ignition/deployments/<deployment>/deployed_addresses.json, ABIs from artifacts/.',
          properties: { hardhat: { type: 'string', minLength: 1, maxLength: 4_096 }, deployment: { type: 'string', pattern: '^[A-Za-z0-9_.-]{1,128}$' } },
        },
      ],
    },
    accounts: { type: 'object', maxProperties: limits.names, additionalProperties: { type: 'string', pattern: '^0x[0-9a-fA-F]{40}$' } },
    protocol: protocolSchema,
    checks: list(ref.check, limits.checks),
    stop: { type: 'array', items: ref.check, maxItems: limits.checks, description: 'Checks that must keep holding; the first to break aborts the experiment.' },
    baseline: { type: 'object', additionalProperties: false, properties: { steps: list(ref.step, limits.steps), duration: duration(limits.phaseMs, 'How long the baseline is observed') } },
    inject: {
      type: 'object',
      additionalProperties: false,
      required: ['faults'],
      // A soak (with `random`) may hold its faults for a day; a drill for an hour.
      if: { required: ['random'] },
      else: { properties: { duration: duration(limits.phaseMs, 'How long the faults are held') } },
      properties: {
        faults: list(ref.fault, limits.faults),
        steps: list(ref.step, limits.steps),
        duration: duration(limits.soakMs, 'How long the faults are held (at most 1h without `random`)'),
        random: {
          type: 'object',
          additionalProperties: false,
          required: ['faults', 'every'],
          description: 'Devnet soak: fire faults drawn from `faults` (seeded) every `every`, each for `hold`, never more than `budget` validators faulty at once.',
          properties: {
            faults: list(ref.fault, limits.faults, { minItems: 1 }),
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
        steps: list(ref.step, limits.steps),
        attempts: { type: 'integer', minimum: 1, maximum: 100, description: 'Times the recover steps may run until every check holds.' },
        duration: duration(limits.phaseMs, 'The recovery window'),
      },
    },
  },
} as const
