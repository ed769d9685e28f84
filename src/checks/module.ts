import * as path from 'node:path'
import { pathToFileURL } from 'node:url'
import { InputError } from '../errors.js'
import { userApi } from '../scenario/user-api.js'
import type { CheckFn, Outcome } from './types.js'

/**
 * A check written in TypeScript or JavaScript: the module's default export receives the same
 * helpers as a module step (a viem client and an ethers provider on the fork, names, the PRNG)
 * and returns `{ ok, observed, expected }`.
 */
export const module: CheckFn<'module'> = async (ctx, file, phase) => {
  const full = path.resolve(path.dirname(ctx.scenario.file), file)
  const mod = (await import(pathToFileURL(full).href)) as { default?: (api: unknown) => Promise<Outcome> }
  if (typeof mod.default !== 'function')
    throw new InputError(`${ctx.scenario.file}: the check module ${file} has no default export function.`)
  return mod.default({ ...(await userApi(ctx)), phase: phase.name, steps: phase.steps })
}
