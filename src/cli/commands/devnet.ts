import * as fs from 'node:fs'
import * as path from 'node:path'
import type { Command } from 'commander'
import { packageRoot } from '../../contracts.js'
import { InputError } from '../../errors.js'
import { onTeardown } from '../../lifecycle.js'
import { create as createProcess } from '../../process/Instance.js'
import { checkDevnetSize, defaultDevnetSize, devnetSizes, faultToleranceOf, loadDevnetTopology, type NodeStatus, startDevnet } from '../../targets/devnet.js'
import { nodeStatus } from '../../targets/devnet/status.js'
import { isAlive, signalGroup, stateDir } from '../../targets/processes.js'
import { createRpc } from '../../targets/rpc.js'
import { parseDurationMs } from '../../util/duration.js'
import { devnetBuilds } from '../devnet-builds.js'
import { EL_NAMES, type ElName, elSpecs, isElName } from '../../el/index.js'

type State = { pid: number; slotMs: number; el?: ElName; nodes: { id: number; rpc: string; pid: number; elPid?: number }[]; startedAt: string }
const stateFile = () => path.join(stateDir(), 'devnet.json')

export function devnetCommand(program: Command) {
  const devnet = program.command('devnet').description(`A BFT devnet of 3f+1 validators (${devnetSizes.join(', ')}) on this machine (consensus nodes + Anvil execution), no Docker.`)
  devnet
    .command('up')
    .description('Boot the devnet; prints the validators\' RPC URLs. Foreground until Ctrl-C, or --detach.')
    .option('--validators <n>', `validators, 3f+1: ${devnetSizes.map((n) => `${n} (f = ${faultToleranceOf(n)})`).join(', ')} (default ${defaultDevnetSize}, or the topology's count)`)
    .option('--slot <duration>', `slot time, e.g. 1s or 500ms (default: ${EL_NAMES.filter((e) => elSpecs[e].startable).map((e) => `${elSpecs[e].defaultSlotMs / 1_000}s with ${e}`).join(', ')})`)
    .option('--el <client>', `every validator's execution client: ${EL_NAMES.filter((e) => elSpecs[e].startable).join(' or ')} (reth: devnet/docker-compose.yml); default anvil`)
    .option('--topology <devnet.yaml>', 'start the validators from this topology file: each a consensus and an execution command with placeholders (default: devnet/topologies/embedded.yaml, or ethereumjs.yaml with --el ethereumjs)')
    .option('--seed <n>', 'seed of the link proxies and of every random choice', '1')
    .option('--devnet-build <name>', `test build of the validators: ${Object.keys(devnetBuilds).join(', ')}`)
    .option('--detach', 'run in the background; `forkchaos devnet down` stops it')
    .action(async (flags: { validators?: string; slot?: string; el?: string; topology?: string; seed: string; detach?: boolean; devnetBuild?: string }) => {
      if (fs.existsSync(stateFile()) && isAlive((JSON.parse(fs.readFileSync(stateFile(), 'utf8')) as State).pid))
        throw new InputError('A devnet is already up.', { hint: '`forkchaos devnet status` shows it; `forkchaos devnet down` stops it.' })
      // Checked before anything starts (a detaching parent too): exit 2 naming the flag.
      const validators = flags.validators === undefined ? undefined : checkDevnetSize(/^\d+$/.test(flags.validators) ? Number(flags.validators) : flags.validators, '--validators')
      if (flags.el !== undefined && flags.topology !== undefined)
        throw new InputError('`--el` and `--topology` cannot be used together: `--el` picks a shipped topology (devnet/topologies/embedded.yaml or ethereumjs.yaml), `--topology` names one; each validator\'s execution client is the topology\'s `execution.client`.')
      // A topology is checked whole before anything starts: its size, commands and placeholders (exit 2 naming file and field).
      const plan = flags.topology === undefined ? undefined : loadDevnetTopology(flags.topology, validators)
      const el = flags.el ?? 'anvil'
      if (!isElName(el) || !elSpecs[el].startable)
        throw new InputError(`\`--el\` must be one of ${EL_NAMES.filter((e) => elSpecs[e].startable).join(', ')}. Got \`${el}\`.`, {
          ...(isElName(el) ? { hint: `${el} is a command template for users with the binary: run devnet/docker-compose.yml.` } : {}),
        })
      if (flags.detach) {
        const args = process.argv.slice(2).filter((a) => a !== '--detach')
        // The supervisor is the process owner's like every spawn (own group, pid file, start
        // timeout); once ready it is released: its pid file then names itself as owner, so
        // `forkchaos cleanup` leaves it while it runs.
        const bin = path.join(packageRoot, 'bin', 'forkchaos.js')
        const supervisor = createProcess({
          kind: 'devnet',
          label: 'devnet-up',
          command: process.execPath,
          args: [bin, ...args],
          match: bin,
          stderr: 'inherit',
          startTimeoutMs: 120_000,
          ready: (output) => (output.includes('devnet ready.') ? true : undefined),
        })
        try {
          await supervisor.start()
        } catch (error) {
          const code = supervisor.exit()?.code
          if (code === 2) throw new InputError(`The devnet exited while starting (code ${code}).`)
          throw error
        }
        process.stdout.write(supervisor.output())
        supervisor.release()
        return
      }
      const engine = plan ? Array.from({ length: plan.n }, (_, id) => plan.client(id)).some((c) => c !== 'anvil') : el !== 'anvil'
      const slotMs = flags.slot === undefined ? elSpecs[engine ? 'ethereumjs' : 'anvil'].defaultSlotMs : parseDurationMs(flags.slot, '--slot')
      const build = flags.devnetBuild ? devnetBuilds[flags.devnetBuild] : undefined
      if (flags.devnetBuild && !build) throw new InputError(`\`--devnet-build\` must be one of ${Object.keys(devnetBuilds).join(', ')}. Got \`${flags.devnetBuild}\`.`)
      const t0 = performance.now()
      const net = await startDevnet({ ...(validators !== undefined ? { validators } : {}), slotMs, seed: Number(flags.seed), ...(build ? { overrides: build } : {}), ...(el === 'anvil' ? {} : { el }), ...(plan ? { topology: plan.topology } : {}) })
      onTeardown('devnet state file', () => fs.rmSync(stateFile(), { force: true }))
      // Each validator is asked on its own, and the first at height 1 ends the wait: one slow to
      // answer (still busy with its start-up) does not hold back the others' answers.
      const deadline = t0 + (engine ? 60_000 : 20_000)
      let first: number | undefined
      await Promise.all(
        net.nodes.map(async (node) => {
          while (first === undefined && performance.now() < deadline) {
            const status = await nodeStatus(node).catch(() => undefined)
            if (status && status.height >= 1) first ??= performance.now() - t0
            else await new Promise((r) => setTimeout(r, 25))
          }
        }),
      )
      const state: State = {
        pid: process.pid,
        slotMs,
        ...(engine ? { el: el === 'anvil' ? 'ethereumjs' : el } : {}),
        nodes: net.nodes.map((n) => ({ id: n.id, rpc: n.rpcUrl, pid: n.pid, elPid: n.anvil.pid })),
        startedAt: new Date().toISOString(),
      }
      fs.mkdirSync(stateDir(), { recursive: true })
      fs.writeFileSync(stateFile(), JSON.stringify(state, null, 2))
      // One write, ending with the marker a detaching parent waits for.
      process.stdout.write(
        [
          `devnet up: ${net.nodes.length} validators (f = ${faultToleranceOf(net.nodes.length)}), slot ${slotMs} ms, first commit ${first === undefined ? 'not yet' : `${Math.round(first)} ms`} after start · data ${net.dir}`,
          ...net.nodes.map((n) => `  validator ${n.id}  ${n.rpcUrl}  (${n.address})${n.el === 'anvil' ? '' : `  ${n.el} ${n.anvil.url}`}`),
          'devnet ready.',
          '',
        ].join('\n'),
      )
      await new Promise<never>(() => {})
    })
  devnet
    .command('status')
    .description('Height, head, peers and mempool of every validator.')
    .option('--json', 'as JSON')
    .action(async (flags: { json?: boolean }) => {
      const state = readState()
      const rows = await Promise.all(
        state.nodes.map(async (n) => {
          try {
            return { rpc: n.rpc, ...(await createRpc(n.rpc, { owned: true, timeoutMs: 2_000 }).request<NodeStatus>('fc_status')) }
          } catch (error) {
            return { id: n.id, rpc: n.rpc, down: true, error: (error as Error).message.split('\n')[0] }
          }
        }),
      )
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`)
        return
      }
      for (const r of rows)
        process.stdout.write(
          'down' in r
            ? `  validator ${r.id}  ${r.rpc}  DOWN (${r.error})\n`
            : `  validator ${r.id}  ${r.rpc}  height ${r.height}  head ${String(r.headHash).slice(0, 12)}…  peers [${r.peers.join(',')}]  mempool ${r.mempool}\n`,
        )
    })
  devnet
    .command('down')
    .description('Stop the devnet started by `devnet up` (every process it started).')
    .action(async () => {
      const state = readState()
      if (isAlive(state.pid)) {
        process.kill(state.pid, 'SIGTERM')
        // An Engine API client may take ~10 s to exit after SIGTERM (its grace is 15 s).
        const deadline = Date.now() + (state.el && state.el !== 'anvil' ? 25_000 : 15_000)
        while (isAlive(state.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
      }
      // If the supervisor died hard, its children are still ours by pid file: stop them by group.
      for (const n of state.nodes) for (const pid of [n.pid, n.elPid]) if (pid !== undefined && isAlive(pid)) signalGroup(pid, 'SIGKILL')
      fs.rmSync(stateFile(), { force: true })
      process.stdout.write('devnet down\n')
    })
}

function readState(): State {
  try {
    return JSON.parse(fs.readFileSync(stateFile(), 'utf8')) as State
  } catch {
    throw new InputError('No devnet is up.', { hint: 'Start one with `forkchaos devnet up`.' })
  }
}
