/**
 * The fuzz harness's shared shape. Each area (scenario files, the control API, JSON-RPC
 * payloads) exports one `FuzzTarget` from `fuzz/<area>.ts`; `fuzz/run.ts` runs them with large
 * counts, and `test/fuzz-<area>.test.ts` runs each with a fixed seed and a bounded count.
 */
export interface FuzzTally {
  /** Inputs tried. */
  inputs: number
  /** Inputs that crashed the code under test (a stack trace, a 5xx, exit 3, a dead process). */
  crashes: number
  /** Inputs that got no answer within the target's time bound. */
  hangs: number
  /** Inputs that should have been refused but were accepted. */
  acceptedInvalid: number
  /** Up to a few shrunk reproducers, one line each, for the report and for regression tests. */
  examples: string[]
}

export interface FuzzTarget {
  name: string
  run(options: { count: number; seed: number }): Promise<FuzzTally>
}
