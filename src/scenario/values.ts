import type { AbiFunction, AbiParameter, Address } from 'viem'
import { parseAbiItem } from '../util/evm.js'
import { readView } from '../checks/read.js'
import { InputError } from '../errors.js'
import type { Rpc } from '../targets/rpc.js'
import { toArg } from './context.js'
import type { Scalar } from './types.js'

/**
 * A value in a scenario file: a constant (`"1e18"`, `42`, a name, `true`) or a view read from the
 * chain when the step or check that holds it runs, whose own arguments may be values too:
 * `{ view: "tradeCollateral(uint256)", on: perp, args: [{ view: "tradeId()", on: vault }] }`.
 */
export type Value = Scalar | ViewValue
export type ViewValue = { view: string; on: string; args?: Value[] }

/** Limits of a value: views nested inside one another, arguments of one view, characters of a constant argument. */
export const valueLimits = { depth: 3, args: 8, argChars: 200 } as const

const constant = { type: ['string', 'number', 'boolean'], maxLength: valueLimits.argChars }
const viewSignature = { type: 'string', pattern: '^[A-Za-z_$][\\w$]*\\(.*\\)', maxLength: 1_000 }

/**
 * The JSON Schema of a value, defined once under the scenario schema's `definitions` (a `$ref`
 * everywhere a value goes: inlined, each place would cost the schema compile its own copy). The
 * nesting limit (`valueLimits.depth`) is the loader's (`argProblem`), stated in its error.
 */
export const valueDefinition = {
  oneOf: [
    constant,
    {
      type: 'object',
      additionalProperties: false,
      required: ['view', 'on'],
      description: `A view read when the step or check runs (views nest at most ${valueLimits.depth} deep).`,
      properties: {
        view: viewSignature,
        on: { type: 'string', minLength: 1, maxLength: 256, description: 'The contract, by name or address.' },
        args: { type: 'array', items: { $ref: '#/definitions/value' }, maxItems: valueLimits.args },
      },
    },
  ],
}

/** A value's schema where one goes (see `valueDefinition`). */
export const valueSchema = (): Record<string, unknown> => ({ $ref: '#/definitions/value' })

export const isViewValue = (v: unknown): v is ViewValue => typeof v === 'object' && v !== null && 'view' in v && 'on' in v

/** `f(uint256)` → `f(uint256) returns (uint256)`: a view without `returns` reads one uint256. */
const withReturns = (signature: string) => (signature.includes(' returns ') ? signature : `${signature} returns (uint256)`)

/** Evaluates a value now: constants as ABI values (names → addresses), views read at the latest block. */
export async function evaluateValue(ctx: { rpc: Rpc; resolve(name: string, field: string): Address }, value: Value, field: string): Promise<unknown> {
  if (!isViewValue(value)) return toArg(value, ctx.resolve, field)
  const args: unknown[] = []
  for (const [i, a] of (value.args ?? []).entries()) args.push(await evaluateValue(ctx, a, `${field}.args[${i}]`))
  const out = await readView(ctx.rpc, ctx.resolve(value.on, `${field}.on`), withReturns(value.view), args)
  return typeof out === 'number' ? BigInt(out) : out
}

/** The names a value uses (`on`, and constant arguments that are names), with their fields, for resolving before anything applies. */
export function valueNames(value: Value, field: string): [name: string, field: string][] {
  if (!isViewValue(value)) return []
  return [[value.on, `${field}.on`], ...(value.args ?? []).flatMap((a, i) => valueNames(a, `${field}.args[${i}]`))]
}

/** A problem of a call's arguments against its signature, named by field; undefined when they fit. */
export type Problem = { message: string; field: string }

/**
 * Checks a function signature and its arguments at load: the signature parses, the number of
 * arguments is its arity, and each argument fits its ABI type (a number for uint/int, an address
 * or a name for address, a boolean for bool, hex for bytes); a view value's own signature and
 * arguments are checked the same way, and what it returns must fit where it goes.
 */
