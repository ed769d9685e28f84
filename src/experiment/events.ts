import type { Phase } from '../scenario/types.js'

/** What an experiment tells the CLI as it goes. */
export type RunEvent =
  | { type: 'phase'; scenario: string; phase: Phase | 'revert' }
  | { type: 'fault'; scenario: string; fault: string; action: 'apply' | 'revert' }
  | { type: 'progress'; scenario: string; done: number; total: number }
  | { type: 'booted'; url: string; ms: number }
  /** A scenario is about to run: its phases' planned durations (ms; 0 for step-driven fork phases) and step counts, for progress lines. */
  | { type: 'scenario-start'; scenario: string; target: 'fork' | 'devnet'; plannedMs: Record<Phase, number>; steps: Record<Phase, number> }
  /** A devnet's highest height grew (seen by the probe). */
  | { type: 'commit'; scenario: string; height: number }
  /** A devnet validator stopped answering the probe (`down`) or answers again (`up`). */
  | { type: 'node'; scenario: string; node: number; state: 'down' | 'up' }
