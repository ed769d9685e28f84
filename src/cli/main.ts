import { Command, CommanderError } from 'commander'
import { ForkchaosError } from '../errors.js'
import { runTeardown } from '../lifecycle.js'
import { VERSION } from '../scenario/suite.js'
import { cleanupCommand } from './commands/cleanup.js'
import { devnetCommand } from './commands/devnet.js'
import { exportCommand } from './commands/export.js'
import { forkCommand } from './commands/fork.js'
import { listCommand } from './commands/list.js'
import { proxyCommand } from './commands/proxy.js'
import { runCommand } from './commands/run.js'
import { validateCommand } from './commands/validate.js'
import { ExitCode } from './exit.js'

/** The program, with one command per file under commands/. */
export function createProgram(): Command {
  const program = new Command('forkchaos')
    .description('Chaos experiments for EVM systems: Anvil forks, DeFi faults, steady-state checks and verdicts.')
    .version(VERSION)
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) })
  for (const add of [runCommand, forkCommand, devnetCommand, proxyCommand, listCommand, validateCommand, exportCommand, cleanupCommand]) add(program)
  return program
}

/** Parses argv, runs the command, maps every error to an exit code (2 bad input, 3 infrastructure). */
export async function main(argv: string[]): Promise<number> {
  try {
    const program = createProgram()
    await program.parseAsync(argv)
    return (program as Command & { exitCodeResult?: number }).exitCodeResult ?? ExitCode.ok
  } catch (error) {
    await runTeardown()
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help') return 0
      return ExitCode.badInput
    }
    if (error instanceof ForkchaosError) {
      process.stderr.write(`forkchaos: ${error.message}\n`)
      return error.exitCode
    }
    process.stderr.write(`forkchaos: unexpected error: ${(error as Error).stack ?? String(error)}\n`)
    return ExitCode.infrastructure
  }
}
