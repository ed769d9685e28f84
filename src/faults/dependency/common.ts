import type { Address, Hex } from 'viem'
import { define, type FaultContext, requireTarget, seenIn } from '../../Fault.js'
import { InputError } from '../../errors.js'
import { installRules, removeRules, type ShimHandle, type ShimRule, shimInPlace, toSelector } from './shim.js'

/** Shared by dependency.revert / .garbage / .gas: which selectors, and the rule for each. */
export function dependencyFault<P extends { selectors: Hex[] }>(options: {
  type: string
  summary: string
  extraSchema: Record<string, unknown>
  parseExtra(raw: Record<string, unknown>, where: string): Omit<P, 'selectors'>
  rule(ctx: FaultContext, params: P): ShimRule
}) {
  return define<P, { handle: ShimHandle; target: Address; params: P }>({
    type: options.type,
    summary: options.summary,
    paramsSchema: {
      type: 'object',
      additionalProperties: false,
      required: ['selectors'],
      properties: {
        selectors: {
          type: 'array',
          minItems: 1,
          maxItems: 64,
          items: { type: 'string', maxLength: 1_000 },
          description: 'Function signatures ("closeTrade(uint256)") or 4-byte selectors.',
        },
        ...options.extraSchema,
      },
    },
    parse(raw, where) {
      const list = raw.selectors
      if (!Array.isArray(list) || list.length === 0 || !list.every((s) => typeof s === 'string'))
        throw new InputError(`\`selectors\` must be a non-empty list of signatures like "closeTrade(uint256)". Got \`${JSON.stringify(list)}\`.`, {
          context: { Where: where },
        })
      const selectors = list.map((s, i) => toSelector(s, `${where}.selectors[${i}]`))
      return { ...options.parseExtra(raw, where), selectors } as P
    },
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
