import type { Phase } from '../scenario/types.js'

/** What an experiment tells the CLI as it goes. */
export type RunEvent =
  | { type: 'phase'; scenario: string; phase: Phase | 'revert' }
  | { type: 'fault'; scenario: string; fault: string; action: 'apply' | 'revert' }
  | { type: 'progress'; scenario: string; done: number; total: number }
  | { type: 'booted'; url: string; ms: number }
