import { InputError } from '../errors.js'

const unitsMs = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const

/**
 * Parses a duration string (`"300ms"`, `"2s"`, `"1.5m"`, `"12h"`, `"1d"`) or a number of
 * milliseconds into milliseconds. `field` names the value in the error.
 */
export function parseDurationMs(value: unknown, field: string): number {
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return value
  if (typeof value === 'string') {
    const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(value.trim())
    if (match) return Number(match[1]) * unitsMs[match[2] as keyof typeof unitsMs]
  }
  throw new InputError(`\`${field}\` must be a duration like "300ms", "2s", "5m", "12h" or "1d". Got \`${JSON.stringify(value)}\`.`)
}
