import * as fs from 'node:fs'
import * as path from 'node:path'
import { define, devnetOf, seenIn } from '../../Fault.js'
import * as P from '../../Params.js'
import { validatorId } from '../../targets/devnet/validators.js'
import { seenOnDevnet } from '../../experiment/observations.js'

/**
 * A full disk under a validator's data directory: every file in it is swapped for a link to
 * /dev/full, whose writes fail with ENOSPC from the kernel — the node sees exactly what a full
 * disk gives it. Revert puts the files back (appending what the node still holds is its job).
 */
export const diskFull = define<Record<string, never>, { id: number; moved: [string, string][] }>({
  type: 'node.disk-full',
  summary: 'Make writes under a validator\'s data directory fail with ENOSPC (files linked to /dev/full); revert restores them.',
  target: 'devnet',
  params: P.object({}),
  async apply(ctx, target) {
    const id = validatorId(target, 'node.disk-full', devnetOf(ctx, 'node.disk-full').nodes.length)
    const dir = devnetOf(ctx, 'node.disk-full').nodes[id]?.dataDir as string
    const moved: [string, string][] = []
    for (const name of fs.readdirSync(dir)) {
      const file = path.join(dir, name)
      if (!fs.statSync(file).isFile() || name === 'config.json') continue
      const aside = `${file}.forkchaos-aside`
      fs.renameSync(file, aside)
      fs.symlinkSync('/dev/full', file)
      moved.push([file, aside])
    }
    return { id, moved }
  },
  async revert(_ctx, state) {
    for (const [file, aside] of state.moved) {
      fs.rmSync(file, { force: true })
      fs.renameSync(aside, file)
    }
  },
  async detect(_ctx, state, observations) {
    return { took: `${state.moved.length} files of validator ${state.id} now write to /dev/full (ENOSPC)`, seen: seenIn(observations) ?? seenOnDevnet(observations, [state.id]) }
  },
})
