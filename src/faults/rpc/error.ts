import * as P from '../../Params.js'
import { rpcFault } from './common.js'

/**
 * Matching calls fail: `http: 429 | 500 | 502 | 503 | 504` answers with that HTTP status (429
 * with Retry-After), otherwise a JSON-RPC error object with `code` (default -32005, "limit
 * exceeded", as rate-limiting providers answer) and `message`.
 */
export const error = rpcFault({
  type: 'rpc.error',
  summary: 'Fail matching calls with an HTTP status (`http`) or a JSON-RPC error (`code`, `message`) at `probability`.',
  params: {
    http: P.optional(P.oneOf([429, 500, 502, 503, 504], { description: 'Answer with this HTTP status instead of a JSON-RPC error.' })),
    code: P.integer({ min: -2_147_483_648, max: 2_147_483_647, default: -32005, description: 'JSON-RPC error code.' }),
    message: P.optional(P.string({ maxLength: 1_000, description: 'JSON-RPC error message.' })),
  },
  action: (p) => (p.http ? { type: 'http-error', status: p.http } : { type: 'rpc-error', code: p.code, ...(p.message ? { message: p.message } : {}) }),
})
