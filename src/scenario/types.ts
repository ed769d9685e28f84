import type { Address } from 'viem'

export type Phase = 'baseline' | 'inject' | 'recover'
export type CheckKind = 'safety' | 'liveness'
export type Expect = 'success' | 'revert' | 'any'
export type Scalar = string | number | boolean

type TxFields = { from?: string; expect?: Expect; reason?: string; kind?: CheckKind; label?: string }
export type Walk = { target: string; stepBps: number; maxBps: number }

export type Step =
  | { cycle: TxFields & { count?: number; gasPriceGwei?: number; intervalS?: number } }
  | { call: TxFields & { to: string; fn: string; args?: Scalar[]; value?: string } }
  | { mine: { blocks?: number; intervalS?: number } }
  | { warp: { seconds: number } }
  | { stress: { cycles: number; from?: string; intervalS?: number; walk?: { pair?: Walk; feed?: Walk } } }
  | { module: { path: string; label?: string } }
  | {
      keeper: {
        mode: 'naive' | 'budgeted'
        duration: string | number
        interval?: string | number
        timeout?: string | number
        budgetRatio?: number
        maxAttempts?: number
        from?: string
        label?: string
      }
    }

export type ViewRef = { to: string; fn: string; args?: Scalar[] }

export type CheckSpec = {
  name: string
  kind: CheckKind
  phases?: Phase[]
  sharePriceFloor?: { minBps: number }
  cycleAtomic?: true
  bountyCapped?: true
  flashRepaid?: true
  cyclesSucceed?: true
  riskMode?: { equals: number }
  view?: ViewRef & { equals?: Scalar; atLeast?: Scalar; atMost?: Scalar; equalsView?: ViewRef }
  reverts?: ViewRef & { from?: string; reason?: string }
  progress?: { minCommitsPerSlot?: number }
  noFork?: true
  mustStall?: true
  catchUp?: { node: number; withinMs: number }
  rejects?: { proposer: number }
  driftRejected?: { proposer: number }
  evidence?: { validator: number }
  memory?: { maxRssMb: number }
  inclusion?: { maxMs: number }
  keeperLoad?: { step?: string; maxAmplification?: number; minAmplification?: number; minSuccessRate?: number; minStaleReads?: number }
  module?: string
}

export type RandomFaults = { faults: FaultSpec[]; everyMs: number; holdMs: number; budget: number; flakeBudget: number }

export type FaultSpec = {
  type: string
  target?: string | number
  params?: Record<string, unknown>
  /**
   * The params as the fault's own spec parsed them at load (defaults filled, values converted),
   * for `applyFault`. Not enumerable, so a report that serialises the spec shows what the file
   * said (and a bigint param never reaches JSON.stringify); a copy by spreading drops it, and
   * `applyFault` then parses `params` again.
   */
  parsed?: unknown
}

/** The system under test, by the functions and events forkchaos needs to judge it. */
export type Protocol = {
  vault: string
  /** The keeper entry point, e.g. `cycle()`. */
  entry: string
  sharePrice?: string
  riskMode?: string
  bountyCap?: string
  bountyEvent?: string
  lender?: { address: string; token: string }
  /** Views whose values make the vault's state fingerprint. */
  state?: string[]
  /** Events that count as "the system noticed" (e.g. a risk-mode change). */
  signals?: string[]
}

export type Scenario = {
  /** The file it came from (as given, for messages and reports). */
  file: string
  name: string
  description?: string
  hypothesis: string
  target: {
    kind: 'fork' | 'devnet'
    /** Devnet: slot time in ms. */
    slotMs: number
    /** Devnet: validators the safety checks judge; default all not under a byzantine fault. */
    honest?: number[]
    isolation: 'snapshot' | 'fresh'
    rpcProxy: boolean
    upstreamProxy: boolean
    anvil: { retries?: number; timeoutMs?: number; computeUnitsPerSecond?: number }
  }
  contracts: Record<string, Address>
  accounts: Record<string, Address>
  protocol: Protocol | 'reference'
  checks: CheckSpec[]
  stop: CheckSpec[]
  baseline: { steps: Step[]; durationMs: number }
  inject: { faults: FaultSpec[]; steps: Step[]; durationMs: number; random?: RandomFaults }
  recover: { steps: Step[]; attempts: number; durationMs: number }
}
