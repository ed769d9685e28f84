import { InputError } from '../errors.js'
import type { FaultContext } from '../Fault.js'
import type { Devnet } from '../targets/devnet.js'

/** The devnet of the context, or a clear error when a devnet fault is used on a fork. */
export function devnetOf(ctx: FaultContext, type: string): Devnet {
  if (!ctx.devnet) throw new InputError(`The fault \`${type}\` needs a devnet target (\`target: { kind: devnet }\`).`)
  return ctx.devnet
}

/** A validator named by id (`2`, `"2"`, `"validator-2"`). */
export function validatorId(target: string | undefined, type: string, count = 4): number {
  const m = /^(?:validator-)?(\d+)$/.exec(String(target ?? ''))
  const id = m ? Number(m[1]) : Number.NaN
  if (!(id >= 0 && id < count)) throw new InputError(`The fault \`${type}\` needs \`target\`: a validator id from 0 to ${count - 1}. Got \`${JSON.stringify(target)}\`.`)
  return id
}

export function validatorList(raw: unknown, field: string, count = 4): number[] {
  if (!Array.isArray(raw) || raw.length === 0) throw new InputError(`\`${field}\` must be a non-empty list of validator ids. Got \`${JSON.stringify(raw)}\`.`)
  return raw.map((v, i) => validatorId(String(v), `${field}[${i}]`, count))
}
