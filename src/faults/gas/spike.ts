import type { Hex } from 'viem'
import { formatGwei, parseGwei } from '../../util/evm.js'
import { define, seenIn } from '../../Fault.js'
import * as P from '../../Params.js'
import { getBlock, setNextBlockBaseFee } from '../../targets/chain.js'

type Params = { baseFeeGwei: number }
type State = { before: bigint; spiked: bigint }

/**
 * Raises the base fee (and so `eth_gasPrice`) to `baseFeeGwei`. EIP-1559 lets a base fee decay
 * block by block, so the spike is re-set before every step while active. Revert sets the next
 * base fee back to what the last block had before the spike.
 */
export const spike = define<Params, State>({
  type: 'gas.spike',
  summary: 'Hold the base fee (and eth_gasPrice) at `baseFeeGwei` while active.',
  target: 'fork',
  params: P.object({ baseFeeGwei: P.number({ min: 0.000_000_001, max: 1_000_000, description: 'Base fee held, in gwei (1 wei = 1e-9 is the least).' }) }),
  async apply(ctx, _target, params) {
    const before = BigInt((await getBlock(ctx.rpc)).baseFeePerGas ?? '0x0')
    // Fixed-point text: String(1e-7) is "1e-7", which parseGwei refuses.
    const spiked = parseGwei(params.baseFeeGwei.toFixed(9))
    await setNextBlockBaseFee(ctx.rpc, spiked)
    return { before, spiked }
  },
  beforeStep: (ctx, state) => setNextBlockBaseFee(ctx.rpc, state.spiked).then(() => undefined),
  async revert(ctx, state) {
    await setNextBlockBaseFee(ctx.rpc, state.before)
  },
  async detect(ctx, state, observations) {
    const price = BigInt(await ctx.rpc.request<Hex>('eth_gasPrice'))
    return {
      took: `base fee ${formatGwei(state.before)} → ${formatGwei(state.spiked)} gwei (eth_gasPrice ${formatGwei(price)} gwei now)`,
      seen: seenIn(observations),
    }
  },
})
