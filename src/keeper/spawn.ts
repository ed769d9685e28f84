import * as path from 'node:path'
import { packageRoot } from '../contracts.js'
import { InfraError } from '../errors.js'
import { onTeardown } from '../lifecycle.js'
import { define } from '../process/Instance.js'
import type { KeeperOptions, KeeperStats } from './keeper.js'

const main = () => path.join(packageRoot, 'dist', 'src', 'keeper', 'main.js')

/**
 * The reference keeper as a process of the process owner: its own event loop (as a real bot),
 * its own process group, a pid file that `forkchaos cleanup` reads, and a watch on forkchaos
 * (src/process/parent.ts) so that it ends when forkchaos does, however forkchaos ends. Running
 * once spawned; it prints one JSON line of stats and exits.
 */
export const keeperProcess = define(({ options, onStdout }: { options: KeeperOptions; onStdout?: (chunk: Buffer) => void }) => ({
  kind: 'keeper' as const,
  label: 'keeper',
  command: process.execPath,
  args: [main(), JSON.stringify(options)],
  match: main(),
  onOutput: (chunk: Buffer, stream: 'stdout' | 'stderr') => {
    if (stream === 'stdout') onStdout?.(chunk)
  },
}))

/** Runs the reference keeper to the end of its `durationMs` and returns its stats. */
export async function spawnKeeper(options: KeeperOptions): Promise<KeeperStats> {
  // Its stats are its last stdout line (stderr shares the owner's ring): a bounded tail of stdout alone.
  let stdout = ''
  const keeper = keeperProcess({ options, onStdout: (chunk) => (stdout = (stdout + chunk.toString('utf8')).slice(-65_536)) })
  const unregister = onTeardown('keeper', () => keeper.stop({ graceMs: 0 }))
  try {
    await keeper.start()
    const exit = await keeper.exited
    const last = stdout.trim().split('\n').pop() ?? ''
    try {
      return JSON.parse(last) as KeeperStats
    } catch {
      throw new InfraError('The reference keeper exited without stats.', {
        context: { 'Exit code': exit.code ?? `signal ${exit.signal}`, Output: keeper.output().slice(-500) },
        hint: 'Run `npm run build`: the keeper runs from dist/.',
      })
    }
  } finally {
    unregister()
  }
}
