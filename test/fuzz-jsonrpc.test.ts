import { expect, it } from 'vitest'
import { jsonrpcTarget } from '../fuzz/jsonrpc.js'

// The JSON-RPC fuzz target with a fixed seed and a bounded count (`npm run fuzz -- jsonrpc` runs
// large counts): a real Anvil, the proxy with rules in its own process, HTTP and WebSocket payloads.
it('200 fuzzed JSON-RPC payloads (seed 7): no crash, no hang, nothing accepted that Anvil refuses', async () => {
  const tally = await jsonrpcTarget.run({ count: 200, seed: 7 })
  expect(tally.inputs).toBe(200)
  expect({ crashes: tally.crashes, hangs: tally.hangs, acceptedInvalid: tally.acceptedInvalid, examples: tally.examples }).toEqual({
    crashes: 0,
    hangs: 0,
    acceptedInvalid: 0,
    examples: [],
  })
})
