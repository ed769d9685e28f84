import { define, type Outcome, valueOf } from '../Check.js'
import { userApi } from '../scenario/user-api.js'
import { loadUserModule } from '../scenario/user-module.js'

/**
 * A check written in TypeScript or JavaScript: the module's default export receives the same
 * helpers as a module step (a viem client and an ethers provider on the fork, names, the PRNG)
 * plus the phase and its steps, and returns `{ ok, observed, expected }`. The probe runs it at
 * the window's end; its answer is the outcome.
 */
export const module = define({
  name: 'module',
  target: 'fork',
  summary: 'a TypeScript/JavaScript check: default export returns { ok, observed, expected }',
  params: { type: 'string', maxLength: 4_096 },
  prepare: (file: string, ctx) => ({
    params: file,
    reads: [
      {
        kind: 'module',
        run: async (phase, steps) => {
          const check = await loadUserModule<(api: unknown) => Promise<Outcome>>(ctx.scenario, file, 'module')
          return check({ ...(await userApi(ctx)), phase, steps })
        },
      },
    ],
  }),
  evaluate: (series) => valueOf<Outcome>(series.reads[0]),
})
