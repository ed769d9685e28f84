import type { Command } from 'commander'
import { runTeardown } from '../../lifecycle.js'
import { startFork } from '../../targets/fork.js'
import { type SourceFlags, sourceFrom } from '../options.js'

export function forkCommand(program: Command) {
  program
    .command('fork')
    .description('Boot a fork (default: of the embedded reference chain), print its URL and contracts, keep it until Ctrl-C.')
    .option('--fork-url <url>', 'fork this RPC URL')
    .option('--fork-block <n>', 'pin the fork to this block')
    .option('--state <file>', 'fork a state dump written by anvil --dump-state')
    .option('--json', 'print {url, contracts, accounts} as JSON')
    .action(async (flags: SourceFlags & { json?: boolean }) => {
      const fork = await startFork(sourceFrom(flags))
      const info = { url: fork.anvil.url, pid: fork.anvil.pid, log: fork.anvil.logFile, contracts: fork.book, accounts: fork.accounts }
      if (flags.json) process.stdout.write(`${JSON.stringify(info)}\n`)
      else {
        process.stdout.write(`fork ready: ${info.url} (pid ${info.pid}, log ${info.log})\n`)
        for (const [name, address] of Object.entries(fork.book)) process.stdout.write(`  ${name.padEnd(10)} ${address}\n`)
        process.stdout.write('Ctrl-C stops it.\n')
      }
      // The teardown registry stops the fork on SIGINT / SIGTERM and exits 130 / 143.
      await new Promise<never>(() => {})
      await runTeardown()
    })
}