export function callProblem(signature: string, args: readonly Value[] | undefined, field: string, argsField = `${field}.args`, depth = 0): Problem | undefined {
  let item: AbiFunction
  try {
    item = parseAbiItem(`function ${withReturns(signature)}`) as AbiFunction
  } catch (error) {
    return { message: `\`${field}\` must be a function signature like \`previewRedeem(uint256) returns (uint256)\`. Got \`${signature}\` (${String((error as Error).message).split('\n')[0]}).`, field }
  }
  const given = args ?? []
  const inputs = item.inputs
  if (given.length !== inputs.length) {
    const want = inputs.length === 0 ? 'no arguments' : `${inputs.length} argument${inputs.length === 1 ? '' : 's'} (${inputs.map((p) => p.type).join(', ')})`
    const example = inputs.length > 0 && args === undefined ? ` Give them as \`{ fn: "${signature}", args: [${inputs.map(exampleOf).join(', ')}] }\`.` : ''
    return { message: `\`${field}\` calls \`${item.name}(${inputs.map((p) => p.type).join(',')})\`, which takes ${want}; got ${given.length}.${example}`, field: args === undefined ? field : argsField }
  }
  for (const [i, input] of inputs.entries()) {
    const problem = argProblem(given[i] as Value, input, `${argsField}[${i}]`, depth)
    if (problem) return problem
  }
  return undefined
}

/** Checks a value against the ABI type it is given as (`uint256`, `address`, …). */
export function argProblem(value: Value, input: AbiParameter | { type: string }, field: string, depth = 0): Problem | undefined {
  const type = input.type
  if (isViewValue(value)) {
    if (depth >= valueLimits.depth) return { message: `\`${field}\` nests views more than ${valueLimits.depth} deep, the limit for a value.`, field }
    const inner = callProblem(value.view, value.args ?? [], `${field}.view`, `${field}.args`, depth + 1)
    if (inner) return inner
    const out = returnType(value.view)
    if (out && classOf(out) !== classOf(type)) return { message: `\`${field}\` reads \`${value.view}\`, which returns ${out}; an argument of type ${type} is expected here.`, field }
    return undefined
  }
  const expected = (what: string) => ({ message: `\`${field}\` must be ${what} (the argument's type is ${type}). Got \`${JSON.stringify(value)}\`.`, field })
  switch (classOf(type)) {
    case 'number':
      if (typeof value === 'number' ? Number.isInteger(value) : typeof value === 'string' && /^(-?\d+|0x[0-9a-fA-F]+|\d+(\.\d+)?e\d+)$/.test(value)) return undefined
      return expected('a whole number (decimal, hex, or like "1e18")')
    case 'address':
      if (typeof value === 'string' && (/^0x[0-9a-fA-F]{40}$/.test(value) || /^[A-Za-z_][\w-]*$/.test(value))) return undefined
      return expected('an address or a contract/account name')
    case 'bool':
      return typeof value === 'boolean' ? undefined : expected('true or false')
    case 'bytes':
      return typeof value === 'string' && /^0x([0-9a-fA-F]{2})*$/.test(value) ? undefined : expected('hex bytes like "0x1234"')
    default:
      return { message: `\`${field}\` is an argument of type ${type}, which a scenario cannot give (it takes uint/int, address, bool and bytes arguments).`, field }
  }
}

/** The first output type of a view signature (`uint256` without `returns`). */
export function returnType(signature: string): string | undefined {
  try {
    return (parseAbiItem(`function ${withReturns(signature)}`) as AbiFunction).outputs[0]?.type
  } catch {
    return undefined
  }
}

const classOf = (type: string) =>
  /^u?int\d*$/.test(type) ? 'number' : type === 'address' ? 'address' : type === 'bool' ? 'bool' : /^bytes\d*$/.test(type) ? 'bytes' : type

const exampleOf = (p: AbiParameter) => {
  const c = classOf(p.type)
  return c === 'number' ? '"1e18"' : c === 'address' ? 'vault' : c === 'bool' ? 'true' : '"0x"'
}

/** Turns a field path (`checks[2].view.args[0]`) into the loader's segments (`checks`, `2`, `view`, `args`, `0`). */
export const segmentsOf = (field: string): string[] => field.split(/\.|\[(\d+)\]/).filter((s): s is string => s !== undefined && s !== '')

export function inputError(file: string, problem: Problem): InputError {
  return new InputError(`${file}: ${problem.message}`, { context: { File: file, Field: problem.field } })
}
