import { define, type FaultContext, num, type RuleHost, seenIn } from '../../Fault.js'
import { InputError } from '../../errors.js'

type Base = { methods: string[]; probability: number }

/**
 * Shared by the `rpc.*` faults: each installs one rule on a JSON-RPC fault proxy (the target
 * names the proxy; default `fork`, the proxy in front of the scenario's fork) and removes it
 * on revert. `methods` picks the calls (exact names or prefixes like `eth_*`), `probability`
 * how many of them (drawn from the seeded PRNG by the proxy).
 */
export function rpcFault<P extends Base>(options: {
  type: string
  summary: string
  extraSchema: Record<string, unknown>
  required?: string[]
  parseExtra(raw: Record<string, unknown>, where: string): Omit<P, keyof Base>
  action(params: P): Record<string, unknown>
}) {
  return define<P, { host: RuleHost; id: string; before: ReturnType<RuleHost['stats']>; params: P }>({
    type: options.type,
    summary: options.summary,
    paramsSchema: {
      type: 'object',
      additionalProperties: false,
      ...(options.required ? { required: options.required } : {}),
      properties: {
        methods: { type: 'array', items: { type: 'string', maxLength: 256 }, maxItems: 256, description: 'Methods to match (exact or prefix*); default all.' },
        probability: { type: 'number', minimum: 0, maximum: 1, default: 1 },
        ...options.extraSchema,
      },
    },
    parse(raw, where) {
      const methods = raw.methods ?? ['*']
      if (!Array.isArray(methods) || !methods.every((m) => typeof m === 'string'))
        throw new InputError(`\`methods\` must be a list of method names like "eth_call" or "eth_*". Got \`${JSON.stringify(raw.methods)}\`.`, { context: { Where: where } })
      return { ...options.parseExtra(raw, where), methods, probability: num(raw, 'probability', where, { min: 0, max: 1, default: 1 }) } as P
    },
    async apply(ctx, target, params) {
      const host = proxyOf(ctx, target ?? 'fork', options.type)
      const before = host.stats()
      const id = host.addRule({ match: { methods: params.methods }, probability: params.probability, action: options.action(params) })
      return { host, id, before, params }
    },
    async revert(_ctx, state) {
      state.host.removeRule(state.id)
    },
    async detect(_ctx, state, observations) {
      const now = state.host.stats()
      const calls = now.requests - state.before.requests
      const errors = Object.values(now.byMethod).reduce((a, m) => a + m.errors, 0) - Object.values(state.before.byMethod).reduce((a, m) => a + m.errors, 0)
      return { took: `rule on proxy \`${state.host.name}\` for ${state.params.methods.join(', ')}: ${calls} calls passed it since, ${errors} answered with errors`, seen: seenIn(observations) }
    },
  })
}

function proxyOf(ctx: FaultContext, name: string, type: string): RuleHost {
  if (!ctx.rpcProxy) throw new InputError(`The fault \`${type}\` needs a JSON-RPC fault proxy; this target has none.`, { hint: 'Set `target: { rpcProxy: true }` in the scenario.' })
  return ctx.rpcProxy(name)
}
