import type { Address, Hex } from 'viem'
import { installRules, removeRules, type ShimHandle, type ShimRule, shimInPlace, toSelector } from '../../chain/shim.js'
import { define, type FaultContext, requireTarget, seenIn } from '../../Fault.js'
import * as P from '../../Params.js'

const signature = P.refine(
  P.string({
    maxLength: 1_000,
    pattern: { regex: '^(0x[0-9a-fA-F]{8}|[A-Za-z_$][A-Za-z0-9_$]*\\(.*\\))$', expected: 'a signature like "closeTrade(uint256)" or 4 bytes like "0x12345678"' },
  }),
  'A signature must also parse as a Solidity function signature (balanced parentheses).',
  (s) => (toSelector(s) === undefined ? 'is not a function signature that can be read (unbalanced parentheses?)' : undefined),
)

/** Function signatures or 4-byte selectors, as selectors. */
const selectors = P.map(
  P.array(signature, { minItems: 1, maxItems: 64, description: 'Function signatures ("closeTrade(uint256)") or 4-byte selectors.' }),
  (list) => list.map((s) => toSelector(s) as Hex),
)

type Shape = Record<string, P.Spec<unknown>>
type ParamsOf<Extra extends Shape> = { selectors: Hex[] } & { [K in keyof Extra]: P.Infer<Extra[K]> }

/** Shared by dependency.revert / .garbage / .gas: which selectors, and the rule for each. */
export function dependencyFault<const Extra extends Shape>(options: {
  type: string
  summary: string
  params: Extra
  rule(ctx: FaultContext, params: ParamsOf<Extra>): ShimRule
}) {
  return define<ParamsOf<Extra>, { handle: ShimHandle; target: Address; params: ParamsOf<Extra> }>({
    type: options.type,
    summary: options.summary,
    target: 'fork',
    params: P.object({ selectors, ...options.params }) as unknown as P.Spec<ParamsOf<Extra>>,
    async apply(ctx, target, params) {
      const address = ctx.resolve(requireTarget(target, options.type), 'target')
      const rule = options.rule(ctx, params)
      const handle = await installRules(ctx.rpc, address, new Map(params.selectors.map((s) => [s, rule])))
      return { handle, target: address, params }
    },
    revert: (_ctx, state) => removeRules(state.handle),
    async detect(ctx, state, observations) {
      const inPlace = await shimInPlace(ctx.rpc, state.target)
      return {
        took: `${inPlace ? 'shim in place' : 'shim NOT in place'} at ${state.target} for ${state.params.selectors.join(', ')}`,
        seen: seenIn(observations),
      }
    },
  })
}
