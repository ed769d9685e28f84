#!/usr/bin/env node
// The CLI runs from the compiled output (`npm ci` builds it through the `prepare` script).
import { main } from '../dist/src/cli/main.js'

// `forkchaos list | head` closes the pipe early: that is not an error.
process.stdout.on('error', (error) => {
  if (error.code === 'EPIPE') process.exit(0)
  throw error
})

process.exitCode = await main(process.argv)
