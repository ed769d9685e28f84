import * as os from 'node:os'
import type { Command } from 'commander'
import { InputError } from '../../errors.js'
import type { SearchReport } from '../../search/run.js'
import { defaultDevnetSize, devnetSizes, faultToleranceOf } from '../../targets/devnet-size.js'
import { parseDurationMs } from '../../util/duration.js'
import { ExitCode, setExit } from '../exit.js'
import { devnetBuilds, parseSeed, type SourceFlags, sourceFrom } from '../options.js'
import { forkSystem } from './explore.js'

type Flags = SourceFlags & {
  target: string
  devnetBuild?: string
  budget?: string
  validators?: string
  shrinkRuns?: string
  seed?: string
  episodes: string
  time: string
  steps?: string
  out: string
  json?: boolean
  protocol?: string
  workers?: string
}

/** Limits of the budgets (the library's own, stated in the errors). */
const bounds = { episodes: 100_000, timeMs: 3_600_000, steps: 64, devnetSteps: 32, shrinkRuns: 200, workers: 8 } as const

/** Forks a fork search runs at once by default: two, or one on a single core. */
const defaultWorkers = () => Math.min(2, os.availableParallelism())

export function searchCommand(program: Command) {
  program
    .command('search')
    .description(
      "Run seeded random schedules and shrink the first failing one to a minimal scenario file. On the fork (default): keeper cycles, deposits, withdrawals, warps and explore's dependency, gas and oracle faults, the safety invariants checked after every transaction. On the devnet (`--target devnet`): timed node, network and byzantine faults within the fault budget f, safety checked all the time, liveness and catch-up after the heal.",
    )
    .option('--target <kind>', 'fork (the embedded chain) or devnet (a fresh devnet of `--validators` per episode)', 'fork')
    .option('--seed <n>', 'seed of every schedule (printed, with the replay command)')
    .option('--episodes <n>', `at most this many schedules (1–${bounds.episodes.toLocaleString('en-US')})`, '1000')
    .option('--time <duration>', 'stop drawing schedules after this long (e.g. 30s, 5m; at most 1h)', '5m')
    .option('--steps <n>', `items per schedule: steps and fault applies/reverts (fork: 1–${bounds.steps}, default 8), or fault applies/reverts and waits (devnet: 1–${bounds.devnetSteps}, default 6)`)
    .option('--fork-url <url>', 'fork only: fork this RPC URL instead of the embedded chain (with --protocol)')
    .option('--fork-block <n>', 'pin the fork to this block (with --fork-url)')
    .option('--state <file>', 'fork only: fork a state dump written by anvil --dump-state (with --protocol)')
    .option('--protocol <file>', 'fork only: your system, a YAML file (or a scenario file) with a `protocol:` block and its `contracts:`, as `run` reads them; needed with --fork-url / --state')
    .option('--vault-build <name>', 'fork only, embedded chain: deploy a test build of the vault (e.g. ReferenceVault.spike-cap-threshold)')
    .option('--devnet-build <name>', `devnet only: a test build of the validators (${Object.keys(devnetBuilds).join(', ')})`)
    .option('--validators <n>', `devnet only: validators, n = 3f + 1 (${devnetSizes.join(', ')})`, String(defaultDevnetSize))
    .option('--budget <n>', 'devnet only: validators faulty at once, at most f (default f: 1 of 4, 2 of 7, 3 of 10)')
    .option('--shrink-runs <n>', `candidates a shrink may re-run (1–${bounds.shrinkRuns}; fork default ${bounds.shrinkRuns}; devnet default 24: a candidate is kept when two of its runs fail before two hold, each run boots a devnet)`)
    .option('--workers <n>', `fork only: forks running episodes at once (1–${bounds.workers}; default 2, 1 on a single core), each its own Anvil fork reset to its own snapshot; the same seed gives the same episodes, first failure and file whatever the count`)
    .option('--out <dir>', 'where the shrunk scenario file of a failing schedule is written', 'reports/search')
    .option('--json', 'print the search report as JSON on stdout')
    .action(async (flags: Flags, command: Command) => {
      if (flags.target !== 'fork' && flags.target !== 'devnet') throw new InputError(`\`--target\` must be fork or devnet. Got \`${flags.target}\`.`)
      const devnet = flags.target === 'devnet'
      // A flag of the other target is refused naming both, before anything boots.
      const others = devnet
        ? ([['--fork-url', flags.forkUrl], ['--fork-block', flags.forkBlock], ['--state', flags.state], ['--vault-build', flags.vaultBuild], ['--protocol', flags.protocol], ['--workers', flags.workers]] as const)
        : ([['--devnet-build', flags.devnetBuild], ['--budget', flags.budget], ['--validators', flags.validators === String(defaultDevnetSize) ? undefined : flags.validators]] as const)
      for (const [flag, given] of others)
        if (given !== undefined)
          throw new InputError(`\`${flag}\` is ${devnet ? 'a fork' : 'a devnet'} option; this search's target is ${devnet ? 'the devnet (`--target devnet`)' : 'the fork (the default)'}.`, {
            hint: devnet ? `Drop \`${flag}\`, or drop \`--target devnet\` to search the fork.` : `Add \`--target devnet\` to search the devnet, or drop \`${flag}\`.`,
          })
      const seed = parseSeed(flags.seed)
      const episodes = count(flags.episodes, '--episodes', 1, bounds.episodes)
      const steps = count(flags.steps ?? (devnet ? '6' : '8'), '--steps', 1, devnet ? bounds.devnetSteps : bounds.steps)
      const timeMs = parseDurationMs(flags.time, '--time', { minMs: 1_000, maxMs: bounds.timeMs })
      const shrinkRuns = flags.shrinkRuns === undefined ? undefined : count(flags.shrinkRuns, '--shrink-runs', 1, bounds.shrinkRuns)
      const workers = flags.workers === undefined ? defaultWorkers() : count(flags.workers, '--workers', 1, bounds.workers)
      const say = (s: string) => {
        if (!flags.json) process.stdout.write(`${s}\n`)
      }
      let report: SearchReport
      let replayFlags: string
      let budgetText: string
      if (devnet) {
        const validators = Number(flags.validators)
        if (!(devnetSizes as readonly number[]).includes(validators) || !/^\d+$/.test(String(flags.validators)))
          throw new InputError(`\`--validators\` must be one of ${devnetSizes.join(', ')} (n = 3f + 1). Got \`${flags.validators}\`.`)
        const f = faultToleranceOf(validators)
        const budget = flags.budget === undefined ? f : count(flags.budget, '--budget', 0, Number.MAX_SAFE_INTEGER)
        if (budget > f)
          throw new InputError(`\`--budget\` must be at most f = ${f} for ${validators} validators (n = 3f + 1 tolerates f faulty). Got \`${flags.budget}\`.`, {
            hint: 'More faulty validators than f break safety or liveness by design: that is what the f+1 drills (burst-kill, partition-2-2) show, not something to search for.',
          })
        if (budget < 1) throw new InputError(`\`--budget\` must be from 1 to f = ${f}: with no faulty validator there is nothing to search. Got \`${flags.budget}\`.`)
        const build = flags.devnetBuild === undefined ? undefined : devnetBuilds[flags.devnetBuild]
        if (flags.devnetBuild !== undefined && !build) throw new InputError(`\`--devnet-build\` must be one of ${Object.keys(devnetBuilds).join(', ')}. Got \`${flags.devnetBuild}\`.`)
        replayFlags = flags.devnetBuild ? ` --devnet-build ${flags.devnetBuild}` : ''
        budgetText = ` --target devnet${validators !== defaultDevnetSize ? ` --validators ${validators}` : ''}${flags.budget !== undefined ? ` --budget ${budget}` : ''}`
        say(`forkchaos search: seed ${seed} · up to ${episodes} schedules of ${steps} items or ${flags.time} · devnet of ${validators}, at most ${budget} faulty at once (f = ${f})${flags.devnetBuild ? ` (${flags.devnetBuild})` : ''}`)
        const { searchDevnet } = await import('../../search/devnet.js')
        report = await searchDevnet({
          seed,
          out: flags.out,
          episodes,
          timeMs,
          steps,
          validators,
          budget,
          replayFlags,
          ...(build ? { overrides: build } : {}),
          ...(shrinkRuns !== undefined ? { shrinkRuns } : {}),
          onEpisode: (n, verdict, reason) => say(`  episode ${n}: ${verdict}${verdict === 'held' ? '' : ` — ${reason}`}`),
        })
      } else {
        const system = await forkSystem(flags, 'search')
        const { source, user } = system
        const { search } = await import('../../search/run.js')
        replayFlags = system.replayFlags
        // The search's own replay repeats `--protocol`; the written file carries the protocol itself, so `run` needs only the fork flags.
        budgetText = user ? ` --protocol ${user.file}` : ''
        say(`forkchaos search: seed ${seed} · up to ${episodes} schedules of ${steps} items or ${flags.time} · ${system.where.replace(/^the embedded chain/, 'embedded chain')}${user ? ` · protocol ${user.file}` : ''} · ${workers} fork${workers === 1 ? '' : 's'} at once`)
        report = await search({
          source,
          seed,
          out: flags.out,
          episodes,
          timeMs,
          steps,
          replayFlags,
          ...(shrinkRuns !== undefined ? { shrinkRuns } : {}),
          ...(user ? { user } : {}),
          workers,
          onOmitted: (omitted) => {
            if (omitted.length > 0) say([`  checks left out (${omitted.length}): nothing in the protocol for them to judge`, ...omitted.map((o) => `    ${o.check.padEnd(18)} ${o.why}`)].join('\n'))
          },
        })
      }
      if (flags.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`)
      else {
        const f = report.failure
        if (f)
          say(
            [
              `  failed   episode ${f.episode}: ${f.reason}`,
              `  shrunk   ${f.original} items → ${f.shrunk} in ${f.shrinkRuns} re-runs (${(f.shrinkMs / 1000).toFixed(1)} s)${f.confirmed === false ? '; its last run held (devnet timing): replay it to see' : f.confirmedCheck ? `; its last run broke \`${f.confirmedCheck}\`` : ''}`,
              `  written: ${f.file}`,
              `  replay:  ${f.replay}`,
            ].join('\n'),
          )
        if (report.error) say(`  error    ${report.error}`)
        say(`${report.episodes} episodes: ${report.verdict} · ${(report.durationMs / 1000).toFixed(1)} s · ${report.episodesPerMinute} episodes/min · seed ${seed}`)
        say(`replay: npx forkchaos search${budgetText} --seed ${seed} --episodes ${episodes} --steps ${steps}${report.replayFlags}`)
      }
      setExit(command, report.verdict === 'error' ? ExitCode.infrastructure : report.verdict === 'held' ? ExitCode.ok : ExitCode.failed)
    })
}

/** A whole number in min…max, or exit 2 naming the flag and the bound. */
function count(value: string, flag: string, min: number, max: number): number {
  const n = /^\d{1,9}$/.test(value) ? Number(value) : Number.NaN
  if (!(n >= min && n <= max)) throw new InputError(`\`${flag}\` must be a whole number from ${min} to ${max.toLocaleString('en-US')}. Got \`${value}\`.`)
  return n
}
