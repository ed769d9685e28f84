import * as fs from 'node:fs'
import * as path from 'node:path'
import type { ErrorObject } from 'ajv'
import { type CST, Composer, type Document, isAlias, isMap, isScalar, isSeq, LineCounter, type Node, Parser } from 'yaml'
import { InputError } from '../errors.js'
import { formatDurationMs, parseDurationMs } from '../util/duration.js'
import { acceptedFaultTargets, type FaultTarget } from '../Fault.js'
import { faults } from '../faults/registry.js'
import * as P from '../Params.js'
import { defaultDevnetSize } from '../targets/devnet-size.js'
import { checkKindOf, checkNames as checkKeys, checkProblem, checks } from '../checks/registry.js'
import { stepKinds, stepProblem } from '../steps/registry.js'
import { scheduleProblem } from '../steps/fault.js'
import { limits } from './schema.js'
import { protocolProblem, referenceProtocol } from './protocol.js'
import { functionSignatures, protocolAbiProblem, reachableAbi } from './protocol-abi.js'
import type { FaultSpec, Scenario, Step } from './types.js'
import { segmentsOf } from './values.js'
import { substitute, sweepCells } from './sweep.js'
import { type FoundryRef, loadFoundry, ProjectError, type ProjectContracts } from '../projects/foundry.js'
import { type HardhatRef, loadHardhat } from '../projects/hardhat.js'
import { scenarioValidator } from './validate-schema.js'
import { engineProblem } from './engine.js'
import type { Engine } from '../targets/engine.js'

/**
 * Parses and validates one scenario file. Every problem becomes an `InputError` (exit code 2)
 * that names the file, the line, the field and what was expected. Fault params are checked by
 * the faults' own parsers here too, so nothing is applied from a half-valid file.
 */
export function loadScenario(file: string): Scenario {
  return parseScenario(readScenarioFile(file), file)
}

/**
 * Every experiment of one scenario file: one, or one per cell of its `sweep` (each validated as
 * written out; an error names the cell). `loadScenario` validates every cell and gives the first.
 */
export function loadScenarios(file: string): Scenario[] {
  const bytes = readScenarioFile(file)
  const first = parseScenario(bytes, file, 0)
  const rest = Array.from({ length: (first.cell?.of ?? 1) - 1 }, (_, i) => parseScenario(bytes, file, i + 1))
  return [first, ...rest]
}

/**
 * Parses and validates the bytes of a scenario file named `file` (see `loadScenario`). Checks, in
 * order: size, UTF-8 text, YAML syntax, nesting depth, one document, a mapping at the top,
 * aliases (resolved, acyclic, expanded size), keys (plain, unique), tags, finite numbers; then
 * the schema (types and every bound) and the faults' own params.
 */
