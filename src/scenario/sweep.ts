/**
 * Sweeps: one scenario file run over a grid of values. `sweep: { bps: [300, 2000], direction:
 * [down, up] }` makes one experiment per cell of the cartesian product (here 4), each with its
 * own verdict, named `<name>[bps=300,direction=down]`.
 *
 * A value is used as `${key}`: a string that is exactly `"${bps}"` becomes the cell's value with
 * its type (the number 300, so the schema checks it as a number); inside a longer string it is
 * written as text (`"moves ${bps} bps"`). The substitution happens before the schema sees the
 * file, so every cell is validated as if it had been written out by hand, and an error names
 * the cell. A sweep key used nowhere, or a placeholder with no sweep key, is bad input.
 */

/** Limits of a sweep, stated in the schema and in every error. */
export const sweepLimits = {
  /** Keys of one sweep. */
  keys: 4,
  /** Values of one key. */
  values: 16,
  /** Cells of the whole grid (the product of the value counts). */
  cells: 64,
  /** Characters of a string value. */
  valueChars: 64,
  /** Largest magnitude of a number value: 2^53 − 1, the largest integer a JSON number holds exactly. */
  valueMagnitude: Number.MAX_SAFE_INTEGER,
} as const

export type SweepValue = string | number | boolean
export type SweepCell = { label: string; values: Record<string, SweepValue> }

const keyPattern = /^[A-Za-z][A-Za-z0-9_]{0,31}$/
// Values land in the cell's name and on the `--cell` command line: no `,` `=` `[` `]` or spaces.
const valuePattern = /^[A-Za-z0-9_.:+-]{1,64}$/
const placeholder = /\$\{([^}]*)\}/g

/** The sweep's schema (for editors; the loader checks a sweep with `sweepProblem`, which says more). */
export const sweepSchema = {
  type: 'object',
  minProperties: 1,
  maxProperties: sweepLimits.keys,
  propertyNames: { pattern: keyPattern.source },
  additionalProperties: {
    type: 'array',
    minItems: 1,
    maxItems: sweepLimits.values,
    uniqueItems: true,
    items: { type: ['string', 'number', 'boolean'], pattern: valuePattern.source, maxLength: sweepLimits.valueChars, minimum: -sweepLimits.valueMagnitude, maximum: sweepLimits.valueMagnitude },
  },
  description: `A grid: each key's values, one experiment per cell of the product (at most ${sweepLimits.keys} keys, ${sweepLimits.values} values each, ${sweepLimits.cells} cells). A string value "\${key}" anywhere else in the file becomes the cell's value; inside a longer string it is written as text.`,
} as const

export type SweepProblem = { message: string; field: string; segments: string[] }

/**
 * The cells of a raw scenario (as parsed from YAML, before the schema): one cell with an empty
 * label when the file has no sweep. Throws nothing: a problem is returned with the field and
 * the path of the node it is about, for the loader's message and line.
 */
