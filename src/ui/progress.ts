import type { RunEvent } from '../experiment/events.js'
import type { Phase } from '../scenario/types.js'

/**
 * Progress of a run, from its events: the running scenario's phase, its elapsed of planned time
 * (devnet; for a soak, its inject phase is the soak: elapsed of the soak's total) or cycles done
 * of total (a fork's long steps), faults fired, commits so far and the validators down now. On a
 * TTY the line is redrawn in place every `everyMs` (default 500 ms); elsewhere a plain line is
 * written every `everyMs` (default 5 s) while a scenario runs, never more often.
 */
export type ProgressOptions = {
  tty: boolean
  write: (text: string) => void
  /** How often a line is written: default 500 ms on a TTY, 5,000 ms elsewhere; at least 100 ms. */
  everyMs?: number
}

export type Progress = {
  event(event: RunEvent | { type: 'scenario-done' }): void
  /** The current line, or undefined when no scenario runs. */
  line(): string | undefined
  /** On a TTY, erases the drawn line (call before printing anything else). */
  clear(): void
  stop(): void
}

export function createProgress(options: ProgressOptions): Progress {
  const everyMs = Math.max(100, options.everyMs ?? (options.tty ? 500 : 5_000))
  let current: { scenario: string; target: string; plannedMs: Record<Phase, number>; phase: string; phaseAt: number; faults: number; height: number; phaseHeight: number; down: Set<number>; cycles?: { done: number; total: number } } | undefined
  let drawn = false
  const line = () => {
    if (!current) return undefined
    const c = current
    const elapsed = (performance.now() - c.phaseAt) / 1000
    const planned = c.phase in c.plannedMs ? c.plannedMs[c.phase as Phase] : 0
    const time = planned > 0 ? `${elapsed.toFixed(1)} s of ${(planned / 1000).toFixed(1)} s` : `${elapsed.toFixed(1)} s`
    const parts = [`${c.scenario} · ${c.phase} ${time}`]
    if (c.cycles) parts.push(`${c.cycles.done}/${c.cycles.total} cycles`)
    parts.push(`faults fired ${c.faults}`)
    if (c.target === 'devnet') parts.push(`commits ${c.height - c.phaseHeight} (height ${c.height})`)
    if (c.down.size) parts.push(`down ${[...c.down].sort((a, b) => a - b).map((v) => `validator-${v}`).join(', ')}`)
    return `  … ${parts.join(' · ')}`
  }
  const clear = () => {
    if (options.tty && drawn) options.write('\r\x1b[K')
    drawn = false
  }
  const timer = setInterval(() => {
    const text = line()
    if (!text) return
    if (options.tty) {
      options.write(`\r\x1b[K${text}`)
      drawn = true
    } else options.write(`${text}\n`)
  }, everyMs)
  timer.unref()
  return {
    event(e) {
      if (e.type === 'scenario-start') current = { scenario: e.scenario, target: e.target, plannedMs: e.plannedMs, phase: 'starting', phaseAt: performance.now(), faults: 0, height: 0, phaseHeight: 0, down: new Set() }
      if (!current) return
      if (e.type === 'phase') Object.assign(current, { phase: e.phase, phaseAt: performance.now(), phaseHeight: current.height, cycles: undefined })
      if (e.type === 'fault' && e.action === 'apply') current.faults++
      if (e.type === 'commit') current.height = e.height
      if (e.type === 'node') {
        if (e.state === 'down') current.down.add(e.node)
        else current.down.delete(e.node)
      }
      if (e.type === 'progress') current.cycles = { done: e.done, total: e.total }
      if (e.type === 'scenario-done') {
        clear()
        current = undefined
      }
    },
    line,
    clear,
    stop() {
      clearInterval(timer)
      clear()
    },
  }
}
