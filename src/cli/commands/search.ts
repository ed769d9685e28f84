import type { Command } from 'commander'
import { InputError } from '../../errors.js'
import { parseDurationMs } from '../../util/duration.js'
import { ExitCode, setExit } from '../exit.js'
import { parseSeed, type SourceFlags, sourceFrom } from '../options.js'
import { checkVaultBuild } from './explore.js'

type Flags = SourceFlags & { seed?: string; episodes: string; time: string; steps: string; out: string; json?: boolean }

/** Limits of the budgets (the library's own, stated in the errors). */
const bounds = { episodes: 100_000, timeMs: 3_600_000, steps: 64 } as const

export function searchCommand(program: Command) {
  program
    .command('search')
    .description("Run seeded random schedules of keeper cycles, deposits, withdrawals, warps and explore's dependency, gas and oracle faults, checking the safety invariants after every transaction; shrink the first failing schedule to a minimal scenario file.")
    .option('--seed <n>', 'seed of every schedule (printed, with the replay command)')
    .option('--episodes <n>', `at most this many schedules (1–${bounds.episodes.toLocaleString('en-US')})`, '1000')
    .option('--time <duration>', 'stop drawing schedules after this long (e.g. 30s, 5m; at most 1h)', '5m')
    .option('--steps <n>', `items per schedule: steps and fault applies/reverts (1–${bounds.steps})`, '8')
    .option('--fork-url <url>', 'not in this version: search knows only the reference protocol')
    .option('--fork-block <n>', 'pin the fork to this block (with --fork-url)')
    .option('--state <file>', 'not in this version')
    .option('--vault-build <name>', 'embedded chain only: deploy a test build of the vault (e.g. ReferenceVault.spike-cap-threshold)')
    .option('--out <dir>', 'where the shrunk scenario file of a failing schedule is written', 'reports/search')
    .option('--json', 'print the search report as JSON on stdout')
    .action(async (flags: Flags, command: Command) => {
      const seed = parseSeed(flags.seed)
      const episodes = count(flags.episodes, '--episodes', bounds.episodes)
      const steps = count(flags.steps, '--steps', bounds.steps)
      const timeMs = parseDurationMs(flags.time, '--time', { minMs: 1_000, maxMs: bounds.timeMs })
      if (flags.vaultBuild !== undefined) await checkVaultBuild(flags.vaultBuild)
      const source = sourceFrom(flags)
      if (source.kind !== 'embedded')
        throw new InputError(`\`${source.kind === 'url' ? '--fork-url' : '--state'}\` is not supported by \`search\` yet: its schedules are judged with the reference protocol's checks, which fit only the embedded chain.`, {
          hint: 'Run `forkchaos search` on the embedded chain (optionally `--vault-build <name>`).',
        })
      const { search } = await import('../../search/run.js')
      const say = (s: string) => {
        if (!flags.json) process.stdout.write(`${s}\n`)
      }
      const replayFlags = flags.vaultBuild ? ` --vault-build ${flags.vaultBuild}` : ''
      say(`forkchaos search: seed ${seed} · up to ${episodes} schedules of ${steps} items or ${flags.time} · embedded chain${flags.vaultBuild ? ` (${flags.vaultBuild})` : ''}`)
      const report = await search({ source, seed, out: flags.out, episodes, timeMs, steps, replayFlags })
      if (flags.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`)
      else {
        const f = report.failure
        if (f)
          say(
            [
              `  failed   episode ${f.episode}: ${f.reason}`,
              `  shrunk   ${f.original} items → ${f.shrunk} in ${f.shrinkRuns} re-runs (${(f.shrinkMs / 1000).toFixed(1)} s)`,
              `  written: ${f.file}`,
              `  replay:  ${f.replay}`,
            ].join('\n'),
          )
        if (report.error) say(`  error    ${report.error}`)
        say(`${report.episodes} episodes: ${report.verdict} · ${(report.durationMs / 1000).toFixed(1)} s · ${report.episodesPerMinute} episodes/min · seed ${seed}`)
        say(`replay: npx forkchaos search --seed ${seed} --episodes ${episodes} --steps ${steps}${replayFlags}`)
      }
      setExit(command, report.verdict === 'error' ? ExitCode.infrastructure : report.verdict === 'held' ? ExitCode.ok : ExitCode.failed)
    })
}

/** A whole number in 1…max, or exit 2 naming the flag and the bound. */
function count(value: string, flag: string, max: number): number {
  const n = /^\d{1,9}$/.test(value) ? Number(value) : Number.NaN
  if (!(n >= 1 && n <= max)) throw new InputError(`\`${flag}\` must be a whole number from 1 to ${max.toLocaleString('en-US')}. Got \`${value}\`.`)
  return n
}
