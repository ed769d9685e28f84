import * as fs from 'node:fs'
import { ForkchaosError } from '../../errors.js'
import { parseNodeConfig } from './config.js'
import { startNode } from './node.js'

/**
 * `node dist/src/devnet/node/main.js <config.json>`: runs one validator. Prints exactly one
 * line to stdout when it is ready — `READY {"id":0,"rpc":"http://127.0.0.1:PORT","p2p":"127.0.0.1:PORT"}`
 * — and logs to stderr and `<dataDir>/node.log`. SIGTERM or SIGINT: stop cleanly, exit 0.
 * Exit 2: a bad config; exit 3: it could not start (execution layer unreachable, port in use).
 */
async function main() {
  const file = process.argv[2]
  if (!file) {
    process.stderr.write('usage: node dist/src/devnet/node/main.js <config.json>\n')
    process.exit(2)
  }
  let raw: unknown
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'))
  } catch (error) {
    process.stderr.write(`forkchaos node: cannot read ${file}: ${(error as Error).message}\n`)
    process.exit(2)
  }
  const node = await startNode(parseNodeConfig(raw), { log: (line) => process.stderr.write(`${line}\n`) })
  let stopping = false
  const stop = () => {
    if (stopping) return
    stopping = true
    const timer = setTimeout(() => process.exit(1), 10_000)
    timer.unref()
    node.stop().then(
      () => process.exit(0),
      (error) => {
        process.stderr.write(`forkchaos node: stop failed: ${(error as Error).message}\n`)
        process.exit(1)
      },
    )
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  process.stdout.write(`READY ${JSON.stringify({ id: node.id, rpc: node.rpc, p2p: node.p2p })}\n`)
}

// Bad peer input never gets here (every handler catches); this is the last resort.
process.on('uncaughtException', (error) => process.stderr.write(`forkchaos node: uncaught: ${error.stack ?? error}\n`))
process.on('unhandledRejection', (error) => process.stderr.write(`forkchaos node: unhandled rejection: ${String((error as Error)?.stack ?? error)}\n`))

main().catch((error) => {
  process.stderr.write(`forkchaos node: ${error instanceof ForkchaosError ? error.message : ((error as Error).stack ?? error)}\n`)
  process.exit(error instanceof ForkchaosError ? error.exitCode : 3)
})
