import * as fs from 'node:fs'
import * as path from 'node:path'
import { define, devnetOf, seenIn } from '../../Fault.js'
import * as P from '../../Params.js'
import { validatorId } from '../../targets/devnet/validators.js'
import { seenOnDevnet } from '../../experiment/observations.js'

/**
 * Corrupts a validator's block store: the node is stopped, `bytes` seeded bytes in the second
 * half of each store file are flipped, and the node is started again — on start it must notice
 * (checksums) and recover by syncing from peers. Corruption is not undone by revert.
 */
export const diskCorrupt = define<{ bytes: number }, { id: number; flipped: number }>({
  type: 'node.disk-corrupt',
  summary: 'Stop a validator, flip `bytes` seeded bytes in its store, start it again (it must detect and resync).',
  target: 'devnet',
  params: P.object({ bytes: P.integer({ min: 1, max: 4096, default: 8, description: 'Bytes flipped per store file (seeded).' }) }),
  async apply(ctx, target, params) {
    const id = validatorId(target, 'node.disk-corrupt', devnetOf(ctx, 'node.disk-corrupt').nodes.length)
    const devnet = devnetOf(ctx, 'node.disk-corrupt')
    const dir = devnet.nodes[id]?.dataDir as string
    await devnet.stopNode(id, 'SIGKILL')
    let flipped = 0
    for (const name of fs.readdirSync(dir)) {
      const file = path.join(dir, name)
      if (name === 'config.json' || !fs.statSync(file).isFile() || fs.statSync(file).size < 2) continue
      const data = fs.readFileSync(file)
      for (let i = 0; i < params.bytes; i++) {
        const at = ctx.prng.int(Math.floor(data.length / 2), data.length - 1)
        data[at] = (data[at] as number) ^ 0xff
        flipped++
      }
      fs.writeFileSync(file, data)
    }
    await devnet.startNode(id)
    return { id, flipped }
  },
  async revert() {},
  async detect(_ctx, state, observations) {
    return { took: `${state.flipped} bytes flipped in validator ${state.id}'s store, node restarted`, seen: seenIn(observations) ?? seenOnDevnet(observations, [state.id]) }
  },
})