export function parseScenario(bytes: Uint8Array, file: string, cell?: number, protocolFile?: { flag: string }): Scenario {
  // Once the sweep's cell is known, every error names it.
  let inCell = ''
  const fail = (message: string, at?: { line?: number | undefined; field?: string }) =>
    new InputError(`${file}${at?.line ? `:${at.line}` : ''}: ${message}${inCell}`, { context: { File: file, Field: at?.field } })
  const { text, doc, lineOf } = readDocument(bytes, file, fail)
  // A sweep's cell: its placeholders replaced before the schema sees it (src/scenario/sweep.ts).
  let parsed = doc.toJS({ maxAliasCount: -1 }) as unknown
  if (protocolFile) parsed = asProtocolFile(parsed, file, protocolFile.flag, fail)
  const swept = sweepCells(parsed)
  if ('problem' in swept) throw fail(swept.problem.message, { line: lineAt(doc, swept.problem.segments, lineOf), field: swept.problem.field })
  // Without a cell named, every cell is validated and the first one returned.
  if (cell === undefined) for (let i = 1; i < swept.cells.length; i++) parseScenario(bytes, file, i)
  const theCell = swept.cells[cell ?? 0] ?? { label: '', values: {} }
  if (theCell.label) inCell = ` (sweep cell \`${theCell.label}\`)`
  const raw = substitute(parsed, theCell)
  const validate = scenarioValidator()
  if (!validate(raw)) {
    const error = pickError(validate.errors ?? [])
    const segments = error.instancePath.split('/').slice(1).map(unescape)
    // A number is shown as written (`1e308`, not `1e+308`).
    const written = (segs: string[]) => {
      const node = doc.getIn(segs.map((x) => (/^\d+$/.test(x) ? Number(x) : x)), true) as Node | undefined
      return isScalar(node) && typeof node.value === 'number' && node.range ? text.slice(node.range[0], node.range[1]).trim() : undefined
    }
    // An unknown field is shown at its own line, not at the line of the mapping holding it.
    const extra = error.keyword === 'additionalProperties' ? [String((error.params as { additionalProperty: string }).additionalProperty)] : []
    throw fail(describe(error, raw, written), { line: lineAt(doc, [...segments, ...extra], lineOf), field: fieldName(segments) || '(top level)' })
  }
  const scenario = raw as RawScenario
  // A Foundry or Hardhat project's deployed contracts, by their own names (src/projects/).
  const project = projectContracts(scenario, file, fail, (segs) => lineAt(doc, segs, lineOf))
  if (project) scenario.contracts = project.addresses
  /** A contract's ABI where the loader can reach it: the embedded contracts', or the project's artifacts. */
  const abiOf = (name: string) => reachableAbi(name, scenario.contracts ?? {}, project ? (n) => (project.abis[n] ? { abi: project.abis[n], source: project.source } : undefined) : undefined)
  const ms = (value: unknown, field: string, fallback: number, maxMs: number) => (value === undefined ? fallback : parseDurationMs(value, field, { maxMs }))
  // Each fault once: its target kind against the scenario's, then its params, parsed here and
  // carried on the spec (`parsed`) so that nothing parses them again.
  const kind = scenario.target?.kind ?? 'fork'
  const validators = kind === 'devnet' ? (scenario.target?.validators ?? defaultDevnetSize) : undefined
  const faultLists = { 'inject.faults': scenario.inject.faults, 'inject.random.faults': scenario.inject.random?.faults ?? [] }
  for (const [list, specs] of Object.entries(faultLists))
    specs.forEach((fault, i) => {
      const definition = faults[fault.type as keyof typeof faults]
      if (!acceptedFaultTargets[kind].includes(definition.target)) throw fail(wrongTarget(fault.type, definition.target, kind, `${list}[${i}].type`), { line: lineAt(doc, [...list.split('.'), String(i), 'type'], lineOf), field: `${list}[${i}].type` })
      if (definition.target === 'devnet' && fault.target !== undefined && !/^(?:validator-)?\d+$/.test(String(fault.target)))
        throw fail(`\`${list}[${i}].target\` must be a validator id from 0 to ${(validators ?? defaultDevnetSize) - 1} (or \`validator-<id>\`). Got \`${JSON.stringify(fault.target)}\`.`, {
          line: lineAt(doc, [...list.split('.'), String(i), 'target'], lineOf),
          field: `${list}[${i}].target`,
        })
      if (definition.target === 'proxy') {
        // A proxy fault names the JSON-RPC fault proxy it acts on; the scenario must put it there.
        const proxies = [...(scenario.target?.rpcProxy ? ['fork'] : []), ...(scenario.target?.upstreamProxy ? ['upstream'] : [])]
        const name = String(fault.target ?? 'fork')
        if (!proxies.includes(name))
          throw fail(
            `\`${list}[${i}].target\` names the JSON-RPC fault proxy \`${name}\`${fault.target === undefined ? ' (the default)' : ''}, which this scenario does not have (it has ${proxies.length ? proxies.map((p) => `\`${p}\``).join(', ') : 'none'}): \`target: { rpcProxy: true }\` adds \`fork\`, \`target: { upstreamProxy: true }\` adds \`upstream\`.`,
            { line: lineAt(doc, [...list.split('.'), String(i), ...(fault.target === undefined ? [] : ['target'])], lineOf), field: `${list}[${i}].target` },
          )
      }
      const where = `${list}[${i}].params`
      try {
        Object.defineProperty(fault, 'parsed', { value: definition.parse(fault.params ?? {}, where, { validators }), enumerable: false })
      } catch (error) {
        if (!(error instanceof P.ParamsError)) throw error
        // The fault names its own param (`groups[1][0]`); the file's reader needs the whole path and its line.
        const message = error.shortMessage.replace(/^`([^`]+)`/, `\`${where}.$1\``).replace(/^`([^`]+)\.params`/, '`$1`')
        throw fail(message, { line: lineAt(doc, [...list.split('.'), String(i), ...(fault.params ? ['params', ...error.path.map(String)] : [])], lineOf), field: P.name([where, ...error.path]) })
      }
      // Params that cannot work on the target, where its ABI tells what it is (a feed, a pair).
      const targetProblem = (definition as { targetProblem?: (p: unknown, t: { name: string; functions: readonly string[] | undefined }) => { key: string; why: string } | undefined }).targetProblem
      if (targetProblem && typeof fault.target === 'string') {
        const abi = abiOf(fault.target)
        const problem = targetProblem((fault as { parsed?: unknown }).parsed, { name: fault.target, functions: abi ? functionSignatures(abi.abi) : undefined })
        if (problem)
          throw fail(`\`${where}.${problem.key}\` is refused: ${problem.why}.`, { line: lineAt(doc, [...list.split('.'), String(i), 'params', problem.key], lineOf), field: `${where}.${problem.key}` })
      }
    })
  // What each step and check needs of the target: its kind (a devnet check in a fork scenario is
  // an error here, not a check that can never hold), and a step's own requirements.
  const targetKind = scenario.target?.kind ?? 'fork'
  const phases = { baseline: scenario.baseline?.steps, inject: scenario.inject.steps, recover: scenario.recover?.steps }
  for (const [phase, steps] of Object.entries(phases))
    (steps ?? []).forEach((step, i) => {
      const problem = stepProblem(step, { kind: targetKind, rpcProxy: scenario.target?.rpcProxy ?? false }, `${phase}.steps[${i}]`)
      if (problem) throw fail(problem.message, { line: lineAt(doc, [phase, 'steps', String(i)], lineOf), field: problem.field })
      // A stress walk moves a Chainlink-style feed's answer: where the target's ABI is reachable, one without `latestRoundData()` is refused here.
      const feedTarget = (step as { stress?: { walk?: { feed?: { target?: unknown } } } }).stress?.walk?.feed?.target
      if (typeof feedTarget === 'string') {
        const abi = abiOf(feedTarget)
        const functions = abi ? functionSignatures(abi.abi) : undefined
        if (functions && !functions.includes('latestRoundData()'))
          throw fail(
            `\`${phase}.steps[${i}].stress.walk.feed.target\` \`${feedTarget}\` has no \`latestRoundData()\` in its ABI (${abi?.source}): a stress walk moves a Chainlink-style feed's answer. For a V2 pair use \`walk.pair\`; for any other price view, \`oracle.divergence\` with \`params.fn\`.`,
            { line: lineAt(doc, [phase, 'steps', String(i), 'stress', 'walk', 'feed', 'target'], lineOf), field: `${phase}.steps[${i}].stress.walk.feed.target` },
          )
      }
    })
  // A devnet's baseline and recover are windows of time (waits, polls): its steps are a timed fault schedule, under inject only, and not beside a soak's.
  if (targetKind === 'devnet') {
    for (const phase of ['baseline', 'recover'] as const)
      if ((phases[phase] ?? []).length > 0)
        throw fail(`\`${phase}.steps\` are not run on a devnet: a devnet scenario's steps (\`fault\`, \`wait\`) are its inject phase's timed fault schedule, under \`inject.steps\` only.`, { line: lineAt(doc, [phase, 'steps'], lineOf), field: `${phase}.steps` })
    if (scenario.inject.random && (scenario.inject.steps ?? []).length > 0)
      throw fail('`inject.steps` and `inject.random` cannot be used together: the steps are a fixed fault schedule, `random` draws one.', { line: lineAt(doc, ['inject', 'steps'], lineOf), field: 'inject.steps' })
  }
  // Faults that steps apply and revert: ids unique, each revert after its apply in the same phase, params parsed.
  const scheduled = scheduleProblem(Object.entries(phases).map(([phase, steps]) => [phase as 'baseline' | 'inject' | 'recover', steps ?? []]), validators)
  if (scheduled) throw fail(scheduled.message, { line: lineAt(doc, scheduled.segments, lineOf), field: scheduled.field })
  for (const list of ['checks', 'stop'] as const)
    (scenario[list] ?? []).forEach((spec, i) => {
      const { kind } = checkKindOf(spec)
      const target = checks[kind].target
      if (target !== targetKind)
        throw fail(`\`${list}[${i}].${kind}\` is a ${target} check; this scenario's target is a ${targetKind}${targetKind === 'fork' ? ' (the default)' : ''}.`, {
          line: lineAt(doc, [list, String(i), kind], lineOf),
          field: `${list}[${i}].${kind}`,
        })
      if (spec.during !== undefined) {
        // A scheduled fault's own window: only a devnet's inject steps schedule faults with ids.
        const applied = (scenario.inject.steps ?? []).flatMap((step) => {
          const body = (step as { fault?: { id?: string; apply?: unknown } }).fault
          return body?.apply && body.id !== undefined ? [body.id] : []
        })
        const at = { line: lineAt(doc, [list, String(i), 'during'], lineOf), field: `${list}[${i}].during` }
        if (target !== 'devnet' || list === 'stop') throw fail(`\`${list}[${i}].during\` is for devnet checks under \`checks\`${list === 'stop' ? '' : `; \`${kind}\` is a ${target} check`}.`, at)
        if (!applied.includes(spec.during))
          throw fail(`\`${list}[${i}].during\` must be the id of a fault an \`inject.steps\` step applies (${applied.length ? applied.map((a) => `\`${a}\``).join(', ') : 'none here'}). Got \`${spec.during}\`.`, at)
        if (spec.phases && (spec.phases.length !== 1 || spec.phases[0] !== 'inject'))
          throw fail(`\`${list}[${i}].phases\` must be \`[inject]\` (or absent) with \`during\`: the fault's window is in inject. Got \`${JSON.stringify(spec.phases)}\`.`, { line: lineAt(doc, [list, String(i), 'phases'], lineOf), field: `${list}[${i}].phases` })
      }
      if (spec.always && (target !== 'fork' || list === 'stop'))
        throw fail(`\`${list}[${i}].always\` is for fork checks under \`checks\`${list === 'stop' ? ' (a stop condition is already looked at after every step)' : `; \`${kind}\` is a ${target} check`}.`, {
          line: lineAt(doc, [list, String(i), 'always'], lineOf),
          field: `${list}[${i}].always`,
        })
    })
  // The protocol block, and what each fork check needs of it, before anything boots: a view's
  // arity and argument types against its signature, the bounty event's fields, the fields a
  // check reads (`sharePriceFloor` without `protocol.sharePrice` is refused here, not at run time).
  if (targetKind === 'fork') {
    const protocol = scenario.protocol === undefined || scenario.protocol === 'reference' ? referenceProtocol : scenario.protocol
    const problem = scenario.protocol !== undefined && scenario.protocol !== 'reference' ? protocolProblem(protocol) : undefined
    if (problem) throw fail(problem.message, { line: lineAt(doc, segmentsOf(problem.field), lineOf), field: problem.field })
    // Every function and event the block names, against the ABI of the contract it is called on (where one is reachable).
    const abiProblem = scenario.protocol !== undefined && scenario.protocol !== 'reference' ? protocolAbiProblem(protocol, scenario.contracts ?? {}) : undefined
    if (abiProblem) throw fail(abiProblem.message, { line: lineAt(doc, segmentsOf(abiProblem.field), lineOf), field: abiProblem.field })
    for (const list of ['checks', 'stop'] as const)
      (scenario[list] ?? []).forEach((spec, i) => {
        const found = checkProblem(spec, protocol, `${list}[${i}]`)
        if (found) throw fail(found.message, { line: lineAt(doc, segmentsOf(found.field), lineOf), field: found.field })
      })
  }
  const checkList = [...(scenario.checks ?? []).map((c, i) => ({ c, path: ['checks', String(i)] })), ...(scenario.stop ?? []).map((c, i) => ({ c, path: ['stop', String(i)] }))]
  const names = checkList.map(({ c }) => c.name)
  const dup = names.findIndex((n, i) => names.indexOf(n) !== i)
  if (dup >= 0)
    throw fail(`two checks are named \`${names[dup]}\`; check names must be unique.`, { line: lineAt(doc, checkList[dup]?.path ?? [], lineOf), field: fieldName(checkList[dup]?.path ?? []) })
  const soak = scenario.inject.random !== undefined
  if (scenario.target?.engine !== undefined && kind !== 'fork')
    throw fail(`\`target.engine\` is the node a fork runs on; this scenario's target is a ${kind} (its execution clients are \`target.el\`).`, { line: lineAt(doc, ['target', 'engine'], lineOf), field: 'target.engine' })
  const loaded: Scenario = {
    file,
    name: theCell.label ? `${scenario.name}[${theCell.label}]` : scenario.name,
    ...(theCell.label ? { cell: { label: theCell.label, values: theCell.values, index: cell ?? 0, of: swept.cells.length } } : {}),
    ...(scenario.description !== undefined ? { description: scenario.description } : {}),
    hypothesis: scenario.hypothesis,
    target: {
      kind: scenario.target?.kind ?? 'fork',
      // The default slot follows the execution client (src/el/index.ts: anvil 1 s, ethereumjs 2 s).
      slotMs: parseDurationMs(scenario.target?.slot ?? (scenario.target?.el === 'ethereumjs' ? '2s' : '1s'), 'target.slot', { minMs: limits.slotMinMs, maxMs: limits.slotMaxMs }),
      ...(scenario.target?.kind === 'devnet' && scenario.target.el ? { el: scenario.target.el } : {}),
      ...(scenario.target?.kind === 'devnet' && scenario.target.topology ? { topology: path.resolve(path.dirname(file), scenario.target.topology) } : {}),
      ...(scenario.target?.kind === 'devnet' && scenario.target.slot !== undefined ? { slotGiven: true } : {}),
      ...(scenario.target?.kind === 'devnet' ? { validators: devnetSizeOf(scenario, doc, lineOf, fail) } : {}),
      ...(scenario.target?.honest ? { honest: scenario.target.honest } : {}),
      isolation: scenario.target?.upstreamProxy ? 'fresh' : (scenario.target?.isolation ?? 'snapshot'),
      engine: scenario.target?.engine ?? 'anvil',
      rpcProxy: scenario.target?.rpcProxy ?? false,
      upstreamProxy: scenario.target?.upstreamProxy ?? false,
      anvil: scenario.target?.anvil ?? {},
    },
    contracts: scenario.contracts ?? {},
    ...(project ? { abis: project.abis } : {}),
    accounts: scenario.accounts ?? {},
    protocol: scenario.protocol ?? 'reference',
    // A check over one scheduled fault's window is judged in inject only.
    checks: (scenario.checks ?? []).map((c) => (c.during !== undefined && !c.phases ? { ...c, phases: ['inject' as const] } : c)),
    stop: scenario.stop ?? [],
    baseline: { steps: scenario.baseline?.steps ?? [], durationMs: ms(scenario.baseline?.duration, 'baseline.duration', 3_000, limits.phaseMs) },
    inject: {
      faults: scenario.inject.faults,
      steps: scenario.inject.steps ?? [],
      durationMs: ms(scenario.inject.duration, 'inject.duration', 10_000, soak ? limits.soakMs : limits.phaseMs),
      ...(scenario.inject.random
        ? {
            random: {
              faults: scenario.inject.random.faults,
              everyMs: ms(scenario.inject.random.every, 'inject.random.every', 10_000, limits.phaseMs),
              holdMs: ms(scenario.inject.random.hold, 'inject.random.hold', 5_000, limits.phaseMs),
              budget: scenario.inject.random.budget ?? 1,
              flakeBudget: scenario.inject.random.flakeBudget ?? 0,
            },
          }
        : {}),
    },
    recover: { steps: scenario.recover?.steps ?? [], attempts: scenario.recover?.attempts ?? 3, durationMs: ms(scenario.recover?.duration, 'recover.duration', 5_000, limits.phaseMs) },
  }
  // What the file's fork engine cannot do is refused here, at its line (`--engine` is checked by the suite, src/scenario/suite.ts).
  const unable = engineProblem(loaded, loaded.target.engine)
  if (unable) throw fail(unable.message, { line: lineAt(doc, unable.segments, lineOf), field: unable.field })
  return loaded
}


