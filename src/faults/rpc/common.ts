import { define, type FaultContext, type RuleHost, seenIn } from '../../Fault.js'
import { InputError } from '../../errors.js'
import * as P from '../../Params.js'

type Shape = Record<string, P.Spec<unknown>>
type Base = { methods: string[]; probability: number }
type ParamsOf<Extra extends Shape> = Base & { [K in keyof Extra]: P.Infer<Extra[K]> }

const base = {
  methods: P.array(P.string({ maxLength: 256 }), { maxItems: 256, default: ['*'], description: 'Methods to match (exact or prefix*); default all.' }),
  probability: P.number({ min: 0, max: 1, default: 1, description: 'Share of matching calls hit (seeded).' }),
}

/**
 * Shared by the `rpc.*` faults: each installs one rule on a JSON-RPC fault proxy (the target
 * names the proxy; default `fork`, the proxy in front of the scenario's fork) and removes it
 * on revert. `methods` picks the calls (exact names or prefixes like `eth_*`), `probability`
 * how many of them (drawn from the seeded PRNG by the proxy).
 */
export function rpcFault<const Extra extends Shape>(options: {
  type: string
  summary: string
  params: Extra
  action(params: ParamsOf<Extra>): Record<string, unknown>
}) {
  return define<ParamsOf<Extra>, { host: RuleHost; id: string; before: ReturnType<RuleHost['stats']>; params: ParamsOf<Extra> }>({
    type: options.type,
    summary: options.summary,
    target: 'proxy',
    // The fault's own params first: `forkchaos list` shows them before the shared two.
    params: P.object({ ...options.params, ...base }) as unknown as P.Spec<ParamsOf<Extra>>,
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
