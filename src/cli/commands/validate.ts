import type { Command } from 'commander'
import { loadAll } from '../../scenario/suite.js'
import { ExitCode, setExit } from '../exit.js'

export function validateCommand(program: Command) {
  program
    .command('validate')
    .description('Check scenario files without running them (exit 2 with file, field and expectation on the first error).')
    .argument('[paths...]', 'scenario files or directories', ['scenarios'])
    .action((paths: string[], _flags: unknown, command: Command) => {
      const scenarios = loadAll(paths)
      for (const s of scenarios) process.stdout.write(`ok  ${s.file}  (${s.name})\n`)
      setExit(command, ExitCode.ok)
    })
}
