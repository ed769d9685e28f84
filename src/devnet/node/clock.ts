/**
 * The validator's one clock. Every time the node reads goes through it, so a clock fault
 * (`node.clock-skew`) needs nothing from the machine: no libfaketime, no restart.
 *
 * Two readings, as on a real machine whose wall clock is stepped (NTP, a VM resume, an
 * operator) while the process runs:
 * - `nowMs()`, the **wall clock** (ms since the epoch) plus the offset. What the node compares
 *   with other machines or writes down: the timestamps of the blocks it proposes, the drift
 *   bound it holds others' proposals to, slot boundaries (anchored at the genesis time), the
 *   times of commits and rejections in `fc_status` / `fc_rejections`, log lines, file names.
 * - `monotonicMs()`, the **monotonic** clock (`performance.now()`), never offset. What the node
 *   measures durations with: deadlines, backoffs, latencies, rate buckets. Node's timers
 *   (`setTimeout`, `setInterval`) run on libuv's monotonic clock too, so a wall-clock jump does
 *   not fire or delay them — as on Linux, where `CLOCK_MONOTONIC` ignores `settimeofday`.
 *
 * The offset is set at runtime (`fc_setClockOffset`), because a real clock jump happens to a
 * running process: a restart would also rebuild consensus state, reconnect every peer and
 * replay the store, and so hide what a running validator does when its clock moves under it.
 */
export type Clock = {
  /** Wall clock with the offset, ms since the epoch. */
  nowMs(): number
  /** Monotonic ms (arbitrary origin), never offset. */
  monotonicMs(): number
  /** The offset the node was told to run with, ms (positive: ahead of the true time). */
  offsetMs(): number
  /** Sets the offset (integer ms, at most `maxClockOffsetMs` either way). */
  setOffsetMs(offsetMs: number): void
}

/** The largest offset a node accepts either way: one day. */
export const maxClockOffsetMs = 86_400_000

export type ClockOptions = {
  /**
   * Test builds only: the clock accepts and reports an offset but never applies it (a node
   * that reads the system time directly somewhere), so the clock-skew drill can be shown to
   * fail.
   */
  ignoreOffset?: boolean
}

export function createClock(options: ClockOptions = {}): Clock {
  let offset = 0
  return {
    nowMs: options.ignoreOffset ? () => Date.now() : () => Date.now() + offset,
    monotonicMs: () => performance.now(),
    offsetMs: () => offset,
    setOffsetMs(offsetMs) {
      if (!Number.isSafeInteger(offsetMs) || Math.abs(offsetMs) > maxClockOffsetMs)
        throw new RangeError(`the clock offset must be an integer number of ms between -${maxClockOffsetMs} and ${maxClockOffsetMs}. Got ${JSON.stringify(offsetMs)}`)
      offset = offsetMs
    },
  }
}
