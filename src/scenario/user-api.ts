import type { RunContext } from './context.js'

/**
 * What a TypeScript step or check receives: a viem client (test + public + wallet actions) and
 * an ethers v6 provider, both on the fork; names; the seeded PRNG. viem and ethers load on first use.
 */
export async function userApi(ctx: RunContext) {
  const chainId = Number(await ctx.rpc.request<string>('eth_chainId'))
  // Loaded here, not at import: viem/chains alone is ~740 modules, which `validate` never needs.
  const { createTestClient, http, publicActions, walletActions } = await import('viem')
  const { foundry } = await import('viem/chains')
  const viem = createTestClient({ mode: 'anvil', chain: { ...foundry, id: chainId }, transport: http(ctx.rpc.url) })
    .extend(publicActions)
    .extend(walletActions)
  const { JsonRpcProvider } = await import('ethers')
  const ethers = new JsonRpcProvider(ctx.rpc.url, chainId, { staticNetwork: true })
  return { viem, ethers, url: ctx.rpc.url, resolve: ctx.resolve, prng: ctx.prng, addresses: { ...ctx.fork.book } }
}
