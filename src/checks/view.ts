import { toArg } from '../scenario/context.js'
import type { Scalar, ViewRef } from '../scenario/types.js'
import type { RunContext } from '../scenario/context.js'
import { readView } from './read.js'
import type { CheckFn } from './types.js'

async function read(ctx: RunContext, ref: ViewRef, field: string) {
  const to = ctx.resolve(ref.to, `${field}.to`)
  const args = (ref.args ?? []).map((a, i) => toArg(a, ctx.resolve, `${field}.args[${i}]`))
  return readView(ctx.rpc, to, ref.fn.includes(' returns ') ? ref.fn : `${ref.fn} returns (uint256)`, args)
}

const norm = (ctx: RunContext, v: unknown, field: string) =>
  typeof v === 'bigint' || typeof v === 'boolean' ? v : typeof v === 'string' && v.startsWith('0x') ? v.toLowerCase() : toArg(v as Scalar, ctx.resolve, field)

/** Any view compared with a value, bounds, or another view (e.g. internal vs external books). */
export const view: CheckFn<'view'> = async (ctx, body) => {
  const got = await read(ctx, body, 'view')
  const label = `${body.to}.${body.fn.split(' ')[0]}`
  if (body.equalsView) {
    const other = await read(ctx, body.equalsView, 'view.equalsView')
    return { ok: norm(ctx, got, 'view') === norm(ctx, other, 'view'), observed: `${label} = ${got}`, expected: `= ${body.equalsView.to}.${body.equalsView.fn.split(' ')[0]} = ${other}` }
  }
  const value = norm(ctx, got, 'view')
  const parts: string[] = []
  let ok = true
  if (body.equals !== undefined) {
    ok &&= value === norm(ctx, body.equals, 'view.equals')
    parts.push(`= ${body.equals}`)
  }
  if (body.atLeast !== undefined) {
    ok &&= (value as bigint) >= (toArg(body.atLeast, ctx.resolve, 'view.atLeast') as bigint)
    parts.push(`≥ ${body.atLeast}`)
  }
  if (body.atMost !== undefined) {
    ok &&= (value as bigint) <= (toArg(body.atMost, ctx.resolve, 'view.atMost') as bigint)
    parts.push(`≤ ${body.atMost}`)
  }
  return { ok, observed: `${label} = ${got}`, expected: parts.join(' and ') || 'a value' }
}
