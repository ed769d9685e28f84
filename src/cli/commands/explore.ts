import * as fs from 'node:fs'
import type { Command } from 'commander'
import { InputError } from '../../errors.js'
import { ExitCode, setExit } from '../exit.js'
import { parseSeed, type SourceFlags, sourceFrom } from '../options.js'

type Flags = SourceFlags & { entry?: string; protocol?: string; seed?: string; out: string; json?: boolean }

/** Limit on `--entry`: a signature of at most this many characters. */
const maxEntryChars = 256

export function exploreCommand(program: Command) {
  program
    .command('explore')
    .description('Trace one healthy call of the keeper entry point, list its external calls, and run every dependency fault on each and the guard rows (feed moves and ages, gas prices around each guard threshold found by perturbing them and each one the protocol declares; shortfalls) as scenarios (fault × check matrix; failing cells written as scenario files).')
    .option('--entry <signature>', 'the entry point traced and run, a function of the vault without arguments (default: cycle(); with --protocol, the protocol\'s `entry`)')
    .option('--seed <n>', 'seed for every random choice (printed with each replay command)')
    .option('--fork-url <url>', 'fork this RPC URL instead of the embedded chain (with --protocol)')
    .option('--fork-block <n>', 'pin the fork to this block (with --fork-url)')
    .option('--state <file>', 'fork a state dump written by anvil --dump-state (with --protocol)')
    .option('--protocol <file>', 'your system: a YAML file (or a scenario file) with a `protocol:` block and its `contracts:`, as `run` reads them; needed with --fork-url / --state')
    .option('--vault-build <name>', 'embedded chain only: deploy a test build of the vault (e.g. ReferenceVault.no-close-guard)')
    .option('--out <dir>', 'where the scenario file of every cell that does not hold is written', 'reports/explore')
    .option('--json', 'print the dependency list and the matrix as JSON on stdout')
    .action(async (flags: Flags, command: Command) => {
      const seed = parseSeed(flags.seed)
      const { source, user, replayFlags, where } = await forkSystem(flags, 'explore')
      const entry = user ? checkUserEntry(flags.entry, user.protocol.entry) : await checkEntry(flags.entry ?? 'cycle()')
      const { explore } = await import('../../explore/run.js')
      const { formatDependencies, formatGuards, formatMatrix, formatOmitted } = await import('../../explore/format.js')
      const say = (s: string) => {
        if (!flags.json && s) process.stdout.write(`${s}\n`)
      }
      say(`forkchaos explore: seed ${seed} · ${entry} on ${where}${user ? ` · protocol ${user.file}` : ''}`)
      const report = await explore({
        source,
        entry,
        seed,
        out: flags.out,
        replayFlags,
        ...(user ? { user, exploreFlags: ` --protocol ${user.file}` } : {}),
        onTrace: (trace) => say(formatDependencies(trace)),
        onOmitted: (omitted) => say(formatOmitted(omitted)),
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

/**
 * The fork and the system on it, from the target flags, before anything boots (exit 2 otherwise):
 * the embedded chain (optionally `--vault-build`), or `--fork-url` / `--state` with the user's
 * `--protocol` file (read by the scenario loader; its vault and lender names resolved in its own
 * address book). Also the flags every replay repeats and the words for where it runs.
 */
export async function forkSystem(flags: SourceFlags & { protocol?: string }, command: 'explore' | 'search') {
  const source = sourceFrom(flags)
  const flag = source.kind === 'url' ? '--fork-url' : '--state'
  if (flags.vaultBuild !== undefined && source.kind !== 'embedded')
    throw new InputError(`\`--vault-build\` and \`${flag}\` cannot be used together: \`--vault-build\` deploys a test build of forkchaos's own vault on the embedded chain; on \`${flag}\` the vault is the one at the address your \`--protocol\` file names.`, {
      hint: `Drop \`--vault-build\`, or drop \`${flag}\` to ${command} the embedded chain.`,
    })
  if (flags.vaultBuild !== undefined) await checkVaultBuild(flags.vaultBuild)
  if (source.kind !== 'embedded' && flags.protocol === undefined)
    throw new InputError(`\`${flag}\` needs \`--protocol <file>\`: on a fork ${command} judges your system by what a protocol file says it is (the reference protocol's checks fit only the embedded chain).`, {
      hint: `Write a YAML file with a \`protocol:\` block (vault, entry, sharePrice, riskMode, bountyCap, bountyEvent, lender, state, signals, guards) and its \`contracts:\` (README: "Your own protocol on a public-chain fork"), then \`forkchaos ${command} --fork-url URL --protocol FILE\`.`,
    })
  const user = flags.protocol !== undefined ? { ...(await import('../../scenario/loader.js')).loadProtocolFile(flags.protocol, '--protocol'), file: flags.protocol } : undefined
  // The names the protocol gives resolve in its own address book, and a state dump is there, before anything prints or boots.
  if (user) {
    const { resolveUserName } = await import('../../explore/run.js')
    resolveUserName(user, user.protocol.vault, 'protocol.vault')
    if (user.protocol.lender) for (const f of ['address', 'token'] as const) resolveUserName(user, user.protocol.lender[f], `protocol.lender.${f}`)
  }
  if (source.kind === 'state' && !fs.existsSync(source.path)) throw new InputError(`\`--state\` names ${source.path}, which does not exist: it takes a state dump written by \`anvil --dump-state\`.`)
  const { redactUrl } = await import('../../util/redact.js')
  // The target flags every replay command repeats: the written files carry the protocol and its contracts themselves.
  const replayFlags =
    source.kind === 'url'
      ? ` --fork-url '${redactUrl(source.url)}'${flags.forkBlock !== undefined ? ` --fork-block ${flags.forkBlock}` : ''}`
      : source.kind === 'state'
        ? ` --state ${source.path}`
        : flags.vaultBuild
          ? ` --vault-build ${flags.vaultBuild}`
          : ''
  const where =
    source.kind === 'url'
      ? `a fork of ${redactUrl(source.url)}${flags.forkBlock !== undefined ? ` at block ${flags.forkBlock}` : ' (latest block)'}`
      : source.kind === 'state'
        ? `a fork of the state dump ${source.path}`
        : `the embedded chain${flags.vaultBuild ? ` (${flags.vaultBuild})` : ''}`
  return { source, user, replayFlags, where }
}

/** `--entry` on a user's protocol: a function signature without arguments (default: the protocol's own `entry`). */
function checkUserEntry(value: string | undefined, own: string): string {
  if (value === undefined) return own.replace(/\s+/g, '')
  if (value.length > maxEntryChars) throw new InputError(`\`--entry\` must be at most ${maxEntryChars} characters. Got ${value.length}.`)
  const given = value.replace(/\s+/g, '')
  if (!/^[A-Za-z_$][\w$]*\(\)$/.test(given)) throw new InputError(`\`--entry\` must be a function of your vault without arguments, like \`${own}\` (the protocol's \`entry\`). Got \`${value}\`.`)
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
