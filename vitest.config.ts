import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'src/**/*.test.ts'],
    // Real Anvil processes on a 2-core machine: generous, not tight.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Three files at a time on 2 cores: most of a devnet drill's time is its phases' wall clock
    // (baseline, inject, recover), not CPU: with 2, a clean clone spent 1,039 s in the tests.
    maxWorkers: 3,
    // Stops, after the run, any process a timed-out test left behind (by pid file; see the file).
    globalSetup: ['test/global-setup.ts'],
  },
})
