import * as fs from 'node:fs'
import * as path from 'node:path'
import type { Command } from 'commander'
import { InputError } from '../../errors.js'
import { exportChaosMesh } from '../../export/chaos-mesh.js'
import { loadScenario } from '../../scenario/loader.js'
import { defaultTopologyFile, loadTopology } from '../../topology/topology.js'
import { ExitCode, setExit } from '../exit.js'

/** `forkchaos export chaos-mesh <scenario> [--topology devnet.yaml] [-o FILE]`. */
export function exportCommand(program: Command) {
  const exp = program.command('export').description('Write a scenario in another tool\'s format.')
  exp
    .command('chaos-mesh')
    .description('A devnet scenario as a Chaos Mesh Workflow (baseline → inject → recover; net.* → NetworkChaos, node.kill/restart → PodChaos, node.clock-skew → TimeChaos, node.disk-* → IOChaos). Faults with no equivalent are named on stderr.')
    .argument('<scenario>', 'a devnet scenario file')
    .option('--topology <file>', 'the topology whose pod selectors to use', defaultTopologyFile)
    .option('-o, --output <file>', 'write the YAML here instead of stdout')
    .action((file: string, flags: { topology: string; output?: string }, command: Command) => {
      const scenario = loadScenario(file)
      const topology = loadTopology(flags.topology)
      const out = exportChaosMesh(scenario, topology, `forkchaos export chaos-mesh ${file} --topology ${flags.topology}`)
      for (const s of out.skipped) process.stderr.write(`forkchaos: not exported (no Chaos Mesh equivalent): ${s.type} (${file}: ${s.field}): ${s.reason}\n`)
      if (flags.output) {
        try {
          fs.mkdirSync(path.dirname(path.resolve(flags.output)), { recursive: true })
          fs.writeFileSync(flags.output, out.yaml)
        } catch (error) {
          throw new InputError(`Cannot write \`--output\` ${flags.output}: ${(error as Error).message}`)
        }
      } else process.stdout.write(out.yaml)
      setExit(command, ExitCode.ok)
    })
}
