import { Command, CommanderError } from 'commander'
import { ForkchaosError } from '../errors.js'
import { runTeardown } from '../lifecycle.js'
import { VERSION } from '../version.js'
import { ExitCode } from './exit.js'

type AddCommand = (program: Command) => void

/**
 * The commands, each loaded only when it is the one asked for: start-up cost is then what that
 * command needs (`--version` loads none of them; viem, ethers, the proxy and the devnet load in
 * the commands that use them).
 */
const commands: Record<string, () => Promise<AddCommand>> = {
  run: async () => (await import('./commands/run.js')).runCommand,
  fork: async () => (await import('./commands/fork.js')).forkCommand,
  devnet: async () => (await import('./commands/devnet.js')).devnetCommand,
  proxy: async () => (await import('./commands/proxy.js')).proxyCommand,
  list: async () => (await import('./commands/list.js')).listCommand,
  validate: async () => (await import('./commands/validate.js')).validateCommand,
  export: async () => (await import('./commands/export.js')).exportCommand,
  cleanup: async () => (await import('./commands/cleanup.js')).cleanupCommand,
  explore: async () => (await import('./commands/explore.js')).exploreCommand,
  search: async () => (await import('./commands/search.js')).searchCommand,
  ui: async () => (await import('./commands/ui.js')).uiCommand,
}

/**
 * Which commands argv needs registered: the one it names (the first word after the root's own
 * flags, which are only --version and --help), none for a bare `--version`, and all of them
 * otherwise (help, `help <command>`, an unknown command: commander lists or suggests them).
 */
export function commandsFor(argv: string[]): string[] {
  const args = argv.slice(2)
  const word = args.find((a) => !a.startsWith('-'))
  if (word !== undefined && Object.hasOwn(commands, word)) return [word]
  if (word === undefined && args.length > 0 && args.every((a) => a === '--version' || a === '-V')) return []
  return Object.keys(commands)
}

/** The program, with one command per file under commands/ (default: all of them, in order). */
export async function createProgram(names: string[] = Object.keys(commands)): Promise<Command> {
  const program = new Command('forkchaos')
    .description('Chaos experiments for EVM systems: Anvil forks, DeFi faults, steady-state checks and verdicts.')
    .version(VERSION)
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) })
  const adds = await Promise.all(names.map((name) => commands[name]?.()))
  for (const add of adds) add?.(program)
  return program
}

/** Parses argv, runs the command, maps every error to an exit code (2 bad input, 3 infrastructure). */
export async function main(argv: string[]): Promise<number> {
  try {
    const program = await createProgram(commandsFor(argv))
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
