import { define, valueOf } from '../Check.js'
import { type RunContext, toArg } from '../scenario/context.js'
import { addressOrName, args, scalar, signature } from '../scenario/schema-parts.js'
import type { Scalar, ViewRef } from '../scenario/types.js'

export type ViewParams = ViewRef & { equals?: Scalar; atLeast?: Scalar; atMost?: Scalar; equalsView?: ViewRef }

const viewRefSchema = { to: addressOrName, fn: signature, args }
const fnOf = (ref: ViewRef) => (ref.fn.includes(' returns ') ? ref.fn : `${ref.fn} returns (uint256)`)

/** Names resolved, numbers parsed: the values a view's answer is compared with. */
const bound = (ctx: RunContext, v: Scalar | undefined, field: string) => (v === undefined ? undefined : toArg(v, ctx.resolve, field))
/** `equals` as compared: a 0x string case-blind, a boolean as is, anything else as an ABI value. */
const boundEquals = (ctx: RunContext, v: Scalar | undefined) => (typeof v === 'string' && v.startsWith('0x') ? v.toLowerCase() : typeof v === 'boolean' ? v : bound(ctx, v, 'view.equals'))
const read = (ctx: RunContext, ref: ViewRef, field: string) => ({
  kind: 'view' as const,
  to: ctx.resolve(ref.to, `${field}.to`),
  fn: fnOf(ref),
  args: (ref.args ?? []).map((a, i) => toArg(a, ctx.resolve, `${field}.args[${i}]`)),
})

/** A view's answer as compared: an address case-blind, a small uint (decoded as a number) as a bigint. */
const norm = (v: unknown): unknown =>
  typeof v === 'bigint' || typeof v === 'boolean' ? v : typeof v === 'string' && v.startsWith('0x') ? v.toLowerCase() : typeof v === 'number' ? BigInt(v) : typeof v === 'string' ? toArg(v, (n) => n as `0x${string}`, 'view') : v

/** Any view at the window's end, compared with a value, bounds, or another view (e.g. internal vs external books). */
export const view = define({
  name: 'view',
  target: 'fork',
  summary: 'any view equals / is at least / at most a value, or equals another view',
  params: {
    type: 'object',
    additionalProperties: false,
    required: ['to', 'fn'],
    properties: {
      ...viewRefSchema,
      equals: scalar,
      atLeast: scalar,
      atMost: scalar,
      equalsView: { type: 'object', additionalProperties: false, required: ['to', 'fn'], properties: viewRefSchema },
    },
  },
  prepare: (body: ViewParams, ctx) => ({
    params: { body, equals: boundEquals(ctx, body.equals), atLeast: bound(ctx, body.atLeast, 'view.atLeast'), atMost: bound(ctx, body.atMost, 'view.atMost') },
    reads: [read(ctx, body, 'view'), ...(body.equalsView ? [read(ctx, body.equalsView, 'view.equalsView')] : [])],
  }),
  evaluate(series, _window, { body, equals, atLeast, atMost }) {
    const got = valueOf<unknown>(series.reads[0])
    const label = `${body.to}.${body.fn.split(' ')[0]}`
    if (body.equalsView) {
      const other = valueOf<unknown>(series.reads[1])
      return { ok: norm(got) === norm(other), observed: `${label} = ${got}`, expected: `= ${body.equalsView.to}.${body.equalsView.fn.split(' ')[0]} = ${other}` }
    }
    const value = norm(got)
    const parts: string[] = []
    let ok = true
    if (body.equals !== undefined) {
      ok &&= value === equals
      parts.push(`= ${body.equals}`)
    }
    if (body.atLeast !== undefined) {
      ok &&= (value as bigint) >= (atLeast as bigint)
      parts.push(`≥ ${body.atLeast}`)
    }
    if (body.atMost !== undefined) {
      ok &&= (value as bigint) <= (atMost as bigint)
      parts.push(`≤ ${body.atMost}`)
    }
    return { ok, observed: `${label} = ${got}`, expected: parts.join(' and ') || 'a value' }
  },
})

