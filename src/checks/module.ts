import type { Outcome } from './types.js'
import { userApi } from '../scenario/user-api.js'
import { loadUserModule } from '../scenario/user-module.js'
import type { CheckFn } from './types.js'

/**
 * A check written in TypeScript or JavaScript: the module's default export receives the same
 * helpers as a module step (a viem client and an ethers provider on the fork, names, the PRNG)
 * plus the phase and its steps, and returns `{ ok, observed, expected }`.
 */
export const module: CheckFn<'module'> = async (ctx, file, phase) => {
  const check = await loadUserModule<(api: unknown) => Promise<Outcome>>(ctx.scenario, file, 'module')
  return check({ ...(await userApi(ctx)), phase: phase.name, steps: phase.steps })
}
