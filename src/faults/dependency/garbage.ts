import * as P from '../../Params.js'
import { dependencyFault } from './common.js'

/** Chosen functions return `words` 32-byte words of seeded garbage instead of their answer. */
export const garbage = dependencyFault({
  type: 'dependency.garbage',
  summary: 'Make chosen selectors return `words` (0–8) seeded random 32-byte words instead of their answer.',
  params: { words: P.integer({ min: 0, max: 8, default: 1, description: '32-byte words returned.' }) },
  rule: (ctx, params) => ({ mode: 'garbage', words: params.words, word: ctx.prng.word() }),
})
