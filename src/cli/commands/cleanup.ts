import type { Command } from 'commander'
import { cleanupStale, stateDir } from '../../targets/processes.js'

export function cleanupCommand(program: Command) {
  program
    .command('cleanup')
    .description('Stop Anvil processes that an earlier, killed forkchaos run left behind (only ours, by pid file and process group).')
    .action(() => {
      const { stopped, skipped } = cleanupStale()
      for (const p of stopped) process.stdout.write(`stopped ${p.label} pid ${p.pid} (started ${p.startedAt})\n`)
      for (const p of skipped) process.stdout.write(`left ${p.label} pid ${p.pid}: its forkchaos run is still alive\n`)
      process.stdout.write(`${stopped.length} stopped · state dir ${stateDir()}\n`)
    })
}
