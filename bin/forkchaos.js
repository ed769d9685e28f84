#!/usr/bin/env node
// The CLI runs from the compiled output (`npm ci` builds it through the `prepare` script).

// `forkchaos list | head` closes the pipe early: that is not an error, and a long-running
// command (a detached devnet) must not die of it either — output to a closed pipe is dropped.
process.stdout.on('error', (error) => {
  if (error.code !== 'EPIPE') throw error
})

// A bare `--version` (or `-V`) answers before anything else loads: commander alone is ~20 ms of
// start-up on an idle core. The text is commander's for the same flag (the version and a newline).
const args = process.argv.slice(2)
if (args.length > 0 && args.every((a) => a === '--version' || a === '-V')) {
  const { VERSION } = await import('../dist/src/version.js')
  process.stdout.write(`${VERSION}\n`)
} else {
  const { main } = await import('../dist/src/cli/main.js')
  process.exitCode = await main(process.argv)
}