/** A scenario file's YAML, checked (see `parseScenario`), for each cell of its sweep; parsed once per buffer. */
type ScenarioDocument = { text: string; doc: Document; lineOf: (offset: number | undefined) => number | undefined }
const documents = new WeakMap<Uint8Array, { file: string; copy: Buffer; document: ScenarioDocument }>()

function readDocument(bytes: Uint8Array, file: string, fail: Fail): ScenarioDocument {
  // `loadScenarios` parses each cell of a sweep from the same bytes: the YAML is read once for all of them.
  const cached = documents.get(bytes)
  // A buffer changed in place since is read again.
  if (cached?.file === file && cached.copy.equals(bytes)) return cached.document
  if (bytes.length > limits.fileBytes) throw fail(`the file is larger than ${limits.fileBytes} bytes (64 KiB), the limit for a scenario file.`)
  const text = decodeText(bytes, fail)
  const lineCounter = new LineCounter()
  const lineOf = (offset: number | undefined) => (offset === undefined ? undefined : lineCounter.linePos(offset).line)
  const tokens = [...new Parser(lineCounter.addNewLine).parse(text)]
  const deep = tooDeep(tokens)
  if (deep !== undefined) throw fail(`the YAML is nested more than ${limits.depth} levels deep, the limit for a scenario file.`, { line: lineOf(deep) })
  // Duplicate keys are found below in one pass; the library's own check is quadratic in a map's size.
  const docs = [...new Composer({ lineCounter, prettyErrors: false, uniqueKeys: false }).compose(tokens, true, text.length)]
  const doc = docs[0]
  for (const d of docs) {
    const error = d.errors[0]
    if (error) {
      const pos = lineCounter.linePos(error.pos[0])
      throw new InputError(`${file}:${pos.line}:${pos.col}: the file is not valid YAML: ${error.message.split('\n')[0]}`, { context: { File: file } })
    }
  }
  if (docs.length > 1) throw fail(`the file holds ${docs.length} YAML documents (separated by \`---\`); a scenario file holds one.`, { line: lineOf(docs[1]?.range[0]) })
  if (!doc || doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null))
    throw fail('the file is empty: a scenario needs at least `name`, `hypothesis` and `inject`.')
  if (!isMap(doc.contents))
    throw fail(`the top level must be a mapping with \`name\`, \`hypothesis\` and \`inject\`. Got ${isSeq(doc.contents) ? 'a list' : isScalar(doc.contents) ? `the value \`${preview(doc.contents.value)}\`` : 'an alias'}.`, { line: lineOf(doc.contents.range?.[0]) })
  checkNodes(doc.contents, lineOf, fail)
  const document = { text, doc, lineOf }
  documents.set(bytes, { file, copy: Buffer.from(bytes), document })
  return document
}

/**
 * `contracts: { foundry: dir }` or `{ hardhat: dir }`: the project's addresses by contract name, and every `call` step
 * on one of them checked against its ABI (a function it lacks is exit 2 before anything boots).
 */
function projectContracts(scenario: RawScenario, file: string, fail: Fail, lineAt: (segments: string[]) => number | undefined) {
  const ref = scenario.contracts as unknown as (Partial<FoundryRef> & Partial<HardhatRef>) | undefined
  const which = typeof ref?.foundry === 'string' ? 'foundry' : typeof ref?.hardhat === 'string' ? 'hardhat' : undefined
  if (!ref || !which) return undefined
  let project: ProjectContracts
  try {
    project = which === 'foundry' ? loadFoundry(ref as FoundryRef, path.dirname(file)) : loadHardhat(ref as HardhatRef, path.dirname(file))
  } catch (error) {
    if (!(error instanceof ProjectError)) throw error
    throw fail(error.message, { line: lineAt(['contracts', which]), field: `contracts.${which}` })
  }
  const phases = { baseline: scenario.baseline?.steps, inject: scenario.inject.steps, recover: scenario.recover?.steps }
  for (const [phase, steps] of Object.entries(phases))
    (steps ?? []).forEach((step, i) => {
      const call = (step as { call?: { to?: string; fn?: string } }).call
      const abi = call?.to !== undefined ? project.abis[call.to] : undefined
      if (!abi || !call?.fn) return
      const wanted = call.fn.replace(/\s+returns\s*\(.*$/, '').replace(/\s+/g, '')
      const has = abi.some((item) => item.type === 'function' && `${item.name}(${item.inputs.map((p) => p.type).join(',')})` === wanted)
      if (!has) {
        const known = abi.flatMap((item) => (item.type === 'function' ? [`${item.name}(${item.inputs.map((p) => p.type).join(',')})`] : []))
        throw fail(`\`${phase}.steps[${i}].call.fn\` \`${call.fn}\` is not a function of \`${call.to}\` in its ABI (${project.source}); it has ${known.map((k) => `\`${k}\``).join(', ') || 'none'}.`, { line: lineAt([phase, 'steps', String(i), 'call', 'fn']), field: `${phase}.steps[${i}].call.fn` })
      }
    })
  return project
}

/**
 * A protocol file (`--protocol`): a scenario file, or a YAML file of the blocks that describe the
 * system only (`protocol:`, `contracts:`, optionally `accounts:`). It is read by the scenario
 * loader like any scenario, so every field has the same checks and messages as in `run`: the
 * blocks a scenario needs besides (`name`, `hypothesis`, `inject`) are filled in when none of
 * them is given. The protocol block itself must be there, as a block (`reference` fits only the
 * embedded chain).
 */
export function loadProtocolFile(file: string, flag: string): Pick<Scenario, 'file' | 'protocol' | 'contracts' | 'abis' | 'accounts'> & { protocol: Exclude<Scenario['protocol'], 'reference'> } {
  let bytes: Uint8Array
  try {
    bytes = readScenarioFile(file)
  } catch (error) {
    if (!(error instanceof InputError)) throw error
    throw new InputError(`\`${flag}\` names ${file}, which cannot be read.`, { context: { File: file }, hint: `\`${flag}\` takes a YAML file with a \`protocol:\` block (vault, entry, sharePrice, …) and the contracts it names under \`contracts:\` (README: "Your own protocol on a public-chain fork").` })
  }
  const scenario = parseScenario(bytes, file, 0, { flag })
  return { file, protocol: scenario.protocol as Exclude<Scenario['protocol'], 'reference'>, contracts: scenario.contracts, ...(scenario.abis ? { abis: scenario.abis } : {}), accounts: scenario.accounts }
}

