import type { ActiveFault, FaultContext, Observations } from '../Fault.js'
import type { CheckResult, FaultWindow, ScenarioReport, Verdict } from '../report/types.js'
import type { RunEvent } from './events.js'
import type { CheckSpec, FaultSpec, Phase, Scenario } from '../scenario/types.js'

/**
 * What kind of system a target is. `fork`: one Anvil fork (src/experiment/targets/fork.ts).
 * `devnet`: N = 3f + 1 validators forkchaos starts (src/experiment/targets/devnet.ts).
 * `endpoints`: a chain forkchaos did not start and cannot control as processes, reached by its
 * JSON-RPC endpoints (src/experiment/targets/endpoints.ts): boots by attaching (no processes),
 * resets as a no-op, and judges checks over eth_getBlockByNumber; it applies no fault itself.
 */
export type TargetKind = 'fork' | 'devnet' | 'endpoints'

/** What every experiment tells its target: the seed, the replay line, the event sink. */
export type RunInfo = { seed: number; replay: string; emit: (event: RunEvent) => void }

/**
 * What the phase loop gives a target while one phase runs. `guard(run)` evaluates the stop
 * conditions of the phase on the run so far and throws when one tripped; a target calls it
 * between steps, or every poll while a phase waits. `apply` applies a fault and records it (a
 * soak draws faults while inject runs; a `fault` step applies one with its `window`). `revertedAt`: when the faults were reverted (recover),
 * on the session's clock.
 */
export type PhaseIo<Run> = {
  guard(run: Run): Promise<void>
  apply(spec: FaultSpec, where: string, window?: FaultWindow): Promise<ActiveFault>
  active: readonly ActiveFault[]
  revertedAt?: number
}

/**
 * One experiment's hold on a target: the actions of each phase, the checks over what the
 * target's probe saw, and what faults act on. `Run` is what a phase leaves for the checks: the
 * steps it ran (fork), or its time window on the probe clock (devnet).
 */
export type Session<Run> = {
  /** What faults act on (RPC, names, the devnet, the proxies), with the session clock. */
  faults: FaultContext
  /** ms on the session's clock: fault records, windows and MTTR use it. */
  now(): number
  /** Runs one phase's actions: steps (fork), a wait, or a soak (devnet). */
  act(phase: Phase, io: PhaseIo<Run>): Promise<Run>
  /** Evaluates checks (or stop conditions: `purpose: 'stop'`) of a phase over its run. */
  check(specs: CheckSpec[], phase: Phase, run: Run, purpose: 'check' | 'stop'): Promise<CheckResult[]>
  /** Results a phase yields besides the scenario's checks (a step's `expect`, a soak's flake budget). */
  extras?(phase: Phase, run: Run): CheckResult[]
  /** Taken before the faults apply, handed to `observe` (the protocol's views before). */
  beforeInject?(): Promise<unknown>
  /** What the target showed while the faults were active, for each fault's `detect`. */
  observe(run: Run, before: unknown): Promise<Observations>
  /** Whether the recover phase runs again after `attempt` tries with checks still broken. */
  again(attempt: number): boolean
  /**
   * Fork: an inject check whose own reads reverted under the faults (a view that calls the faulted
   * dependency) is read again once the faults are reverted, before any recover step, and judged on
   * that read: the state the inject phase left, seen through healthy dependencies. One that still
   * cannot be read fails. Absent: such a check fails as read (the devnet's windows are time).
   */
  rereadsUnread?: true
  /** A target's own account of an error (the fork's Anvil died: its last words). */
  explain?(error: unknown): Promise<{ verdict: Verdict; reason: string } | undefined>
  /** The report's target-specific fields. */
  report(): Pick<ScenarioReport, 'cycles' | 'load' | 'proxies'> & Record<string, unknown>
  /** Stops the probe and what the session started (its proxies); the lease releases the rest. */
  close(): Promise<void>
}

/** A target made ready for one scenario, and how to give it back (stop a fresh fork, take a devnet down). */
export type Lease<Instance> = { instance: Instance; release(): Promise<void> }

/**
 * A target as declared: `boot` starts what scenarios share (once, on first use: the fork);
 * `reset` makes it ready for one scenario (a snapshot revert, a fresh fork, a fresh devnet),
 * with the proxies the scenario puts in front of it; `probe` opens the session the phase loop
 * drives; `stop` stops what `boot` started.
 */
export type TargetDefinition<Shared, Instance, Run> = {
  kind: TargetKind
  boot(info: RunInfo): Promise<Shared>
  reset(shared: Shared, scenario: Scenario, info: RunInfo): Promise<Lease<Instance>>
  probe(instance: Instance, scenario: Scenario, info: RunInfo): Promise<Session<Run>>
  stop(shared: Shared): Promise<void>
}

/** A defined target, as the experiment engine and the suite use it. */
export type Target = {
  kind: TargetKind
  /** Boots now if it has not (once; a failed boot is tried again next time): for a caller that wants boot errors as errors, not verdicts. */
  boot(info: RunInfo): Promise<void>
  /** Boots on first use, then resets for this scenario, and opens its session. */
  open(scenario: Scenario, info: RunInfo): Promise<{ session: Session<unknown>; release(): Promise<void> }>
  /** Stops what the target booted (a no-op when it never booted). */
  stop(): Promise<void>
}

/**
 * Declares a target. `define` owns the lifecycle: boot once on first use (concurrent first uses
 * share one boot), reset per scenario, release after it, stop what was booted; a lease whose
 * session cannot open is released at once.
 */
export function define<Shared, Instance, Run>(definition: TargetDefinition<Shared, Instance, Run>): Target {
  let booted: Promise<Shared> | undefined
  const boot = (info: RunInfo) => {
    booted ??= definition.boot(info)
    return booted.catch((error) => {
      booted = undefined
      throw error
    })
  }
  return {
    kind: definition.kind,
    async boot(info) {
      await boot(info)
    },
    async open(scenario, info) {
      const shared = await boot(info)
      const lease = await definition.reset(shared, scenario, info)
      try {
        const session = (await definition.probe(lease.instance, scenario, info)) as Session<unknown>
        return { session, release: () => lease.release() }
      } catch (error) {
        await lease.release()
        throw error
      }
    },
    async stop() {
      if (!booted) return
      const shared = await booted.catch(() => undefined)
      booted = undefined
      if (shared !== undefined) await definition.stop(shared)
    },
  }
}
