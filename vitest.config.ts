import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'src/**/*.test.ts'],
    // Real Anvil processes on a 2-core machine: generous, not tight.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
    // Stops, after the run, any process a timed-out test left behind (by pid file; see the file).
    globalSetup: ['test/global-setup.ts'],
  },
})
