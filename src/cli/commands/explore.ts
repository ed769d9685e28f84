import type { Command } from 'commander'
import { InputError } from '../../errors.js'
import { ExitCode, setExit } from '../exit.js'
import { parseSeed, type SourceFlags, sourceFrom } from '../options.js'

type Flags = SourceFlags & { entry: string; seed?: string; out: string; json?: boolean }

/** Limit on `--entry`: a signature of at most this many characters. */
const maxEntryChars = 256

export function exploreCommand(program: Command) {
  program
    .command('explore')
    .description('Trace one healthy call of the keeper entry point, list its external calls, and run every dependency fault on each and the guard rows (feed moves and ages, gas prices around each guard threshold found by perturbing them and each one the protocol declares; shortfalls) as scenarios (fault × check matrix; failing cells written as scenario files).')
    .option('--entry <signature>', 'the entry point traced and run, a function of the vault without arguments', 'cycle()')
    .option('--seed <n>', 'seed for every random choice (printed with each replay command)')
    .option('--fork-url <url>', 'fork this RPC URL instead of the embedded chain (not in this version: explore knows only the reference protocol)')
    .option('--fork-block <n>', 'pin the fork to this block (with --fork-url)')
    .option('--state <file>', 'fork a state dump written by anvil --dump-state (not in this version)')
    .option('--vault-build <name>', 'embedded chain only: deploy a test build of the vault (e.g. ReferenceVault.no-close-guard)')
    .option('--out <dir>', 'where the scenario file of every cell that does not hold is written', 'reports/explore')
    .option('--json', 'print the dependency list and the matrix as JSON on stdout')
    .action(async (flags: Flags, command: Command) => {
      const seed = parseSeed(flags.seed)
      const entry = await checkEntry(flags.entry)
      if (flags.vaultBuild !== undefined) await checkVaultBuild(flags.vaultBuild)
      const source = sourceFrom(flags)
      if (source.kind !== 'embedded')
        throw new InputError(`\`${source.kind === 'url' ? '--fork-url' : '--state'}\` is not supported by \`explore\` yet: its cells are judged with the reference protocol's checks, which fit only the embedded chain.`, {
          hint: 'Run `forkchaos explore` on the embedded chain (optionally `--vault-build <name>`).',
        })
      const { explore } = await import('../../explore/run.js')
      const { formatDependencies, formatGuards, formatMatrix } = await import('../../explore/format.js')
      const say = (s: string) => {
        if (!flags.json) process.stdout.write(`${s}\n`)
      }
      const replayFlags = flags.vaultBuild ? ` --vault-build ${flags.vaultBuild}` : ''
      say(`forkchaos explore: seed ${seed} · ${entry} on the embedded chain${flags.vaultBuild ? ` (${flags.vaultBuild})` : ''}`)
      const report = await explore({
        source,
        entry,
        seed,
        out: flags.out,
        replayFlags,
        onTrace: (trace) => say(formatDependencies(trace)),
        onGuards: (guards) => say(formatGuards(guards)),
      })
      if (flags.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`)
      else say(formatMatrix(report))
      const infra = report.cells.some((c) => c.verdict === 'error')
      const bad = report.cells.some((c) => c.verdict !== 'held' && c.verdict !== 'skipped')
      setExit(command, infra ? ExitCode.infrastructure : bad ? ExitCode.failed : ExitCode.ok)
    })
}

/** `--entry`: a no-argument function the reference vault has (exit 2 naming the ones it has). */
async function checkEntry(value: string): Promise<string> {
  if (value.length > maxEntryChars) throw new InputError(`\`--entry\` must be at most ${maxEntryChars} characters. Got ${value.length}.`)
  const { artifact } = await import('../../contracts.js')
  const entries = artifact('ReferenceVault')
    .abi.filter((i) => i.type === 'function' && i.inputs.length === 0 && i.stateMutability !== 'view' && i.stateMutability !== 'pure')
    .map((i) => `${(i as { name: string }).name}()`)
  const given = value.replace(/\s+/g, '')
  if (!entries.includes(given))
    throw new InputError(`\`--entry\` must be a state-changing function of the reference vault without arguments: ${entries.join(', ')}. Got \`${value}\`.`)
  return given
}

/** `--vault-build`: one of the compiled test builds of the reference vault (exit 2 otherwise, before anything boots). */
export async function checkVaultBuild(name: string): Promise<void> {
  const { artifact } = await import('../../contracts.js')
  let known = name.startsWith('ReferenceVault.')
  if (known)
    try {
      artifact(name)
    } catch {
      known = false
    }
  if (!known)
    throw new InputError(`\`--vault-build\` must name a test build of the reference vault (\`ReferenceVault.<variant>\`, the variants of scripts/build-contracts.mjs, e.g. ReferenceVault.no-close-guard). Got \`${name}\`.`)
}