/** The protocol file's document made a scenario the schema reads (see `loadProtocolFile`); a missing or `reference` protocol is refused. */
function asProtocolFile(parsed: unknown, file: string, flag: string, fail: Fail): unknown {
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return parsed
  const raw = parsed as Record<string, unknown>
  const hint = `a \`${flag}\` file holds a \`protocol:\` block (vault, entry, sharePrice, riskMode, bountyCap, bountyEvent, lender, state, signals, guards) and names its contracts under \`contracts:\`.`
  if (raw.protocol === undefined) throw fail(`\`protocol\` is missing: ${hint}`, { field: 'protocol' })
  if (raw.protocol === 'reference')
    throw fail(`\`protocol: reference\` only fits the embedded chain (forkchaos's own vault); on \`--fork-url\` or \`--state\` ${hint}`, { field: 'protocol' })
  const scenario = ['name', 'hypothesis', 'inject'].some((k) => k in raw)
  return scenario ? raw : { name: 'protocol-file', hypothesis: `the protocol described in ${file}`, inject: { faults: [] }, ...raw }
}

/** A scenario file as the schema admits it, before defaults and parsing. */
type RawScenario = Pick<Scenario, 'name' | 'hypothesis'> &
  Partial<Pick<Scenario, 'description' | 'contracts' | 'accounts' | 'protocol' | 'checks' | 'stop'>> & {
    target?: { kind?: 'fork' | 'devnet'; isolation?: 'snapshot' | 'fresh'; engine?: Engine; validators?: number; slot?: string | number; el?: 'anvil' | 'ethereumjs'; topology?: string; honest?: number[]; rpcProxy?: boolean; upstreamProxy?: boolean; anvil?: Scenario['target']['anvil'] }
    baseline?: { steps?: Step[]; duration?: string | number }
    inject: {
      faults: FaultSpec[]
      steps?: Step[]
      duration?: string | number
      random?: { faults: FaultSpec[]; every?: string | number; hold?: string | number; budget?: number; flakeBudget?: number }
    }
    recover?: { steps?: Step[]; attempts?: number; duration?: string | number }
  }

