import { define, valueOf } from '../Check.js'
import { type RunContext, toArg } from '../scenario/context.js'
import { addressOrName, scalar, signature } from '../scenario/schema-parts.js'
import type { Scalar } from '../scenario/types.js'
import { argProblem, callProblem, isViewValue, type Value, valueLimits, valueSchema } from '../scenario/values.js'
import type { Read } from '../probes/fork.js'

/** A view as a check names it: the contract, the function, its arguments (constants or views). */
export type ViewCheckRef = { to: string; fn: string; args?: Value[] }

export type ViewParams = ViewCheckRef & {
  equals?: Scalar
  atLeast?: Value
  atMost?: Value
  /** A ceiling: a constant or a view. */
  max?: Value
  equalsView?: ViewCheckRef
  /** At least this share (bps) of the view's value before the baseline. */
  atLeastBaselineBps?: number
  /** Within [minBps, maxBps] of the view's value before the baseline. */
  band?: { minBps: number; maxBps: number }
}

const argsSchema = { type: 'array', items: valueSchema(), maxItems: valueLimits.args, description: 'Constants, or views read at the window\'s end.' }
const viewRefSchema = { to: addressOrName, fn: signature, args: argsSchema }
const bps = { type: 'number', minimum: 0, maximum: 1_000_000 }

/** Names resolved, numbers parsed: a constant a view's answer is compared with. */
const bound = (ctx: RunContext, v: Scalar | undefined, field: string) => (v === undefined ? undefined : toArg(v, ctx.resolve, field))
/** `equals` as compared: a 0x string case-blind, a boolean as is, anything else as an ABI value. */
const boundEquals = (ctx: RunContext, v: Scalar | undefined) => (typeof v === 'string' && v.startsWith('0x') ? v.toLowerCase() : typeof v === 'boolean' ? v : bound(ctx, v, 'view.equals'))
const asValue = (ref: ViewCheckRef): Value => ({ view: ref.fn, on: ref.to, ...(ref.args ? { args: ref.args } : {}) })
const read = (ref: ViewCheckRef, field: string): Read => ({ kind: 'value', value: asValue(ref), field })

/** A view's answer as compared: an address case-blind, a small uint (decoded as a number) as a bigint. */
const norm = (v: unknown): unknown =>
  typeof v === 'bigint' || typeof v === 'boolean' ? v : typeof v === 'string' && v.startsWith('0x') ? v.toLowerCase() : typeof v === 'number' ? BigInt(v) : typeof v === 'string' ? toArg(v, (n) => n as `0x${string}`, 'view') : v

const ofBps = (start: bigint, b: number) => (start * BigInt(Math.round(b * 100))) / 1_000_000n

/**
 * Any view at the window's end, compared with a value, bounds (constants or views read then),
 * another view, or its own value before the baseline (`atLeastBaselineBps`, `band`): an inflated
 * share price then cannot hide a loss from a floor-only check.
 */
