import { describe, expect, it } from 'vitest'
import { controlApi } from '../fuzz/control-api.js'

// The control-API fuzz target with a fixed seed and a bounded count: the server of
// `forkchaos proxy` must answer every request with a JSON 2xx/4xx, promptly, refuse every
// request that breaks a stated limit, and free every listener when stopped. Large counts:
// `npm run fuzz -- --count 10000 control-api`.
describe('fuzz: control API', () => {
  it('300 seeded requests: 0 crashes, 0 hangs, 0 accepted-but-invalid', async () => {
    const tally = await controlApi.run({ count: 300, seed: 7 })
    expect(tally.examples).toEqual([])
    expect(tally).toEqual({ inputs: 300, crashes: 0, hangs: 0, acceptedInvalid: 0, examples: [] })
  })
})
