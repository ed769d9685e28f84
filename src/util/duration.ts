import { InputError } from '../errors.js'

const unitsMs = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const

/**
 * Reads a duration string (`"300ms"`, `"2s"`, `"1.5m"`, `"12h"`, `"1d"`) or a number of
 * milliseconds as milliseconds; `undefined` when it is neither (or not finite). Never throws:
 * the loader's schema keyword uses it to bound the string form.
 */
export function durationMsOf(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : undefined
  if (typeof value !== 'string' || value.length > 64) return undefined
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(value.trim())
  if (!match) return undefined
  const ms = Number(match[1]) * unitsMs[match[2] as keyof typeof unitsMs]
  return Number.isFinite(ms) ? ms : undefined
}

/**
 * Parses a duration string (`"300ms"`, `"2s"`, `"1.5m"`, `"12h"`, `"1d"`) or a number of
 * milliseconds into milliseconds. `field` names the value in the error; `maxMs` (default one
 * day) and `minMs` (default 0) bound it, and the error states the bound.
 */
export function parseDurationMs(value: unknown, field: string, bounds: { minMs?: number; maxMs?: number } = {}): number {
  const ms = durationMsOf(value)
  if (ms === undefined)
    throw new InputError(`\`${field}\` must be a duration like "300ms", "2s", "5m", "12h" or "1d". Got \`${shown(value)}\`.`)
  const maxMs = bounds.maxMs ?? unitsMs.d
  if (ms > maxMs) throw new InputError(`\`${field}\` must be at most ${formatDurationMs(maxMs)}. Got \`${shown(value)}\`.`)
  if (bounds.minMs !== undefined && ms < bounds.minMs) throw new InputError(`\`${field}\` must be at least ${formatDurationMs(bounds.minMs)}. Got \`${shown(value)}\`.`)
  return ms
}

/** `3_600_000` → `"1h"`, `86_400_000` → `"24h"`, `1_500` → `"1500ms"`: the largest unit that divides it. */
export function formatDurationMs(ms: number): string {
  for (const [unit, size] of [['h', unitsMs.h], ['m', unitsMs.m], ['s', unitsMs.s]] as const)
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`
  return `${ms}ms`
}

const shown = (value: unknown) => {
  const s = typeof value === 'number' && !Number.isFinite(value) ? String(value) : (JSON.stringify(value) ?? String(value))
  return s.length > 80 ? `${s.slice(0, 77)}…` : s
}