/**
 * A devnet scenario's size (`target.validators`, default 4), after every validator id the file
 * names outside fault params (`honest`, a check's validator, a fault's `target`) is checked
 * against it: ids are 0 … n−1. Ids inside fault params are checked when the fault applies.
 */
function devnetSizeOf(scenario: RawScenario, doc: Document, lineOf: (offset: number | undefined) => number | undefined, fail: (message: string, at?: { line?: number | undefined; field?: string }) => InputError): number {
  const n = scenario.target?.validators ?? defaultDevnetSize
  const ids: { path: string[]; value: unknown }[] = []
  ;(scenario.target?.honest ?? []).forEach((v, i) => ids.push({ path: ['target', 'honest', String(i)], value: v }))
  for (const list of ['checks', 'stop'] as const)
    (scenario[list] ?? []).forEach((c, i) => {
      for (const [key, field] of [['catchUp', 'node'], ['rejects', 'proposer'], ['driftRejected', 'proposer'], ['evidence', 'validator']] as const) {
        const body = (c as unknown as Record<string, Record<string, unknown> | undefined>)[key]
        if (body && field in body) ids.push({ path: [list, String(i), key, field], value: body[field] })
      }
    })
  const faultLists = { 'inject.faults': scenario.inject.faults, 'inject.random.faults': scenario.inject.random?.faults ?? [] }
  for (const [list, specs] of Object.entries(faultLists))
    specs.forEach((f, i) => {
      const m = /^(?:validator-)?(\d+)$/.exec(String(f.target ?? ''))
      if (m) ids.push({ path: [...list.split('.'), String(i), 'target'], value: Number(m[1]) })
    })
  ;(scenario.inject.steps ?? []).forEach((step, i) => {
    const body = (step as { fault?: { apply?: FaultSpec } }).fault
    const m = body?.apply ? /^(?:validator-)?(\d+)$/.exec(String(body.apply.target ?? '')) : null
    if (m) ids.push({ path: ['inject', 'steps', String(i), 'fault', 'apply', 'target'], value: Number(m[1]) })
  })
  for (const { path: segments, value } of ids)
    if (typeof value === 'number' && value >= n)
      throw fail(`\`${fieldName(segments)}\` must be a validator id from 0 to ${n - 1} (\`target.validators\` is ${n}). Got \`${value}\`.`, { line: lineAt(doc, segments, lineOf), field: fieldName(segments) })
  return n
}

