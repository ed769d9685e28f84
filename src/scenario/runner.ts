import * as Experiment from '../experiment/experiment.js'
import { attachedFork } from '../experiment/targets/fork.js'
import type { ScenarioReport } from '../report/types.js'
import type { Fork } from '../targets/fork.js'
import type { Scenario } from './types.js'

export type { RunEvent, RunOptions } from '../experiment/experiment.js'

/**
 * Runs one scenario on a fork the caller started and isolated (a test, a bench), through the
 * one experiment engine (src/experiment/experiment.ts) on the fork target
 * (src/experiment/targets/fork.ts). The fork is neither reset nor stopped here.
 */
export async function runScenario(scenario: Scenario, fork: Fork, options: Experiment.RunOptions): Promise<ScenarioReport> {
  return Experiment.run(scenario, attachedFork(fork), options)
}
