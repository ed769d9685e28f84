import type { Command } from 'commander'
import { loadAll } from '../../scenario/suite.js'
import { ExitCode, setExit } from '../exit.js'
import { parseEngine } from '../../targets/engine.js'

export function validateCommand(program: Command) {
  program
    .command('validate')
    .description('Check scenario files without running them (exit 2 with file, field and expectation on the first error).')
    .argument('[paths...]', 'scenario files or directories', ['scenarios'])
    .option('--engine <engine>', 'validate fork scenarios for this fork engine (anvil or hardhat), as `run --engine` would run them')
    .action((paths: string[], flags: { engine?: string }, command: Command) => {
      const scenarios = loadAll(paths, undefined, parseEngine(flags.engine))
      for (const s of scenarios) process.stdout.write(`ok  ${s.file}  (${s.name})\n`)
      setExit(command, ExitCode.ok)
    })
}