/**
 * A fault whose target kind the scenario's target does not offer (a devnet fault in a fork
 * scenario): which kind it needs, and which faults this scenario could use instead.
 */
function wrongTarget(type: string, needs: FaultTarget, kind: 'fork' | 'devnet', field: string): string {
  const families = [...new Set(Object.values(faults).filter((f) => acceptedFaultTargets[kind].includes(f.target)).map((f) => `${f.type.split('.')[0]}.*`))]
  const needsText = needs === 'proxy' ? 'a JSON-RPC fault proxy in front of a fork' : `a ${needs} target`
  return `\`${field}\` \`${type}\` needs ${needsText}, and this scenario's target is a ${kind} (\`target.kind: ${kind}\`). A ${kind} scenario takes ${families.join(', ')}.`
}

/** Scenario files under the given paths (files, or directories searched recursively). */
export function findScenarioFiles(paths: readonly string[]): string[] {
  const out: string[] = []
  const visit = (p: string) => {
    let stat: fs.Stats
    try {
      stat = fs.statSync(p)
    } catch {
      throw new InputError(`No such scenario file or directory: ${p}`)
    }
    if (stat.isDirectory()) {
      for (const entry of fs.readdirSync(p).sort()) visit(path.join(p, entry))
    } else if (/\.ya?ml$/.test(p)) out.push(p)
  }
  for (const p of paths) visit(p)
  return out
}

/** The most useful of Ajv's errors: the deepest, preferring concrete keywords over `oneOf`. */
function pickError(all: ErrorObject[]): ErrorObject {
  // A params spec's `exactlyOne` fails as a `oneOf` of `required` branches: say the `oneOf`, not one branch's missing key.
  const oneOfAt = new Set(all.filter((e) => e.keyword === 'oneOf' && /\/params$/.test(e.instancePath)).map((e) => e.instancePath))
  const errors = all.filter((e) => !(e.keyword === 'required' && oneOfAt.has(e.instancePath) && /\/oneOf\/\d+\/required$/.test(e.schemaPath)))
  const vague = new Set(['oneOf', 'anyOf', 'if', 'const', 'enum', 'required', 'additionalProperties'])
  const depth = (e: ErrorObject) => e.instancePath.split('/').length
  const sorted = [...errors].sort((a, b) => depth(b) - depth(a) || Number(vague.has(a.keyword)) - Number(vague.has(b.keyword)))
  return sorted[0] as ErrorObject
}

