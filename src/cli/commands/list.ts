import type { Command } from 'commander'
import { checkDocs } from '../../checks/registry.js'
import { faults } from '../../faults/registry.js'
import { findScenarioFiles, loadScenario } from '../../scenario/loader.js'

export function listCommand(program: Command) {
  program
    .command('list')
    .description('List scenarios, fault types and check kinds.')
    .argument('[paths...]', 'scenario files or directories', ['scenarios'])
    .option('--json', 'as JSON')
    .action((paths: string[], flags: { json?: boolean }) => {
      const scenarios = findScenarioFiles(paths).map(loadScenario).map((s) => ({ name: s.name, file: s.file, faults: s.inject.faults.map((f) => f.type), hypothesis: s.hypothesis.trim() }))
      const faultList = Object.values(faults).map((f) => ({ type: f.type, target: f.target, summary: f.summary, params: f.paramsText, paramsSchema: f.paramsSchema }))
      if (flags.json) {
        process.stdout.write(`${JSON.stringify({ scenarios, faults: faultList, checks: checkDocs }, null, 2)}\n`)
        return
      }
      process.stdout.write('Scenarios\n')
      for (const s of scenarios) process.stdout.write(`  ${s.name.padEnd(32)} ${s.file}  [${s.faults.join(', ') || 'no faults'}]\n`)
      process.stdout.write('\nFaults\n')
      // One block per fault, from its declaration: what it needs, what it does, its params.
      for (const f of faultList) {
        process.stdout.write(`  ${f.type.padEnd(26)} [${f.target}] ${f.summary}\n`)
        for (const line of f.params) process.stdout.write(`  ${''.padEnd(26)}   ${line}\n`)
      }
      process.stdout.write('\nChecks\n')
      for (const [k, v] of Object.entries(checkDocs)) process.stdout.write(`  ${k.padEnd(22)} ${v}\n`)
    })
}
