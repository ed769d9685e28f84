import type { Command } from 'commander'
import { cleanupStale, PROCESS_KINDS, stateDir } from '../../process/registry.js'

export function cleanupCommand(program: Command) {
  program
    .command('cleanup')
    .description(`Stop what an earlier, killed forkchaos run left behind — ${PROCESS_KINDS.join(', ')} processes — only ours, by pid file and process group.`)
    .action(async () => {
      const { stopped, skipped, lingering } = await cleanupStale()
      for (const p of stopped) process.stdout.write(`stopped ${p.kind} ${p.label} pid ${p.pid} (started ${p.startedAt})\n`)
      for (const p of lingering) process.stdout.write(`killed ${p.kind} ${p.label} pid ${p.pid}, but it is still there after 5 s\n`)
      for (const p of skipped) process.stdout.write(`left ${p.kind} ${p.label} pid ${p.pid}: its forkchaos run (pid ${p.owner}) is still alive\n`)
      process.stdout.write(`${stopped.length} stopped · state dir ${stateDir()}\n`)
    })
}