function describe(error: ErrorObject, raw: unknown, written: (segments: string[]) => string | undefined): string {
  const segments = error.instancePath.split('/').slice(1).map(unescape)
  const field = fieldName(segments)
  const value = valueAt(raw, segments)
  const got = written(segments) ?? preview(value)
  const p = error.params as Record<string, unknown>
  const parent = (error.parentSchema ?? {}) as Record<string, unknown>
  // A duration's bounds read as durations ("at most 1h"), whichever form was given.
  const isDuration = typeof parent.maxDurationMs === 'number'
  const bound = (limit: unknown) => (isDuration ? formatDurationMs(Number(limit)) : String(limit))
  switch (error.keyword) {
    case 'maximum':
    case 'maxDurationMs':
      return `\`${field}\` must be at most ${bound(isDuration ? parent.maxDurationMs : p.limit)}. Got \`${got}\`.`
    case 'minimum':
    case 'minDurationMs':
      return `\`${field}\` must be at least ${bound(error.keyword === 'minimum' ? p.limit : parent.minDurationMs)}. Got \`${got}\`.`
    case 'exclusiveMinimum':
      return `\`${field}\` must be greater than ${String(p.limit)}. Got \`${got}\`.`
    case 'maxItems':
      return `\`${field}\` must have at most ${String(p.limit)} items. Got ${Array.isArray(value) ? value.length : '?'}.`
    case 'minItems':
      return `\`${field}\` must have at least ${String(p.limit)} item${p.limit === 1 ? '' : 's'}. Got \`${got}\`.`
    case 'maxLength':
      return `\`${field}\` must be at most ${String(p.limit)} characters long. Got ${typeof value === 'string' ? value.length : '?'}.`
    case 'maxProperties':
      return `\`${field}\` must have at most ${String(p.limit)} entries. Got ${value && typeof value === 'object' ? Object.keys(value).length : '?'}.`
    case 'minLength':
      return `\`${field}\` must not be empty.`
    case 'not': {
      // A params spec's `atMostOne`: `not: { anyOf: [{ required: [a, b] }, …] }`.
      const keys = [...new Set(((error.schema as { anyOf?: { required?: string[] }[] }).anyOf ?? []).flatMap((s) => s.required ?? []))]
      const present = keys.filter((k) => value && typeof value === 'object' && (value as Record<string, unknown>)[k] !== undefined)
      return `\`${field}\` must not have ${present.map((k) => `\`${k}\``).join(', ')} together. Got \`${got}\`.`
    }
    case 'uniqueItems':
      return `\`${field}\` must not repeat an item (items ${Math.min(Number(p.i), Number(p.j))} and ${Math.max(Number(p.i), Number(p.j))} are equal). Got \`${got}\`.`
    case 'required': {
      const missing = String(p.missingProperty)
      const inStep = /steps\[\d+\]$/.test(field)
      if (inStep) return `\`${field}\` must be a step with one of the keys ${stepKeys().join(', ')}. Got \`${got}\`.`
      const isCheck = /(checks|stop)\[\d+\]$/.test(field)
      if (isCheck && checkKeys.includes(missing as never))
        return `\`${field}\` must have exactly one check: ${checkKeys.join(', ')}. Got \`${got}\`.`
      return `\`${field ? `${field}.` : ''}${missing}\` is required.`
    }
    case 'additionalProperties':
      return `\`${field ? `${field}.` : ''}${String(p.additionalProperty)}\` is not a known field${field ? ` of ${field}` : ''}.`
    case 'enum':
      return `\`${field}\` must be one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}. Got \`${got}\`.`
    case 'const':
      return `\`${field}\` must be ${JSON.stringify(p.allowedValue)}. Got \`${got}\`.`
    case 'type':
    case 'pattern':
      if (isDuration) return `\`${field}\` must be a duration like "300ms", "2s" or "5m" (a number is milliseconds). Got \`${got}\`.`
      if (error.keyword === 'pattern') return `\`${field}\` must match ${String(p.pattern)}. Got \`${got}\`.`
      return `\`${field}\` must be ${String(p.type)}. Got \`${got}\`.`
    case 'oneOf':
      // A params spec's `exactlyOne`: `oneOf: [{ required: [a] }, { required: [b] }]`.
      if (/\.params$/.test(field) && Array.isArray(error.schema) && error.schema.every((s: { required?: string[] }) => Object.keys(s).length === 1 && s.required?.length === 1))
        return `\`${field}\` must have exactly one of ${error.schema.map((s: { required: string[] }) => `\`${s.required[0]}\``).join(', ')}. Got \`${got}\`.`
      if (/steps\[\d+\]$/.test(field)) return `\`${field}\` must be a step with one of the keys ${stepKeys().join(', ')}. Got \`${got}\`.`
      return `\`${field}\` matches none of the allowed forms${/(checks|stop)\[\d+\]$/.test(field) ? ` (exactly one check: ${checkKeys.join(', ')})` : ''}. Got \`${got}\`.`
    default:
      return `\`${field}\` ${error.message ?? 'is invalid'}. Got \`${got}\`.`
  }
}

const stepKeys = () => stepKinds
const unescape = (s: string) => s.replaceAll('~1', '/').replaceAll('~0', '~')
const fieldName = (segments: string[]) =>
  segments.reduce((acc, s) => (/^\d+$/.test(s) ? `${acc}[${s}]` : acc ? `${acc}.${s}` : s), '')

function valueAt(raw: unknown, segments: string[]): unknown {
  let node: unknown = raw
  for (const s of segments) node = node && typeof node === 'object' ? (node as Record<string, unknown>)[s] : undefined
  return node
}


type Fail = (message: string, at?: { line?: number | undefined; field?: string }) => InputError

/**
 * Reads at most one byte more than the size limit: a scenario "file" can be a pipe or a link to
 * /dev/zero, and a 2 GB file must not be read to be refused.
 */
function readScenarioFile(file: string): Uint8Array {
  let fd: number
  try {
    fd = fs.openSync(file, 'r')
  } catch {
    throw new InputError(`Cannot read the scenario file ${file}.`, { hint: 'Check the path; `forkchaos list` shows the scenarios it finds.' })
  }
  try {
    const buffer = Buffer.alloc(limits.fileBytes + 1)
    let length = 0
    for (let n = -1; n !== 0 && length < buffer.length; length += n) n = fs.readSync(fd, buffer, length, buffer.length - length, null)
    return buffer.subarray(0, length)
  } catch {
    throw new InputError(`Cannot read the scenario file ${file}.`, { hint: 'Check the path; `forkchaos list` shows the scenarios it finds.' })
  } finally {
    fs.closeSync(fd)
  }
}

/** The file as text: UTF-8 (a BOM is dropped), without NUL or other control characters. */
function decodeText(bytes: Uint8Array, fail: Fail): string {
  const lineAtByte = (at: number) => bytes.subarray(0, at).reduce((n, b) => n + Number(b === 0x0a), 1)
  let text: string
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes)
  } catch {
    throw fail(`the file is not UTF-8 text (a scenario file is YAML): an invalid byte sequence at byte ${firstInvalidUtf8(bytes)}.`, { line: lineAtByte(firstInvalidUtf8(bytes)) })
  }
  // YAML allows tab, LF and CR of the C0 controls, and NEL of the C1 ones.
  const control = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u0084\u0086-\u009f\ufffe\uffff]/.exec(text)
  if (control) {
    const code = control[0].charCodeAt(0)
    const line = text.slice(0, control.index).split('\n').length
    throw fail(`the file holds ${code === 0 ? 'a NUL byte (is it binary?)' : `the control character U+${code.toString(16).toUpperCase().padStart(4, '0')}`}; a scenario file is YAML text.`, { line })
  }
  return text
}