export function sweepCells(raw: unknown): { cells: SweepCell[] } | { problem: SweepProblem } {
  const doc = (raw ?? {}) as Record<string, unknown>
  const sweep = doc.sweep
  const used = new Map<string, string[]>()
  let bad: SweepProblem | undefined
  walk(doc, [], (text, path) => {
    for (const m of text.matchAll(placeholder)) {
      const key = m[1] ?? ''
      if (!keyPattern.test(key)) bad ??= { message: `\`${fieldOf(path)}\` holds \`\${${key}}\`, which is not a sweep placeholder: write \`\${key}\` with a key of letters, digits and \`_\` named in \`sweep\`.`, field: fieldOf(path), segments: path }
      else if (!used.has(key)) used.set(key, path)
    }
  })
  if (bad) return { problem: bad }
  if (sweep === undefined) {
    const [key, path] = [...used.entries()][0] ?? []
    if (key !== undefined && path)
      return { problem: { message: `\`${fieldOf(path)}\` uses the placeholder \`\${${key}}\`, but the file has no \`sweep\`: add \`sweep: { ${key}: [ … ] }\`.`, field: fieldOf(path), segments: path } }
    return { cells: [{ label: '', values: {} }] }
  }
  const shape = shapeProblem(sweep)
  if (shape) return { problem: shape }
  const grid = sweep as Record<string, SweepValue[]>
  for (const key of Object.keys(grid))
    if (!used.has(key)) return { problem: { message: `\`sweep.${key}\` is used nowhere: no value in the file is \`"\${${key}}"\` or holds it.`, field: `sweep.${key}`, segments: ['sweep', key] } }
  for (const [key, path] of used)
    if (!(key in grid))
      return { problem: { message: `\`${fieldOf(path)}\` uses the placeholder \`\${${key}}\`, which \`sweep\` does not name (it has ${Object.keys(grid).map((k) => `\`${k}\``).join(', ')}).`, field: fieldOf(path), segments: path } }
  let cells: Record<string, SweepValue>[] = [{}]
  for (const [key, values] of Object.entries(grid)) cells = cells.flatMap((cell) => values.map((v) => ({ ...cell, [key]: v })))
  return { cells: cells.map((values) => ({ label: labelOf(values), values })) }
}

/** The raw scenario of one cell: every placeholder replaced, `sweep` left for the schema. */
export function substitute(raw: unknown, cell: SweepCell): unknown {
  if (cell.label === '') return raw
  const doc = raw as Record<string, unknown>
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(doc)) out[key] = key === 'sweep' ? value : replaceIn(value, cell.values)
  return out
}

/** `bps=300,direction=down`: the cell's name suffix (in brackets) and its `--cell` value. */
export function labelOf(values: Record<string, SweepValue>): string {
  return Object.entries(values)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(',')
}

/**
 * Parses a `--cell` selection (`bps=300,direction=down`) into pairs; undefined if it is not of
 * that form. A cell matches when it has every key with that value (written as in its name).
 */
export function parseCellSelection(text: string): [string, string][] | undefined {
  const pairs = text.split(',').map((p) => p.split('='))
  if (pairs.length > sweepLimits.keys || pairs.some((p) => p.length !== 2 || !keyPattern.test(p[0] ?? '') || !valuePattern.test(p[1] ?? ''))) return undefined
  return pairs as [string, string][]
}

export function cellMatches(values: Record<string, SweepValue>, selection: [string, string][]): boolean {
  return selection.every(([k, v]) => k in values && String(values[k]) === v)
}

function shapeProblem(sweep: unknown): SweepProblem | undefined {
  const at = (field: string, segments: string[], message: string) => ({ message, field, segments })
  if (sweep === null || typeof sweep !== 'object' || Array.isArray(sweep))
    return at('sweep', ['sweep'], `\`sweep\` must be a mapping of keys to lists of values, e.g. \`{ bps: [300, 2000], direction: [down, up] }\`. Got \`${JSON.stringify(sweep)}\`.`)
  const entries = Object.entries(sweep as Record<string, unknown>)
  if (entries.length === 0) return at('sweep', ['sweep'], '`sweep` must have at least one key.')
  if (entries.length > sweepLimits.keys) return at('sweep', ['sweep'], `\`sweep\` must have at most ${sweepLimits.keys} keys. Got ${entries.length}.`)
  let cells = 1
  for (const [key, values] of entries) {
    const field = `sweep.${key}`
    if (!keyPattern.test(key)) return at(field, ['sweep', key], `\`${field}\`: a sweep key must be letters, digits and \`_\` (at most 32, a letter first).`)
    if (!Array.isArray(values) || values.length === 0) return at(field, ['sweep', key], `\`${field}\` must be a list of at least one value. Got \`${JSON.stringify(values)}\`.`)
    if (values.length > sweepLimits.values) return at(field, ['sweep', key], `\`${field}\` must have at most ${sweepLimits.values} values. Got ${values.length}.`)
    for (const [i, v] of values.entries()) {
      const ok = (typeof v === 'number' && Math.abs(v) <= sweepLimits.valueMagnitude) || typeof v === 'boolean' || (typeof v === 'string' && valuePattern.test(v))
      if (!ok || !valuePattern.test(String(v)))
        return at(`${field}[${i}]`, ['sweep', key, String(i)], `\`${field}[${i}]\` must be a number of magnitude at most 2^53 − 1, a boolean or a string of at most ${sweepLimits.valueChars} letters, digits, \`_\`, \`.\`, \`:\`, \`+\` or \`-\`. Got \`${JSON.stringify(v)}\`.`)
    }
    const dup = values.findIndex((v, i) => values.findIndex((w) => String(w) === String(v)) !== i)
    if (dup >= 0) return at(`${field}[${dup}]`, ['sweep', key, String(dup)], `\`${field}\` repeats the value \`${String(values[dup])}\`.`)
    cells *= values.length
  }
  if (cells > sweepLimits.cells) return at('sweep', ['sweep'], `\`sweep\` makes ${cells} cells (${entries.map(([, v]) => (v as unknown[]).length).join(' × ')}), more than ${sweepLimits.cells}, the limit of a sweep.`)
  return undefined
}

function replaceIn(value: unknown, values: Record<string, SweepValue>): unknown {
  if (typeof value === 'string') {
    const whole = /^\$\{([A-Za-z][A-Za-z0-9_]*)\}$/.exec(value)
    if (whole?.[1] !== undefined && whole[1] in values) return values[whole[1]]
    return value.replace(placeholder, (m, key: string) => (key in values ? String(values[key]) : m))
  }
  if (Array.isArray(value)) return value.map((v) => replaceIn(v, values))
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, replaceIn(v, values)]))
  return value
}

/** Every string value outside `sweep`, with its path. */
function walk(value: unknown, path: string[], visit: (text: string, path: string[]) => void) {
  if (path.length === 1 && path[0] === 'sweep') return
  if (typeof value === 'string') visit(value, path)
  else if (Array.isArray(value)) value.forEach((v, i) => walk(v, [...path, String(i)], visit))
  else if (value !== null && typeof value === 'object') for (const [k, v] of Object.entries(value)) walk(v, [...path, k], visit)
}

const fieldOf = (segments: string[]) => segments.reduce((acc, s) => (/^\d+$/.test(s) ? `${acc}[${s}]` : acc ? `${acc}.${s}` : s), '')
