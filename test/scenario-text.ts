// Scenario files written inline in tests: parsed as the loader parses a file, and the InputError
// (exit 2) a bad one must give.
import { expect } from 'vitest'
import { InputError } from '../src/errors.js'
import { parseScenario } from '../src/scenario/loader.js'
import type { Scenario } from '../src/scenario/types.js'

/** Parses `yaml` as if it were the scenario file `file`. */
export const loadText = (yaml: string, file: string): Scenario => parseScenario(new TextEncoder().encode(yaml), file)

/** The InputError (exit 2) `yaml` must be refused with; fails the test when it loads. */
export function refusal(yaml: string, file: string): InputError {
  try {
    loadText(yaml, file)
  } catch (error) {
    expect(error).toBeInstanceOf(InputError)
    expect((error as InputError).exitCode).toBe(2)
    return error as InputError
  }
  throw new Error('expected an InputError')
}
