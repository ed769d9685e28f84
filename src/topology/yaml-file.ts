import * as fs from 'node:fs'
import { Ajv, type ErrorObject } from 'ajv'
import { isAlias, isMap, isScalar, isSeq, LineCounter, type Node, parseDocument, visit } from 'yaml'
import { InputError } from '../errors.js'

/**
 * Limits on a topology or endpoints file: 64 KiB of UTF-8 YAML, one document, a mapping,
 * at most 1,000 aliases expanded (the yaml library's own count), and every value bounded by the
 * file's JSON Schema.
 */
export const fileLimits = { fileBytes: 64 * 1024, aliases: 1_000 } as const

const coreTags = new Set(['str', 'int', 'float', 'bool', 'null', 'map', 'seq'].map((t) => `tag:yaml.org,2002:${t}`))

// Compiled at every load of a file (every `devnet up`): without ajv's optimising pass over the
// generated code the topology schema compiles in ~70 ms of CPU instead of ~105 (the checks and
// their errors are the same; a validation is microseconds either way, once per file).
const ajv = new Ajv({ allErrors: true, strict: false, code: { optimize: false } })

/**
 * Reads `file` (what it is, `what`: "topology", "endpoints") as YAML, validates it with
 * `schema` and returns the plain value. Every problem is an `InputError` (exit 2) of the form
 * `<file>:<line>: \`<field>\` must be …. Got \`…\`.`, with `File` and `Field` context lines.
 */
export function readYamlFile(file: string, what: string, schema: Record<string, unknown>, check?: Check): unknown {
  let bytes: Buffer
  try {
    const fd = fs.openSync(file, 'r')
    try {
      // One byte past the limit is enough to refuse a large file (or /dev/zero) without reading it all.
      const buffer = Buffer.alloc(fileLimits.fileBytes + 1)
      let length = 0
      for (let n = -1; n !== 0 && length < buffer.length; length += n) n = fs.readSync(fd, buffer, length, buffer.length - length, null)
      bytes = buffer.subarray(0, length)
    } finally {
      fs.closeSync(fd)
    }
  } catch {
    throw new InputError(`Cannot read the ${what} file ${file}.`, { context: { File: file }, hint: 'Check the path.' })
  }
  return parseYamlText(bytes, file, what, schema, check)
}

/** A rule past the schema: the path of the offending value and the message, or nothing. */
export type Check = (raw: unknown) => { path: string[]; message: string } | undefined

/** `readYamlFile` on bytes already read (tests, stdin). */
export function parseYamlText(bytes: Uint8Array, file: string, what: string, schema: Record<string, unknown>, check?: Check): unknown {
  const fail = (message: string, line?: number, field?: string) => new InputError(`${file}${line ? `:${line}` : ''}: ${message}`, { context: { File: file, Field: field } })
  if (bytes.length > fileLimits.fileBytes) throw fail(`the file is larger than ${fileLimits.fileBytes} bytes (64 KiB), the limit for a ${what} file.`)
  let text: string
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes)
  } catch {
    throw fail(`the file is not UTF-8 text (a ${what} file is YAML).`)
  }
  if (text.includes('\u0000')) throw fail(`the file holds a NUL byte (is it binary?); a ${what} file is YAML text.`)
  const lineCounter = new LineCounter()
  const lineOf = (offset: number | undefined) => (offset === undefined ? undefined : lineCounter.linePos(offset).line)
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true, strict: true })
  const error = doc.errors[0]
  if (error) throw fail(`the file is not valid YAML: ${error.message.split('\n')[0]}`, lineOf(error.pos[0]))
  if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) throw fail(`the file is empty: a ${what} file is a mapping.`)
  if (!isMap(doc.contents)) throw fail(`the top level must be a mapping. Got ${isSeq(doc.contents) ? 'a list' : 'a single value'}.`, lineOf(doc.contents.range?.[0]))
  // Plain values only: keys are scalars (a mapping as a key would be stringified), tags the core ones.
  let odd: { line: number | undefined; message: string } | undefined
  visit(doc, {
    Pair(_, pair) {
      const key = pair.key as Node | null
      if (key && !isScalar(key)) {
        odd = { line: lineOf(key.range?.[0]), message: `a key must be a plain name, not ${isAlias(key) ? 'an alias' : isSeq(key) ? 'a list' : 'a mapping'}.` }
        return visit.BREAK
      }
      return undefined
    },
    Node(_, node) {
      if (node.tag !== undefined && !coreTags.has(node.tag)) {
        odd = { line: lineOf(node.range?.[0]), message: `the tag \`${node.tag.replace('tag:yaml.org,2002:', '!!')}\` is not allowed; a ${what} file uses plain YAML values.` }
        return visit.BREAK
      }
      return undefined
    },
  })
  if (odd) throw fail(odd.message, odd.line)
  let raw: unknown
  try {
    raw = doc.toJS({ maxAliasCount: fileLimits.aliases })
  } catch (e) {
    throw fail(`the aliases expand to more than ${fileLimits.aliases} values, the limit for a ${what} file: ${(e as Error).message.split('\n')[0]}`)
  }
  const validate = ajv.compile(schema)
  if (!validate(raw)) {
    const e = pickError(validate.errors ?? [])
    const segments = e.instancePath.split('/').slice(1).map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'))
    const extra = e.keyword === 'additionalProperties' ? [String((e.params as { additionalProperty: string }).additionalProperty)] : []
    const field = fieldName([...segments, ...extra]) || '(top level)'
    throw fail(describe(e, raw, segments), lineAt(doc, [...segments, ...extra], lineOf), field)
  }
  const problem = check?.(raw)
  if (problem) throw fail(problem.message, lineAt(doc, problem.path, lineOf), fieldName(problem.path))
  return raw
}

