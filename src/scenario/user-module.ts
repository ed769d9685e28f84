import * as path from 'node:path'
import { pathToFileURL } from 'node:url'
import { InputError } from '../errors.js'
import type { Scenario } from './types.js'

/**
 * Loads a step or check module named in a scenario (relative to the scenario file). TypeScript
 * files go through tsx's loader, since Node 20 cannot import .ts; JavaScript is imported as is.
 */
export async function loadUserModule<F>(scenario: Scenario, file: string, field: string): Promise<F> {
  const full = path.resolve(path.dirname(scenario.file), file)
  let mod: { default?: unknown }
  try {
    if (/\.[mc]?tsx?$/.test(full)) {
      const { tsImport } = await import('tsx/esm/api')
      mod = (await tsImport(pathToFileURL(full).href, import.meta.url)) as { default?: unknown }
    } else mod = (await import(pathToFileURL(full).href)) as { default?: unknown }
  } catch (error) {
    throw new InputError(`${scenario.file}: \`${field}\`: cannot load ${file}: ${(error as Error).message.split('\n')[0]}`, {
      context: { File: scenario.file, Field: field },
    })
  }
  if (typeof mod.default !== 'function')
    throw new InputError(`${scenario.file}: \`${field}\`: ${file} has no default export function.`, { context: { File: scenario.file, Field: field } })
  return mod.default as F
}
