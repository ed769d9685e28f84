import type { Hex } from 'viem'
import * as P from '../../Params.js'
import { rpcFault } from './common.js'

const transforms = {
  /** Flip the lowest bit of a hex value (a state root that differs in one bit). */
  'flip-bit': (value: unknown) => (typeof value === 'string' && value.startsWith('0x') ? (`${value.slice(0, -1)}${(Number.parseInt(value.slice(-1), 16) ^ 1).toString(16)}` as Hex) : value),
  zero: (value: unknown) => (typeof value === 'string' && value.startsWith('0x') ? `0x${'0'.repeat(Math.max(1, value.length - 2))}` : 0),
  null: () => null,
} as const

/**
 * Replaces one field of matching calls' results (`path`, e.g. `stateRoot` or `parentHash` of a
 * block) with a transform: `flip-bit`, `zero` or `null`. From TypeScript any function can be
 * passed to the proxy's `addRule` directly.
 */
export const rewrite = rpcFault({
  type: 'rpc.rewrite',
  summary: 'Rewrite a result field (`path`) of matching calls with `transform`: flip-bit, zero or null.',
  params: {
    path: P.string({ minLength: 1, maxLength: 256, description: 'Field of the result, e.g. `stateRoot`.' }),
    transform: P.oneOf(Object.keys(transforms) as (keyof typeof transforms)[]),
  },
  action: (p) => ({ type: 'rewrite', path: p.path, with: transforms[p.transform] }),
})
