import type { Command } from 'commander'
import { InputError } from '../../errors.js'
import { writeReports, summaryLine } from '../../report/write.js'
import { onTeardown } from '../../lifecycle.js'
import { createProgress } from '../../ui/progress.js'
import { parseUiPort, startUi, type UiServer } from '../../ui/server.js'
import type { ScenarioReport } from '../../report/types.js'
import { regressions, runSuite } from '../../scenario/suite.js'
import { redactUrl } from '../../util/redact.js'
import { parseDurationMs } from '../../util/duration.js'
import { ExitCode, setExit } from '../exit.js'
import { devnetBuilds, parseEngine, parseSeed, type SourceFlags, sourceFrom } from '../options.js'

type Flags = SourceFlags & { target?: string; engine?: string; el?: string; topology?: string; devnetBuild?: string; seed?: string; reportDir: string; json?: boolean; failOn: string; compare?: string; ui?: boolean; uiPort?: string; uiHost?: string; uiControl?: boolean; progress: boolean }

export function runCommand(program: Command) {
  program
    .command('run')
    .description('Run scenarios (default: the whole scenarios/ suite on the embedded reference chain) and write reports.')
    .argument('[paths...]', 'scenario files or directories (default: scenarios/defi, scenarios/rpc, scenarios/devnet; the soak in scenarios/soak runs only when named)', ['scenarios/defi', 'scenarios/rpc', 'scenarios/devnet'])
    .option('--seed <n>', 'seed for every random choice (printed with the replay command)')
    .option('--report-dir <dir>', 'where report.json, junit.xml and summary.md go', 'reports')
    .option('--fork-url <url>', 'fork this RPC URL instead of the embedded chain')
    .option('--fork-block <n>', 'pin the fork to this block')
    .option('--state <file>', 'fork a state dump written by anvil --dump-state')
    .option('--fail-on <verdict>', '"failed" (default) or "degraded": the verdict that makes the exit code 1', 'failed')
    .option('--compare <report.json>', 'also exit 1 when a verdict is worse than in this earlier report')
    .option('--vault-build <name>', 'embedded chain only: deploy a test build of the vault (e.g. ReferenceVault.no-oracle-guard)')
    .option('--cell <key=value,…>', 'run only the sweep cells with these values (as in a swept scenario\'s name, e.g. bps=300,direction=up); scenarios without a sweep do not run')
    .option('--devnet-build <name>', `devnet only: a test build of the validators (${Object.keys(devnetBuilds).join(', ')})`)
    .option('--engine <engine>', 'fork scenarios only: the node the fork runs on, anvil or hardhat (a Hardhat node, EDR, from npm `hardhat`; over the files\' `target.engine`; what it cannot do, e.g. reorgs, is refused before anything boots)')
    .option('--el <client>', 'devnet scenarios only: every validator\'s execution client, anvil or ethereumjs (over the files\' `target.el`; the slot is at least the client\'s default, 1s / 2s)')
    .option('--slot <duration>', 'devnet scenarios only: every devnet\'s slot (200ms–60s), over the files\' `target.slot`; a longer slot than a file\'s scales its windows and check time bounds with it')
    .option('--topology <devnet.yaml>', 'devnet scenarios only: start every devnet\'s validators from this topology file (consensus and execution commands with placeholders; over the files\' `target.topology`)')
    .option('--json', 'print the report as JSON on stdout instead of progress lines')
    .option('--no-progress', 'no progress lines (on a TTY a line redrawn per phase; elsewhere one line every 5 s at most); --json has none')
    .option('--ui', 'serve the live view (report.html updated by server-sent events) while the run goes; its URL is printed')
    .option('--ui-port <n>', 'the live view\'s port (0: any free port, printed)', '0')
    .option('--ui-host <host>', 'the live view\'s address (default 127.0.0.1: this machine only)')
    .option('--ui-control', 'allow control actions in the live view (a stop button: reverts every fault, as Ctrl-C)')
    .option('--target <endpoints.yaml>', 'devnet scenarios only: judge the checks on nodes forkchaos did not start, listed in this endpoints file (eth_* JSON-RPC only; net.* faults are the cluster\'s to apply, e.g. the exported Chaos Mesh workflow; other faults are refused)')
    .action(async (paths: string[], flags: Flags, command: Command) => {
      if (!['failed', 'degraded'].includes(flags.failOn)) throw new InputError(`\`--fail-on\` must be "failed" or "degraded". Got \`${flags.failOn}\`.`)
      const seed = parseSeed(flags.seed)
      const devnetBuild = flags.devnetBuild ? devnetBuilds[flags.devnetBuild] : undefined
      if (flags.devnetBuild && !devnetBuild) throw new InputError(`\`--devnet-build\` must be one of ${Object.keys(devnetBuilds).join(', ')}. Got \`${flags.devnetBuild}\`.`)
      const engine = parseEngine(flags.engine)
      if (flags.el !== undefined && flags.el !== 'anvil' && flags.el !== 'ethereumjs') throw new InputError(`\`--el\` must be one of anvil, ethereumjs. Got \`${flags.el}\`.`)
      // On endpoints forkchaos starts nothing: a flag that says what to start is a contradiction, refused naming both.
      if (flags.target !== undefined)
        for (const [flag, given] of [['--el', flags.el], ['--fork-url', flags.forkUrl], ['--topology', flags.topology]] as const)
          if (given !== undefined)
            throw new InputError(`\`--target ${flags.target}\` and \`${flag}\` cannot be used together: \`--target\` judges nodes forkchaos did not start (their clients, chain and size are the cluster's), \`${flag}\` says what forkchaos would start.`, { hint: `Drop \`${flag}\`, or drop \`--target\` to run on a devnet forkchaos starts.` })
      if (flags.el !== undefined && flags.topology !== undefined)
        throw new InputError(`\`--el\` and \`--topology\` cannot be used together: \`--el\` picks a shipped topology (devnet/topologies/embedded.yaml or ethereumjs.yaml), \`--topology\` names one; each validator's execution client is the topology's \`execution.client\`.`)
      const slotMs = (flags as { slot?: string }).slot === undefined ? undefined : parseDurationMs((flags as { slot?: string }).slot, '--slot', { minMs: 200, maxMs: 60_000 })
      if (slotMs !== undefined && flags.target !== undefined) throw new InputError(`\`--target ${flags.target}\` and \`--slot\` cannot be used together: the cluster's nodes keep their own slot.`)
      const source = sourceFrom(flags)
      const replay = [
        'npx forkchaos run',
        ...paths,
        `--seed ${seed}`,
        ...(flags.forkUrl ? [`--fork-url '${redactUrl(flags.forkUrl)}'`] : []),
        ...(flags.forkBlock ? [`--fork-block ${flags.forkBlock}`] : []),
        ...(flags.state ? [`--state ${flags.state}`] : []),
        ...(flags.vaultBuild ? [`--vault-build ${flags.vaultBuild}`] : []),
        ...((flags as { cell?: string }).cell ? [`--cell ${(flags as { cell?: string }).cell}`] : []),
        ...(flags.devnetBuild ? [`--devnet-build ${flags.devnetBuild}`] : []),
        ...(flags.target ? [`--target ${flags.target}`] : []),
        ...(flags.engine ? [`--engine ${flags.engine}`] : []),
        ...(flags.el ? [`--el ${flags.el}`] : []),
        ...((flags as { slot?: string }).slot ? [`--slot ${(flags as { slot?: string }).slot}`] : []),
        ...(flags.topology ? [`--topology ${flags.topology}`] : []),
      ].join(' ')
      const tty = process.stdout.isTTY && !flags.json
      const paint = (code: number, s: string) => (tty ? `\x1b[${code}m${s}\x1b[0m` : s)
      const colour = { held: 32, degraded: 33, failed: 31, aborted: 35, error: 31, skipped: 36 } as const
      const progress = flags.json || !flags.progress ? undefined : createProgress({ tty: Boolean(process.stdout.isTTY), write: (s) => process.stdout.write(s) })
      const say = (line: string) => {
        progress?.clear()
        if (!flags.json) process.stdout.write(`${line}\n`)
      }
      if ((flags.uiHost !== undefined || flags.uiControl) && !flags.ui) throw new InputError('`--ui-host` and `--ui-control` need `--ui`.')
      const uiPort = parseUiPort(flags.uiPort)
      say(`forkchaos: seed ${seed} · ${paths.join(' ')}`)
      let ui: UiServer | undefined
      if (flags.ui) {
        ui = await startUi({ host: flags.uiHost ?? '127.0.0.1', port: uiPort, control: Boolean(flags.uiControl), seed, replay, onStop: () => process.kill(process.pid, 'SIGINT') })
        const server = ui
        onTeardown('the live view', () => server.close())
        const text = `  live view: ${ui.url}${flags.uiControl ? ' (control actions on)' : ''}`
        if (flags.json) process.stderr.write(`${text}\n`)
        else say(text)
      }
      const report = await runSuite({
        paths,
        seed,
        source,
        replay,
        ...(devnetBuild ? { devnetOverrides: devnetBuild } : {}),
        ...((flags as { cell?: string }).cell ? { cell: (flags as { cell?: string }).cell } : {}),
        ...(flags.target ? { endpoints: flags.target } : {}),
        ...(engine ? { engine } : {}),
        ...(flags.el === 'anvil' || flags.el === 'ethereumjs' ? { el: flags.el } : {}),
        ...(slotMs !== undefined ? { slotMs } : {}),
        ...(flags.topology ? { topology: flags.topology } : {}),
        onEvent: (e) => {
          if (e.type === 'booted') say(`  fork ready at ${e.url} in ${e.ms} ms`)
          if (e.type === 'scenario-done') say(line(e.report, paint, colour))
          progress?.event(e)
          ui?.event(e)
        },
      })
        .finally(() => progress?.stop())
      ui?.end(report.durationMs)
      const files = writeReports(report, flags.reportDir)
      const worse = flags.compare ? regressions(report, flags.compare) : []
      if (flags.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`)
      else {
        say(`${summaryLine(report.scenarios)} in ${(report.durationMs / 1000).toFixed(1)} s · reports: ${files.join(', ')}`)
        for (const w of worse) say(`  worse than the previous run: ${w.name} ${w.was} → ${w.now}`)
        say(`replay: ${replay}`)
      }
      // Closed once the page has the run's end; on any other way out, by the teardown (main's error handler, Ctrl-C).
      await ui?.close()
      // `skipped` (a prerequisite missing on this machine) makes no exit code of its own.
      const bad = report.scenarios.some((s) => s.verdict === 'failed' || s.verdict === 'error' || s.verdict === 'aborted' || (flags.failOn === 'degraded' && s.verdict === 'degraded'))
      const infra = report.scenarios.some((s) => s.verdict === 'error')
      setExit(command, infra ? ExitCode.infrastructure : bad || worse.length > 0 ? ExitCode.failed : ExitCode.ok)
    })
}

function line(s: ScenarioReport, paint: (c: number, s: string) => string, colour: Record<string, number>) {
  const head = `  ${paint(colour[s.verdict] ?? 0, s.verdict.padEnd(8))} ${s.name} (${s.durationMs} ms)`
  return s.verdict === 'held' ? head : `${head}\n           ${s.reason}`
}