/** `validators[2].pod.labels` from path segments. */
export const fieldName = (segments: readonly string[]) => segments.reduce((acc, s) => (/^\d+$/.test(s) ? `${acc}[${s}]` : acc ? `${acc}.${s}` : s), '')

/** The line of the deepest node of `segments` that is in the document. */
export function lineAt(doc: { getIn(path: unknown[], keepScalar?: boolean): unknown }, segments: readonly string[], lineOf: (offset: number | undefined) => number | undefined): number | undefined {
  for (let n = segments.length; n >= 0; n--) {
    const node = doc.getIn(segments.slice(0, n).map((s) => (/^\d+$/.test(s) ? Number(s) : s)), true) as Node | undefined
    if (node?.range) return lineOf(node.range[0])
  }
  return undefined
}

function pickError(all: ErrorObject[]): ErrorObject {
  // Deepest first; at one depth a concrete keyword, then an unknown field (often a misspelled required one), then the rest.
  const rank = (e: ErrorObject) => (e.keyword === 'additionalProperties' ? 1 : ['oneOf', 'anyOf', 'if', 'required'].includes(e.keyword) ? 2 : 0)
  const depth = (e: ErrorObject) => e.instancePath.split('/').length
  return [...all].sort((a, b) => depth(b) - depth(a) || rank(a) - rank(b))[0] as ErrorObject
}

function describe(e: ErrorObject, raw: unknown, segments: string[]): string {
  let value: unknown = raw
  for (const s of segments) value = value && typeof value === 'object' ? (value as Record<string, unknown>)[s] : undefined
  const field = fieldName(segments)
  const shown = (() => {
    const s = JSON.stringify(value) ?? String(value)
    return s.length > 80 ? `${s.slice(0, 77)}…` : s
  })()
  const p = e.params as Record<string, unknown>
  switch (e.keyword) {
    case 'required':
      return `\`${field ? `${field}.` : ''}${String(p.missingProperty)}\` is required.`
    case 'additionalProperties':
      return `\`${field ? `${field}.` : ''}${String(p.additionalProperty)}\` is not a known field${field ? ` of ${field}` : ''}.`
    case 'maximum':
      return `\`${field}\` must be at most ${String(p.limit)}. Got \`${shown}\`.`
    case 'minimum':
      return `\`${field}\` must be at least ${String(p.limit)}. Got \`${shown}\`.`
    case 'maxLength':
      return `\`${field}\` must be at most ${String(p.limit)} characters long. Got ${typeof value === 'string' ? value.length : '?'}.`
    case 'minLength':
      return `\`${field}\` must not be empty.`
    case 'maxItems':
      return `\`${field}\` must have at most ${String(p.limit)} items. Got ${Array.isArray(value) ? value.length : '?'}.`
    case 'minItems':
      return `\`${field}\` must have at least ${String(p.limit)} item${p.limit === 1 ? '' : 's'}. Got \`${shown}\`.`
    case 'maxProperties':
      return `\`${field}\` must have at most ${String(p.limit)} entries. Got ${value && typeof value === 'object' ? Object.keys(value).length : '?'}.`
    case 'enum':
      return `\`${field}\` must be one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}. Got \`${shown}\`.`
    case 'const':
      return `\`${field}\` must be ${JSON.stringify(p.allowedValue)}. Got \`${shown}\`.`
    case 'pattern':
      return `\`${field}\` must match ${String(p.pattern)}. Got \`${shown}\`.`
    case 'type':
      return `\`${field}\` must be ${String(p.type)}. Got \`${shown}\`.`
    case 'oneOf':
      return `\`${field || '(top level)'}\` matches none of the allowed forms${(e.schema as unknown[]).length ? ` (exactly one of them)` : ''}. Got \`${shown}\`.`
    default:
      return `\`${field}\` ${e.message ?? 'is invalid'}. Got \`${shown}\`.`
  }
}
