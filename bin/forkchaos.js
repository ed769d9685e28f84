#!/usr/bin/env node
// The CLI runs from the compiled output (`npm ci` builds it through the `prepare` script).
import { main } from '../dist/src/cli/main.js'

// `forkchaos list | head` closes the pipe early: that is not an error, and a long-running
// command (a detached devnet) must not die of it either — output to a closed pipe is dropped.
process.stdout.on('error', (error) => {
  if (error.code !== 'EPIPE') throw error
})

process.exitCode = await main(process.argv)
