import { withReturns } from '../scenario/protocol.js'
import { fmt, readUint } from './read.js'
import type { CheckFn } from './types.js'

/** No funds lost: the share price stays at or above `minBps` of its value before the baseline. */
export const sharePriceFloor: CheckFn<'sharePriceFloor'> = async (ctx, body) => {
  const fn = withReturns(need(ctx.protocol.sharePrice, 'sharePrice'))
  const vault = ctx.resolve(ctx.protocol.vault, 'protocol.vault')
  const now = await readUint(ctx.rpc, vault, fn)
  const start = ctx.baseline[fn] as bigint
  const floor = (start * BigInt(Math.round(body.minBps * 100))) / 1_000_000n
  return { ok: now >= floor, observed: `sharePrice ${fmt(now)}`, expected: `≥ ${fmt(floor)} (${body.minBps} bps of ${fmt(start)} at baseline)` }
}

export function need(value: string | undefined, field: string): string {
  if (!value) throw new Error(`this check needs \`protocol.${field}\``)
  return value
}
