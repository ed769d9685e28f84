import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'src/**/*.test.ts'],
    // Real Anvil processes on a 2-core machine: generous, not tight.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Two files at a time on 2 cores. Three were tried: 1,039 s → faster, but the devnet drills'
    // timing claims (a height committed within a slot of a rejection) failed at load 10.
    maxWorkers: 2,
    // Stops, after the run, any process a timed-out test left behind (by pid file; see the file).
    globalSetup: ['test/global-setup.ts'],
  },
})
