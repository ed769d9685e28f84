import type { Hex } from 'viem'
import { readUint } from './read.js'
import type { CheckFn } from './types.js'

/**
 * Safety: the flash lender never ends a keeper cycle poorer — its balance of the lent token
 * after each cycle is at least what it was before (loan plus fee repaid in the same transaction).
 */
export const flashRepaid: CheckFn<'flashRepaid'> = async (ctx, _body, phase) => {
  if (!ctx.protocol.lender) throw new Error('this check needs `protocol.lender`')
  const lender = ctx.resolve(ctx.protocol.lender.address, 'protocol.lender.address')
  const token = ctx.resolve(ctx.protocol.lender.token, 'protocol.lender.token')
  let checked = 0
  for (const step of phase.steps) {
    if (step.type !== 'cycle' || !step.receipt || !step.ok) continue
    const block = BigInt(step.receipt.blockNumber as Hex)
    const [before, after] = await Promise.all([
      readUint(ctx.rpc, token, 'balanceOf(address) returns (uint256)', [lender], block - 1n),
      readUint(ctx.rpc, token, 'balanceOf(address) returns (uint256)', [lender], block),
    ])
    checked++
    if (after < before)
      return { ok: false, observed: `${step.label}: lender balance ${before} → ${after}`, expected: 'lender balance never falls across a cycle' }
  }
  return { ok: true, observed: `${checked} successful cycles, lender never poorer`, expected: 'lender balance never falls across a cycle' }
}