export const view = define({
  name: 'view',
  target: 'fork',
  summary: 'any view equals / is at least / at most a value or a view, equals another view, or stays within bps of its value before the baseline',
  params: {
    type: 'object',
    additionalProperties: false,
    required: ['to', 'fn'],
    properties: {
      ...viewRefSchema,
      equals: scalar,
      atLeast: valueSchema(),
      atMost: valueSchema(),
      max: { ...valueSchema(), description: 'A ceiling: a constant or a view read at the window\'s end.' },
      equalsView: { type: 'object', additionalProperties: false, required: ['to', 'fn'], properties: viewRefSchema },
      atLeastBaselineBps: { ...bps, description: 'At least this share (bps, 10000 = equal) of the value before the baseline.' },
      band: {
        type: 'object',
        additionalProperties: false,
        required: ['minBps', 'maxBps'],
        description: 'Within [minBps, maxBps] of the value before the baseline (10000 = equal).',
        properties: { minBps: bps, maxBps: bps },
      },
    },
  },
  validate: (body: ViewParams, field) => {
    const own = callProblem(body.fn, body.args ?? [], `${field}.fn`, `${field}.args`)
    if (own) return own
    if (body.equalsView) return callProblem(body.equalsView.fn, body.equalsView.args ?? [], `${field}.equalsView.fn`, `${field}.equalsView.args`)
    for (const key of ['atLeast', 'atMost', 'max'] as const) {
      const v = body[key]
      const problem = v === undefined ? undefined : argProblem(v, { type: 'uint256' }, `${field}.${key}`)
      if (problem) return problem
    }
    if (body.band && body.band.minBps > body.band.maxBps) return { message: `\`${field}.band.minBps\` (${body.band.minBps}) must be at most \`maxBps\` (${body.band.maxBps}).`, field: `${field}.band` }
    return undefined
  },
  start: (body: ViewParams) => (body.atLeastBaselineBps !== undefined || body.band ? [read(body, 'view')] : []),
  prepare: (body: ViewParams, ctx) => {
    // Names that do not resolve are bad input, said now (the reads would say it as `view.on`).
    ctx.resolve(body.to, 'view.to')
    if (body.equalsView) ctx.resolve(body.equalsView.to, 'view.equalsView.to')
    const reads: Read[] = [read(body, 'view')]
    const at: Partial<Record<'atLeast' | 'atMost' | 'max' | 'equalsView', number>> = {}
    const constants: Partial<Record<'atLeast' | 'atMost' | 'max', unknown>> = {}
    for (const key of ['atLeast', 'atMost', 'max'] as const) {
      const v = body[key]
      if (v === undefined) continue
      if (isViewValue(v)) {
        at[key] = reads.length
        reads.push({ kind: 'value', value: v, field: `view.${key}` })
      } else constants[key] = bound(ctx, v, `view.${key}`)
    }
    if (body.equalsView) {
      at.equalsView = reads.length
      reads.push(read(body.equalsView, 'view.equalsView'))
    }
    return { params: { body, equals: boundEquals(ctx, body.equals), at, constants }, reads }
  },
  evaluate(series, _window, { body, equals, at, constants }) {
    const got = valueOf<unknown>(series.reads[0])
    const label = `${body.to}.${body.fn.split(' ')[0]}`
    if (at.equalsView !== undefined && body.equalsView) {
      const other = valueOf<unknown>(series.reads[at.equalsView])
      return { ok: norm(got) === norm(other), observed: `${label} = ${got}`, expected: `= ${body.equalsView.to}.${body.equalsView.fn.split(' ')[0]} = ${other}` }
    }
    const value = norm(got)
    const parts: string[] = []
    let ok = true
    const operand = (key: 'atLeast' | 'atMost' | 'max') => (at[key] !== undefined ? norm(valueOf<unknown>(series.reads[at[key] as number])) : constants[key])
    const shown = (key: 'atLeast' | 'atMost' | 'max') => {
      const v = body[key]
      return isViewValue(v) ? `${v.on}.${v.view.split(' ')[0]} = ${operand(key)}` : String(v)
    }
    if (body.equals !== undefined) {
      ok &&= value === equals
      parts.push(`= ${body.equals}`)
    }
    if (body.atLeast !== undefined) {
      ok &&= (value as bigint) >= (operand('atLeast') as bigint)
      parts.push(`≥ ${shown('atLeast')}`)
    }
    for (const key of ['atMost', 'max'] as const) {
      if (body[key] === undefined) continue
      ok &&= (value as bigint) <= (operand(key) as bigint)
      parts.push(`≤ ${shown(key)}`)
    }
    if (body.atLeastBaselineBps !== undefined || body.band) {
      const start = norm(valueOf<unknown>(series.startReads?.[0])) as bigint
      if (body.atLeastBaselineBps !== undefined) {
        const floor = ofBps(start, body.atLeastBaselineBps)
        ok &&= (value as bigint) >= floor
        parts.push(`≥ ${floor} (${body.atLeastBaselineBps} bps of ${start} before the baseline)`)
      }
      if (body.band) {
        const lo = ofBps(start, body.band.minBps)
        const hi = ofBps(start, body.band.maxBps)
        ok &&= (value as bigint) >= lo && (value as bigint) <= hi
        parts.push(`within [${lo}, ${hi}] (${body.band.minBps}–${body.band.maxBps} bps of ${start} before the baseline)`)
      }
    }
    return { ok, observed: `${label} = ${got}`, expected: parts.join(' and ') || 'a value' }
  },
})
