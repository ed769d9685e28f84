/**
 * The process registry moved to src/process/registry.ts, beside the process owner that fills
 * it; this module keeps the old import path working.
 */
export * from '../process/registry.js'
