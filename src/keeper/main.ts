import { watchParent } from '../process/parent.js'
import { runKeeper } from './keeper.js'

/**
 * The reference keeper as its own process: `node dist/src/keeper/main.js '<options JSON>'`.
 * Prints one JSON line of stats and exits; exits at once when forkchaos is gone (watchParent).
 */
watchParent()
const options = JSON.parse(process.argv[2] ?? '{}')
const stats = await runKeeper(options)
process.stdout.write(`${JSON.stringify(stats)}\n`)
