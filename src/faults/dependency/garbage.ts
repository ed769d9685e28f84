import { num } from '../../Fault.js'
import { dependencyFault } from './common.js'

/** Chosen functions return `words` 32-byte words of seeded garbage instead of their answer. */
export const garbage = dependencyFault<{ selectors: `0x${string}`[]; words: number }>({
  type: 'dependency.garbage',
  summary: 'Make chosen selectors return `words` (0–8) seeded random 32-byte words instead of their answer.',
  extraSchema: { words: { type: 'integer', minimum: 0, maximum: 8, default: 1 } },
  parseExtra: (raw, where) => ({ words: num(raw, 'words', where, { min: 0, max: 8, default: 1, integer: true }) }),
  rule: (ctx, params) => ({ mode: 'garbage', words: params.words, word: ctx.prng.word() }),
})
