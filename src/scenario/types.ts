import type { Engine } from '../targets/engine.js'
import type { Abi, Address } from 'viem'

export type Phase = 'baseline' | 'inject' | 'recover'
export type CheckKind = 'safety' | 'liveness'
export type Expect = 'success' | 'revert' | 'any'
export type Scalar = string | number | boolean

/** A step as written in a scenario file, derived from the step registry (src/steps/registry.ts). */
import type { Step } from '../steps/registry.js'
export type { Step }
export type { Walk } from '../steps/stress.js'

export type ViewRef = { to: string; fn: string; args?: Scalar[] }

/** A check as written in a scenario file, derived from the check registry (src/checks/registry.ts). */
import type { CheckSpec } from '../checks/registry.js'
export type { CheckSpec }

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

/**
 * A protocol view: a signature (`sharePrice() returns (uint256)`), or one with constant
 * arguments (`{ fn: "previewRedeem(uint256) returns (uint256)", args: ["1e18"] }`).
 */
export type ProtocolView = string | { fn: string; args?: Scalar[] }

/**
 * The protocol's bounty event: a signature whose `amount` field is the bounty, or the signature
 * with its fields named (`{ event: "Paid(address indexed k, uint256 value, uint256 max)", amount:
 * "value", cap: "max" }`); `cap` is the cap the protocol applied to that payment.
 */
export type BountyEvent = string | { event: string; amount?: string; cap?: string }

/** The system under test, by the functions and events forkchaos needs to judge it. */
export type Protocol = {
  vault: string
  /** The keeper entry point, e.g. `cycle()`. */
  entry: string
  sharePrice?: ProtocolView
  riskMode?: ProtocolView
  bountyCap?: ProtocolView
  bountyEvent?: BountyEvent
  lender?: { address: string; token: string }
  /** Views whose values make the vault's state fingerprint. */
  state?: ProtocolView[]
  /** Events that count as "the system noticed" (e.g. a risk-mode change). */
  signals?: string[]
  /** The guards the protocol means to have; `forkchaos explore` tests around them and against what it finds. */
  guards?: Guards
}

/**
 * Intended guard thresholds: the most the price source may deviate from the TWAP before the
 * vault stops trading (bps), the oldest feed answer it trades on (s), the gas price above which
 * the keeper's bounty is capped (gwei). Each optional.
 */
export type Guards = { deviationBps?: number; heartbeatS?: number; maxGasPriceGwei?: number }

export type Scenario = {
  /** The file it came from (as given, for messages and reports). */
  file: string
  /** With a sweep, the cell's values follow in brackets: `oracle-divergence[bps=300,direction=up]`. */
  name: string
  /** One cell of the file's `sweep` (src/scenario/sweep.ts): `label` is what `--cell` selects it by. */
  cell?: { label: string; values: Record<string, string | number | boolean>; index: number; of: number }
  description?: string
  hypothesis: string
  target: {
    kind: 'fork' | 'devnet'
    /** Devnet: slot time in ms. */
    slotMs: number
    /** Devnet: the validators' execution client (`target.el`); absent: anvil. */
    el?: 'anvil' | 'ethereumjs'
    /** Devnet: the topology file the validators start from (`target.topology`, resolved against the scenario's directory); absent: the shipped one of `el`. */
    topology?: string
    /** Devnet: set when `--el` lengthened the file's slot; windows and check time bounds grew by `factor` (src/scenario/suite.ts, scaleWindows). */
    timeScale?: { factor: number; fileSlotMs: number }
    /** Devnet: whether `target.slot` was given (else the slot follows the execution client: `--el` may change it). */
    slotGiven?: boolean
    /** Devnet: validators, n = 3f + 1 (`target.validators`; the loader sets it, default 4). */
    validators?: number
    /** Devnet: validators the safety checks judge; default all not under a byzantine fault. */
    honest?: number[]
    isolation: 'snapshot' | 'fresh'
    /** Fork: the node the fork runs on (`target.engine`, `--engine`); default anvil (src/targets/engine.ts). */
    engine: Engine
    rpcProxy: boolean
    upstreamProxy: boolean
    anvil: { retries?: number; timeoutMs?: number; computeUnitsPerSecond?: number }
  }
  contracts: Record<string, Address>
  /** With `contracts: { foundry }` or `{ hardhat }`: the ABIs of the project's deployed contracts, by name (explore and search name selectors with them). */
  abis?: Record<string, Abi>
  accounts: Record<string, Address>
  protocol: Protocol | 'reference'
  checks: CheckSpec[]
  stop: CheckSpec[]
  baseline: { steps: Step[]; durationMs: number }
  inject: { faults: FaultSpec[]; steps: Step[]; durationMs: number; random?: RandomFaults }
  recover: { steps: Step[]; attempts: number; durationMs: number }
}
