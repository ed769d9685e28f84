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

/** Schema pieces shared by the scenario schema and the step, check and fault units that feed it. */
export const phases = { enum: ['baseline', 'inject', 'recover'] }
export const kind = { enum: ['safety', 'liveness'] }
export const text = { type: 'string', maxLength: limits.stringChars }
export const name = { type: 'string', pattern: '^[a-z0-9][a-z0-9-]*$', maxLength: 128 }
export const addressOrName = { type: 'string', minLength: 1, maxLength: 256 }
export const signature = { type: 'string', pattern: '^[A-Za-z_$][\\w$]*\\(.*\\)', maxLength: 1_000 }
export const scalar = { type: ['string', 'number', 'boolean'], maxLength: limits.stringChars }
export const args = { type: 'array', items: scalar, maxItems: limits.args }
export const expect = { enum: ['success', 'revert', 'any'] }
/** A check's params that are `true` (its defaults) or an object of these options. */
export const trueOrOptions = (properties: Record<string, unknown>) => ({ oneOf: [{ const: true }, { type: 'object', additionalProperties: false, properties }] })
/** The pattern of a duration string; the loader's parser (src/util/duration.ts) reads the same. */
export const durationPattern = '^\\d+(\\.\\d+)?(ms|s|m|h|d)$'
/**
 * A duration: a string like "300ms", "2s", "5m", or a number of milliseconds, at most `maxMs`.
 * `maximum` bounds the number form for editors; `maxDurationMs` (checked by the loader's Ajv
 * keyword) bounds both forms.
 */
export const duration = (maxMs: number, what = 'A duration', minMs = 0) => ({
  type: ['string', 'number'],
  pattern: durationPattern,
  maxLength: 32,
  minimum: minMs,
  maximum: maxMs,
  ...(minMs > 0 ? { minDurationMs: minMs } : {}),
  maxDurationMs: maxMs,
  description: `${what} like "300ms", "2s", "5m" (a number is milliseconds); ${minMs > 0 ? `at least ${formatDurationMs(minMs)} and ` : ''}at most ${formatDurationMs(maxMs)}.`,
})
export const list = (items: unknown, maxItems: number, extra: Record<string, unknown> = {}) => ({ type: 'array', items, maxItems, ...extra })

export const oneKey = (key: string, value: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  type: 'object',
  additionalProperties: false,
  required: [key],
  properties: { [key]: value, ...extra },
})

