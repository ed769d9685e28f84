import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'src/**/*.test.ts'],
    // Real Anvil processes on a 2-core machine: generous, not tight.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Two files at a time on 2 cores. Three were tried beside a quick-start run: slower (1,109 s of
    // tests against 1,039 s with two) and two timing failures at load 10 (a 7-validator partition
    // that did not resume in time, a keeper that fell behind).
    maxWorkers: 2,
    // Stops, after the run, any process a timed-out test left behind (by pid file; see the file).
    globalSetup: ['test/global-setup.ts'],
  },
})
