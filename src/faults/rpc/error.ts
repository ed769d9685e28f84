import { num, str } from '../../Fault.js'
import { rpcFault } from './common.js'

/**
 * Matching calls fail: `http: 429 | 500 | 502 | 503 | 504` answers with that HTTP status (429
 * with Retry-After), otherwise a JSON-RPC error object with `code` (default -32005, "limit
 * exceeded", as rate-limiting providers answer) and `message`.
 */
export const error = rpcFault<{ methods: string[]; probability: number; http: number; code: number; message: string | undefined }>({
  type: 'rpc.error',
  summary: 'Fail matching calls with an HTTP status (`http`) or a JSON-RPC error (`code`, `message`) at `probability`.',
  extraSchema: {
    http: { enum: [429, 500, 502, 503, 504] },
    code: { type: 'integer', minimum: -2_147_483_648, maximum: 2_147_483_647, default: -32005 },
    message: { type: 'string', maxLength: 1_000 },
  },
  parseExtra: (raw, where) => ({
    http: raw.http === undefined ? 0 : Number(str({ http: String(raw.http) }, 'http', where, { oneOf: ['429', '500', '502', '503', '504'] })),
    code: num(raw, 'code', where, { min: -2_147_483_648, max: 2_147_483_647, integer: true, default: -32005 }),
    message: raw.message === undefined ? undefined : str(raw, 'message', where),
  }),
  action: (p) => (p.http ? { type: 'http-error', status: p.http } : { type: 'rpc-error', code: p.code, ...(p.message ? { message: p.message } : {}) }),
})
