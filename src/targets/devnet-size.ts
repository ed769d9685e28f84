import { InputError } from '../errors.js'

/**
 * Validator counts the embedded devnet runs: n = 3f + 1 for f = 1 … 3 (4, 7 or 10). Each
 * validator is a node process and an Anvil on this machine, and there are n·(n − 1) link
 * proxies: past 10 one machine does not keep slots.
 */
export const devnetSizes = [4, 7, 10] as const

/** The size a devnet scenario or `devnet up` gets without `validators`: 4 (f = 1). */
export const defaultDevnetSize = 4

/** The most validators a devnet has; validator ids are 0 … maxValidators − 1 at most. */
export const maxValidators = Math.max(...devnetSizes)

/** Faults the devnet tolerates: f = ⌊(n − 1) / 3⌋ (n = 3f + 1). */
export const faultToleranceOf = (n: number): number => Math.floor((n - 1) / 3)

/**
 * Checks a validator count (`field` names where it came from: `--validators`,
 * `target.validators`): one of `devnetSizes`, else an `InputError` (exit 2) that says so.
 */
export function checkDevnetSize(n: unknown, field: string): number {
  if (typeof n === 'number' && (devnetSizes as readonly number[]).includes(n)) return n
  throw new InputError(`\`${field}\` must be 3f+1 validators for f = 1–3: ${devnetSizes.join(', ')}. Got \`${typeof n === 'number' ? n : typeof n === 'string' ? n : JSON.stringify(n)}\`.`, {
    hint: '4 tolerates f = 1 faulty validator, 7 tolerates 2, 10 tolerates 3.',
  })
}

/**
 * A number of validators written in terms of f, so that one drill means the same on every size
 * (n = 3f + 1): an integer 0 … `maxValidators`, or `f`, `f+1`, `2f`, `2f+1`, `3f+1` — the form
 * `[k]f[±c]` with k = 1–3 and c ≤ 99. On 4 validators `f+1` is 2, on 7 it is 3.
 */
export type SizeExpr = { k: number; c: number; text: string }

const exprRe = /^([123]?)f(?:([+-])(\d{1,2}))?$/

/** The JSON Schema of a `SizeExpr` as written in a scenario file. */
export const sizeExprSchema = {
  oneOf: [
    { type: 'integer', minimum: 0, maximum: maxValidators },
    { type: 'string', maxLength: 8, pattern: exprRe.source },
  ],
}

/** Parses a written size; `field` names it in the error. */
export function parseSizeExpr(raw: unknown, field: string): SizeExpr {
  if (typeof raw === 'number' && Number.isInteger(raw) && raw >= 0 && raw <= maxValidators) return { k: 0, c: raw, text: String(raw) }
  const m = typeof raw === 'string' && raw.length <= 8 ? exprRe.exec(raw) : null
  if (!m)
    throw new InputError(`\`${field}\` must be a number of validators: an integer from 0 to ${maxValidators}, or one written with f: "f", "f+1", "2f", "2f+1" (k·f ± c, k 1–3). Got \`${JSON.stringify(raw)?.slice(0, 40)}\`.`)
  const c = m[3] ? (m[2] === '-' ? -1 : 1) * Number(m[3]) : 0
  return { k: m[1] ? Number(m[1]) : 1, c, text: raw as string }
}

/** The number an expression stands for on n validators (f = ⌊(n − 1) / 3⌋). */
export const sizeOf = (e: SizeExpr, n: number): number => e.k * faultToleranceOf(n) + e.c

/** `f+1 (= 3 of 7)`, for messages and evidence. */
export const describeSize = (e: SizeExpr, n: number): string => (e.k === 0 ? e.text : `${e.text} (= ${sizeOf(e, n)} of ${n})`)

/** The number `e` comes to on n validators, or `fail`'s error when it is not between `min` and n. */
export function checkSize(e: SizeExpr, n: number, min: number, fail: (message: string) => Error): number {
  const v = sizeOf(e, n)
  if (v < min || v > n) throw fail(`must come to between ${min} and ${n} validators on this devnet (n = ${n}, f = ${faultToleranceOf(n)}); it comes to ${v}`)
  return v
}
