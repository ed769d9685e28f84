/** Re-runs one shrink may spend, at most. */
export const shrinkLimits = { runs: 200 } as const

/**
 * What a shrink needs to know of a schedule's items, whatever they are (a fork schedule's steps
 * and faults, a devnet's timed faults and waits).
 */
export type ShrinkOps<I> = {
  /** The id of the fault an item applies or reverts (its apply and revert are dropped together), else undefined. */
  fault(item: I): string | undefined
  /** Whether the item may be dropped alone: a step, a wait, a revert (its fault then stays to the phase end); not an apply. */
  alone(item: I): boolean
  /** The item's place on its ladder of parameters (0 smallest), undefined when it has none. */
  level(item: I): number | undefined
  /** The item at another level. */
  withLevel(item: I, level: number): I
  /** Whether a candidate is a schedule at all (a devnet's fault budget); a candidate that is not is never run. Default: every one is. */
  valid?(items: readonly I[]): boolean
}

/**
 * Shrinks a failing schedule: drops each fault (its apply with its revert), then each item that
 * may go alone, until no single drop keeps the failure; then lowers each item's level to the
 * smallest that still fails. Every candidate is re-run (`fails`); at most `runs` of them, so a
 * shrink ends with the smallest failing schedule it found within its budget.
 */
export async function shrinkSchedule<I>(items: readonly I[], fails: (candidate: I[]) => Promise<boolean>, ops: ShrinkOps<I>, runs: number = shrinkLimits.runs): Promise<I[]> {
  let best = [...items]
  let budget = runs
  const tryIt = async (c: I[]) => (ops.valid ? ops.valid(c) : true) && budget-- > 0 && (await fails(c))
  for (let changed = true; changed && budget > 0; ) {
    changed = false
    const ids = [...new Set(best.map((i) => ops.fault(i)).filter((id): id is string => id !== undefined))]
    for (const id of ids) {
      const c = best.filter((i) => ops.fault(i) !== id)
      if (await tryIt(c)) {
        best = c
        changed = true
      }
    }
    for (let k = best.length - 1; k >= 0; k--) {
      if (!ops.alone(best[k] as I)) continue
      const c = best.filter((_, j) => j !== k)
      if (await tryIt(c)) {
        best = c
        changed = true
      }
    }
  }
  for (let k = 0; k < best.length; k++) {
    const it = best[k] as I
    const top = ops.level(it)
    if (top === undefined) continue
    for (let level = 0; level < top; level++) {
      const c = best.map((x, j) => (j === k ? ops.withLevel(it, level) : x))
      if (await tryIt(c)) {
        best = c
        break
      }
    }
  }
  return best
}