/** Byte offset of the first invalid UTF-8 sequence (the decoder only says that there is one). */
function firstInvalidUtf8(bytes: Uint8Array): number {
  const decoder = new TextDecoder('utf-8', { fatal: true })
  let lo = 0
  let hi = bytes.length
  // The longest valid prefix, by bisection; a cut inside a sequence is told apart by `stream`.
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2)
    try {
      decoder.decode(bytes.subarray(0, mid), { stream: true })
      decoder.decode()
      lo = mid
    } catch {
      hi = mid - 1
    }
  }
  return lo
}

/** Offset of the first collection nested deeper than the limit, from the parser's tokens (no recursion). */
function tooDeep(tokens: CST.Token[]): number | undefined {
  const stack: [CST.Token | null | undefined, number][] = tokens.map((t) => [t, 0])
  while (stack.length > 0) {
    const [token, depth] = stack.pop() as [CST.Token | null | undefined, number]
    if (!token) continue
    if (token.type === 'document') stack.push([token.value, depth])
    else if (token.type === 'block-map' || token.type === 'block-seq' || token.type === 'flow-collection') {
      if (depth >= limits.depth) return token.offset
      for (const item of token.items) stack.push(['key' in item ? item.key : undefined, depth + 1], [item.value, depth + 1])
    }
  }
  return undefined
}

const coreTags = new Set(['str', 'int', 'float', 'bool', 'null', 'map', 'seq'].map((t) => `tag:yaml.org,2002:${t}`))

/**
 * One pass over the YAML nodes (depth is bounded by now): every alias names an anchor set
 * before it and outside it, the aliases do not expand the file beyond the limit, keys are plain
 * and unique in their mapping, tags are the core ones, and numbers are finite.
 */
function checkNodes(root: Node, lineOf: (offset: number | undefined) => number | undefined, fail: Fail) {
  const anchors = new Map<string, Node>()
  const sizes = new Map<Node, number>()
  const inProgress = new Set<Node>()
  let expanded = 0
  const at = (node: Node, path: string[]) => ({ line: lineOf(node.range?.[0]), field: fieldName(path) || '(top level)' })
  const visit = (node: Node, path: string[]): number => {
    // Named only in an error: built when one is thrown, not for every node of every file.
    const field = () => fieldName(path) || 'the top level'
    const inField = () => (path.length > 0 ? `in \`${field()}\`` : 'at the top level')
    if (isAlias(node)) {
      const target = anchors.get(node.source)
      if (!target) throw fail(`the alias \`*${node.source}\` (at \`${field()}\`) has no anchor \`&${node.source}\` before it.`, at(node, path))
      if (inProgress.has(target)) throw fail(`the alias \`*${node.source}\` (at \`${field()}\`) is inside the value it names: a cycle.`, at(node, path))
      const size = sizes.get(target) ?? 1
      expanded += size
      if (expanded > limits.expandedValues)
        throw fail(`the aliases expand the file to more than ${limits.expandedValues} values, the limit for a scenario file (an alias bomb?). The last was \`*${node.source}\` at \`${field()}\`.`, at(node, path))
      return size
    }
    if (node.tag !== undefined && !coreTags.has(node.tag)) throw fail(`${path.length > 0 ? `\`${field()}\`` : 'the top level'} has the tag \`${node.tag.replace('tag:yaml.org,2002:', '!!')}\`; a scenario file uses plain YAML values.`, at(node, path))
    if (node.anchor) anchors.set(node.anchor, node)
    expanded += 1
    if (expanded > limits.expandedValues) throw fail(`the file holds more than ${limits.expandedValues} values, the limit for a scenario file.`, at(node, path))
    let size = 1
    inProgress.add(node)
    if (isScalar(node)) {
      if (typeof node.value === 'number' && !Number.isFinite(node.value)) throw fail(`\`${field()}\` must be a finite number. Got \`${node.source ?? String(node.value)}\`.`, at(node, path))
    } else if (isMap(node)) {
      const keys = new Set<string>()
      for (const pair of node.items) {
        const key = pair.key as Node | null
        if (!isScalar(key) || (key.value !== null && typeof key.value === 'object'))
          throw fail(`a key ${inField()} must be a plain name, not ${isAlias(key) ? 'an alias' : isSeq(key) ? 'a list' : 'a mapping'}.`, key ? at(key, path) : at(node, path))
        const name = String(key.value ?? '')
        if (keys.has(name)) throw fail(`the key \`${name}\` appears twice ${inField()}.`, at(key, [...path, name]))
        keys.add(name)
        size += visit(key, [...path, name])
        if (pair.value) size += visit(pair.value as Node, [...path, name])
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => {
        if (item) size += visit(item as Node, [...path, String(i)])
      })
    }
    inProgress.delete(node)
    sizes.set(node, size)
    return size
  }
  visit(root, [])
}

/** The line of the node at `segments` (Ajv's instance path), if it is still there. */
function lineAt(doc: Document, segments: string[], lineOf: (offset: number | undefined) => number | undefined): number | undefined {
  for (let n = segments.length; n >= 0; n--) {
    const node = doc.getIn(segments.slice(0, n).map((s) => (/^\d+$/.test(s) ? Number(s) : s)), true) as Node | undefined
    if (node?.range) return lineOf(node.range[0])
  }
  return undefined
}

const preview = (value: unknown) => {
  const s = typeof value === 'number' && !Number.isFinite(value) ? String(value) : (JSON.stringify(value) ?? String(value))
  return s.length > 80 ? `${s.slice(0, 77)}…` : s
}
