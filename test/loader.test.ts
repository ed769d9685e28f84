import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { describe, expect, it } from 'vitest'
import { InputError } from '../src/errors.js'
import { loadScenario, parseScenario } from '../src/scenario/loader.js'
import { limits, scenarioSchema } from '../src/scenario/schema.js'
import { loadAll } from '../src/scenario/suite.js'

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forkchaos-loader-'))
const good = `name: ok
hypothesis: h
protocol: reference
checks:
  - { name: floor, kind: safety, sharePriceFloor: { minBps: 9950 } }
inject:
  faults:
    - { type: oracle.divergence, target: feed, params: { bps: 500 } }
  steps:
    - cycle: {}
`
let files = 0
function errorOf(text: string | Uint8Array): InputError {
  const file = path.join(dir, `s${files++}.yaml`)
  fs.writeFileSync(file, text)
  try {
    loadScenario(file)
  } catch (error) {
    expect(error).toBeInstanceOf(InputError)
    expect((error as InputError).exitCode).toBe(2)
    return Object.assign(error as InputError, { message: (error as Error).message.replaceAll(file, '<file>') })
  }
  throw new Error('expected an InputError')
}

describe('scenario loader', () => {
  it('loads every shipped scenario', () => {
    expect(loadAll(['scenarios']).length).toBeGreaterThanOrEqual(7)
  })

  it('accepts a minimal valid file and fills defaults', () => {
    const file = path.join(dir, 'good.yaml')
    fs.writeFileSync(file, good)
    const s = loadScenario(file)
    expect(s.target).toEqual({ kind: 'fork', slotMs: 1000, isolation: 'snapshot', engine: 'anvil', rpcProxy: false, upstreamProxy: false, anvil: {} })
    expect(s.recover.attempts).toBe(3)
  })

  it('names the file, line, field and expectation for a wrong type', () => {
    expect(errorOf(good.replace('bps: 500', 'bps: "5%"')).message.split('\n')[0]).toMatchInlineSnapshot(`"<file>:8: \`inject.faults[0].params.bps\` must be number. Got \`"5%"\`."`)
  })

  it('names an unknown fault type with the allowed ones', () => {
    expect(errorOf(good.replace('oracle.divergence', 'oracle.explode')).message.split('\n')[0]).toMatch(
      /`inject.faults\[0\].type` must be one of "oracle.divergence", "liquidity.shortfall", .* Got `"oracle.explode"`./,
    )
  })

  it('names an unknown step', () => {
    expect(errorOf(good.replace('- cycle: {}', '- jump: {}')).message.split('\n')[0]).toMatch(
      /`inject.steps\[0\]` must be a step with one of the keys cycle, call, bundle, mine, warp, stress, keeper, module/,
    )
  })

  it('names a missing required field and an unknown field', () => {
    expect(errorOf(good.replace('hypothesis: h\n', '')).message.split('\n')[0]).toBe('<file>:1: `hypothesis` is required.')
    expect(errorOf(good.replace('name: ok', 'name: ok\nhypothesys: typo')).message.split('\n')[0]).toBe('<file>:2: `hypothesys` is not a known field.')
    expect(errorOf(`${good}__proto__: { polluted: 1 }\n`).message.split('\n')[0]).toBe('<file>:11: `__proto__` is not a known field.')
  })

  it('reports YAML syntax errors with line and column', () => {
    expect(errorOf('name: [unclosed\n').message).toMatch(/<file>:\d+:\d+: the file is not valid YAML/)
  })

  it('runs the fault\'s own param validation (a range the schema cannot express alone)', () => {
    const msg = errorOf(good.replace("params: { bps: 500 }", "params: { bps: 500, direction: sideways }")).message
    expect(msg).toMatch(/direction/)
    expect(msg).toMatch(/"up", "down"/)
  })

  it('refuses duplicate check names', () => {
    expect(errorOf(good.replace('checks:\n', 'checks:\n  - { name: floor, kind: safety, cycleAtomic: true }\n')).message).toMatch(/two checks are named `floor`/)
  })

  it('names the line of a fault param its own parser refuses, with the whole path', () => {
    // A fault's parser knows only its param's name; the loader adds the path and the line.
    expect(errorOf(good.replace('params: { bps: 500 }', 'params: { bps: 500, direction: sideways }')).message.split('\n')[0]).toBe(
      '<file>:8: `inject.faults[0].params.direction` must be one of "up", "down". Got `"sideways"`.',
    )
  })
})

/** The first line of the error for `text` (the file's path shown as `<file>`). */
const first = (text: string | Uint8Array) => errorOf(text).message.split('\n')[0]
const withInject = (extra: string) => good.replace('    - cycle: {}\n', `    - cycle: {}\n${extra}`)

describe('scenario loader: YAML that once crashed it (issue 7, and the fuzzer: fuzz/scenario.ts)', () => {
  it('an unresolved alias', () => {
    expect(first(good.replace('protocol: reference', 'protocol: *nope'))).toBe('<file>:3: the alias `*nope` (at `protocol`) has no anchor `&nope` before it.')
  })

  it('an alias used before its anchor', () => {
    expect(first(`name: *n\nhypothesis: &n h\n`)).toBe('<file>:1: the alias `*n` (at `name`) has no anchor `&n` before it.')
  })

  it('an alias inside the value it names (a cycle the YAML library turns into a circular object)', () => {
    expect(first('name: ok\nsteps: &x [*x]\n')).toBe('<file>:2: the alias `*x` (at `steps[0]`) is inside the value it names: a cycle.')
  })

  it('nine anchors of nine aliases each (an alias bomb): refused at the alias that passes the limit', () => {
    let text = 'name: ok\nhypothesis: h\na0: &a0 [x, x, x, x, x, x, x, x, x]\n'
    for (let i = 1; i < 9; i++) text += `a${i}: &a${i} [${Array(9).fill(`*a${i - 1}`).join(', ')}]\n`
    const t0 = performance.now()
    expect(first(text)).toBe(
      '<file>:8: the aliases expand the file to more than 100000 values, the limit for a scenario file (an alias bomb?). The last was `*a4` at `a5[0]`.',
    )
    expect(performance.now() - t0).toBeLessThan(1_000)
  })

  it('a valid file with 150 aliases of one anchor loads (the limit is on expanded values, not on aliases)', () => {
    let text = 'name: ok\nhypothesis: h\nchecks:\n  - { name: c0, kind: &k safety, cycleAtomic: &t true }\n'
    for (let i = 1; i <= 150; i++) text += `  - { name: c${i}, kind: *k, cycleAtomic: *t }\n`
    text += 'inject: { faults: [] }\n'
    const file = path.join(dir, 'many-aliases.yaml')
    fs.writeFileSync(file, text)
    const s = loadScenario(file)
    expect(s.checks).toHaveLength(151)
    expect(s.checks[150]).toEqual({ name: 'c150', kind: 'safety', cycleAtomic: true })
    expect(limits.expandedValues).toBe(100_000)
  })

  it('nesting deeper than 64 levels, in flow and in block style, refused before the parser recurses', () => {
    expect(first(`name: ok\nhypothesis: ${'['.repeat(5_000)}${']'.repeat(5_000)}\n`)).toBe('<file>:2: the YAML is nested more than 64 levels deep, the limit for a scenario file.')
    expect(first(`name: ok\nx:\n${Array.from({ length: 70 }, (_, i) => `${' '.repeat(i + 1)}k:`).join('\n')} 1\n`)).toBe(
      '<file>:66: the YAML is nested more than 64 levels deep, the limit for a scenario file.',
    )
    expect(first(`- ${'- '.repeat(100)}1\n`)).toBe('<file>:1: the YAML is nested more than 64 levels deep, the limit for a scenario file.')
  })

  it('duplicate keys, at the top and inside a mapping', () => {
    expect(first(good.replace('name: ok', 'name: ok\nname: again'))).toBe('<file>:2: the key `name` appears twice at the top level.')
    expect(first(good.replace('params: { bps: 500 }', 'params: { bps: 500, bps: 600 }'))).toBe('<file>:8: the key `bps` appears twice in `inject.faults[0].params`.')
  })

  it('a key that is a list, a mapping or an alias', () => {
    expect(first('? [a, b]\n: 1\n')).toBe('<file>:1: a key at the top level must be a plain name, not a list.')
    expect(first('name: &n ok\n*n : 1\n')).toBe('<file>:2: a key at the top level must be a plain name, not an alias.')
  })

  it('a file that is not a mapping, an empty file, a file of comments', () => {
    expect(first('- a\n- b\n')).toBe('<file>:1: the top level must be a mapping with `name`, `hypothesis` and `inject`. Got a list.')
    expect(first('42\n')).toBe('<file>:1: the top level must be a mapping with `name`, `hypothesis` and `inject`. Got the value `42`.')
    expect(first('')).toBe('<file>: the file is empty: a scenario needs at least `name`, `hypothesis` and `inject`.')
    expect(first('# nothing yet\n\n')).toBe('<file>: the file is empty: a scenario needs at least `name`, `hypothesis` and `inject`.')
    expect(first('~\n')).toBe('<file>: the file is empty: a scenario needs at least `name`, `hypothesis` and `inject`.')
  })

  it('two YAML documents in one file', () => {
    expect(first(`${good}---\nname: two\n`)).toBe('<file>:11: the file holds 2 YAML documents (separated by `---`); a scenario file holds one.')
  })

  it('binary and non-UTF-8 input, and control characters', () => {
    expect(first(Buffer.from([0x6e, 0x61, 0x6d, 0x65, 0x3a, 0x0a, 0x00, 0x01, 0x02]))).toBe('<file>:2: the file holds a NUL byte (is it binary?); a scenario file is YAML text.')
    expect(first(Buffer.concat([Buffer.from('name: ok\nhypothesis: caf'), Buffer.from([0xe9]), Buffer.from('\n')]))).toBe(
      '<file>:2: the file is not UTF-8 text (a scenario file is YAML): an invalid byte sequence at byte 24.',
    )
    expect(first('name: ok\u0007\n')).toBe('<file>:1: the file holds the control character U+0007; a scenario file is YAML text.')
    // A UTF-8 byte-order mark is fine.
    expect(parseScenario(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(good)]), 'bom.yaml').name).toBe('ok')
  })

  it('a file larger than the limit is refused without being read whole', () => {
    expect(first(`name: ok\nhypothesis: ${'h'.repeat(limits.fileBytes)}\n`)).toBe('<file>: the file is larger than 65536 bytes (64 KiB), the limit for a scenario file.')
    const link = path.join(dir, 'zero.yaml')
    fs.rmSync(link, { force: true })
    fs.symlinkSync('/dev/zero', link)
    expect(() => loadScenario(link)).toThrow(`${link}: the file is larger than 65536 bytes (64 KiB), the limit for a scenario file.`)
  })

  it('tags outside YAML core, and non-finite numbers', () => {
    expect(first(good.replace('name: ok', 'name: !!binary aGVsbG8='))).toBe('<file>:1: `name` has the tag `!!binary`; a scenario file uses plain YAML values.')
    expect(first(good.replace('bps: 500', 'bps: .nan'))).toBe('<file>:8: `inject.faults[0].params.bps` must be a finite number. Got `.nan`.')
    expect(first(good.replace('bps: 500', 'bps: -.inf'))).toBe('<file>:8: `inject.faults[0].params.bps` must be a finite number. Got `-.inf`.')
    expect(first(good.replace('bps: 500', 'bps: 1e400'))).toBe('<file>:8: `inject.faults[0].params.bps` must be a finite number. Got `1e400`.')
    // `!!str` is core YAML: it makes a string.
    expect(first(good.replace('bps: 500', 'bps: !!str 500'))).toBe('<file>:8: `inject.faults[0].params.bps` must be number. Got `"500"`.')
  })
})

describe('scenario loader: every duration, count, rate and size has a stated bound', () => {
  it('unbounded durations and numbers from issue 7', () => {
    expect(first(withInject('  duration: 1e308\n'))).toBe('<file>:11: `inject.duration` must be at most 1h. Got `1e308`.')
    expect(first(withInject('  duration: "99999999999999999999999d"\n'))).toBe('<file>:11: `inject.duration` must be at most 1h. Got `"99999999999999999999999d"`.')
    expect(first(good.replace('- cycle: {}', '- warp: { seconds: 1e300 }'))).toBe('<file>:10: `inject.steps[0].warp.seconds` must be at most 315360000. Got `1e300`.')
  })

  it('phase, soak, keeper and slot durations', () => {
    expect(first(withInject('  duration: 61m\n'))).toBe('<file>:11: `inject.duration` must be at most 1h. Got `"61m"`.')
    expect(first(good.replace('name: ok', 'name: ok\nbaseline: { duration: 3600001 }'))).toBe('<file>:2: `baseline.duration` must be at most 1h. Got `3600001`.')
    expect(first(`${good}recover: { duration: 2d }\n`)).toBe('<file>:11: `recover.duration` must be at most 1h. Got `"2d"`.')
    expect(first(good.replace('name: ok', 'name: ok\ntarget: { kind: devnet, slot: 2m }'))).toBe('<file>:2: `target.slot` must be at most 1m. Got `"2m"`.')
    expect(first(good.replace('name: ok', 'name: ok\ntarget: { kind: devnet, slot: 100ms }'))).toBe('<file>:2: `target.slot` must be at least 200ms. Got `"100ms"`.')
    const keeper = (duration: string) =>
      good.replace('name: ok', 'name: ok\ntarget: { rpcProxy: true }').replace('- cycle: {}', `- keeper: { mode: budgeted, duration: ${duration}, timeout: 11m }`)
    expect(first(keeper('2h'))).toBe('<file>:11: `inject.steps[0].keeper.duration` must be at most 1h. Got `"2h"`.')
    expect(first(keeper('5s'))).toBe('<file>:11: `inject.steps[0].keeper.timeout` must be at most 10m. Got `"11m"`.')
    // A soak (inject.random) may hold its faults for a day, not longer.
    const soak = (duration: string) => `name: soak\nhypothesis: h\ntarget: { kind: devnet }\ninject:\n  faults: []\n  random: { every: 1m, faults: [{ type: node.kill }] }\n  duration: ${duration}\n`
    const file = path.join(dir, 'soak.yaml')
    fs.writeFileSync(file, soak('24h'))
    expect(loadScenario(file).inject.durationMs).toBe(86_400_000)
    expect(first(soak('25h'))).toBe('<file>:7: `inject.duration` must be at most 24h. Got `"25h"`.')
  })

  it('counts, rates and sizes', () => {
    expect(first(good.replace('- cycle: {}', '- cycle: { count: 100001 }'))).toBe('<file>:10: `inject.steps[0].cycle.count` must be at most 100000. Got `100001`.')
    expect(first(good.replace('- cycle: {}', '- cycle: { gasPriceGwei: 1e9 }'))).toBe('<file>:10: `inject.steps[0].cycle.gasPriceGwei` must be at most 1000000. Got `1e9`.')
    expect(first(good.replace('- cycle: {}', '- mine: { intervalS: 86401 }'))).toBe('<file>:10: `inject.steps[0].mine.intervalS` must be at most 86400. Got `86401`.')
    expect(first(good.replace('bps: 500', 'bps: 500, staleS: 1e300'))).toBe('<file>:8: `inject.faults[0].params.staleS` must be at most 315360000. Got `1e300`.')
    expect(first(good.replace('sharePriceFloor: { minBps: 9950 }', 'memory: { maxRssMb: 1e12 }'))).toBe('<file>:5: `checks[0].memory.maxRssMb` must be at most 65536. Got `1e12`.')
    expect(first(good.replace('sharePriceFloor: { minBps: 9950 }', 'riskMode: { equals: -1 }'))).toBe('<file>:5: `checks[0].riskMode.equals` must be at least 0. Got `-1`.')
    expect(first(good.replace('{ type: oracle.divergence, target: feed, params: { bps: 500 } }', '{ type: rpc.error, params: { code: 1e12 } }'))).toBe(
      '<file>:8: `inject.faults[0].params.code` must be at most 2147483647. Got `1e12`.',
    )
    expect(first(`${good.replace('  steps:\n    - cycle: {}\n', `  steps:\n${'    - cycle: {}\n'.repeat(1_001)}`)}`)).toBe('<file>:10: `inject.steps` must have at most 1000 items. Got 1001.')
    expect(first(good.replace('hypothesis: h', `hypothesis: ${'h'.repeat(10_001)}`))).toBe('<file>:2: `hypothesis` must be at most 10000 characters long. Got 10001.')
  })

  it('schema/scenario.schema.json is the schema the loader uses, and states the bounds', () => {
    const published = JSON.parse(fs.readFileSync(path.join(import.meta.dirname, '..', 'schema', 'scenario.schema.json'), 'utf8'))
    expect(published).toEqual(JSON.parse(JSON.stringify(scenarioSchema)))
    expect(published.properties.recover.properties.duration).toMatchObject({ maximum: 3_600_000, maxDurationMs: 3_600_000, description: expect.stringContaining('at most 1h') })
    expect(published.properties.inject.else.properties.duration).toMatchObject({ maximum: 3_600_000 })
    expect(published.properties.inject.properties.duration).toMatchObject({ maximum: 86_400_000 })
  })
})

describe('scenario loader: what fuzz/scenario.ts found in the loader before issue 7 (seed 7, 2,000 inputs)', () => {
  const fault = (spec: string) => good.replace('{ type: oracle.divergence, target: feed, params: { bps: 500 } }', spec)

  it('a value the schema admitted but the fault\'s parser refused got no file or line (cutBps 0.5, baseFeeGwei 1e-10); now one declaration states both', () => {
    expect(first(fault('{ type: liquidity.shortfall, target: pair, params: { cutBps: 0.5 } }'))).toBe('<file>:8: `inject.faults[0].params.cutBps` must be at least 1. Got `0.5`.')
    expect(first(fault('{ type: gas.spike, params: { baseFeeGwei: 1e-10 } }'))).toBe('<file>:8: `inject.faults[0].params.baseFeeGwei` must be at least 1e-9. Got `1e-10`.')
  })

  it('a soak\'s random fault the fault\'s parser refuses names `inject.random.faults`, not `inject.faults`', () => {
    const soak = 'name: soak\nhypothesis: h\ntarget: { kind: devnet }\ninject:\n  faults: []\n  random: { every: 1m, faults: [{ type: net.partition, params: { groups: [[0, 1], [1, 2]] } }] }\n'
    expect(first(soak)).toBe('<file>:6: `inject.random.faults[0].params.groups` must not put a validator in two groups (validator 1 is). Got `[[0,1],[1,2]]`.')
  })

  it('a bad keeper duration or slot got the file inside the field name and no line', () => {
    const keeper = good.replace('name: ok', 'name: ok\ntarget: { rpcProxy: true }').replace('- cycle: {}', '- keeper: { mode: naive, duration: 5s, interval: soon }')
    expect(first(keeper)).toBe('<file>:11: `inject.steps[0].keeper.interval` must be a duration like "300ms", "2s" or "5m" (a number is milliseconds). Got `"soon"`.')
    expect(first(good.replace('name: ok', 'name: ok\ntarget: { kind: devnet, slot: 90000 }'))).toBe('<file>:2: `target.slot` must be at most 1m. Got `90000`.')
  })

  it('unbounded numbers it accepted: a validator id of 7, a risk mode of 300, an amplification of 1e9', () => {
    expect(first('name: d\nhypothesis: h\ntarget: { kind: devnet }\ninject:\n  faults:\n    - { type: node.kill, target: 7 }\n')).toBe(
      '<file>:6: `inject.faults[0].target` must be a validator id from 0 to 3 (`target.validators` is 4). Got `7`.',
    )
    expect(first(good.replace('sharePriceFloor: { minBps: 9950 }', 'riskMode: { equals: 300 }'))).toBe('<file>:5: `checks[0].riskMode.equals` must be at most 255. Got `300`.')
    expect(first(good.replace('sharePriceFloor: { minBps: 9950 }', 'keeperLoad: { maxAmplification: 1e9 }'))).toBe(
      '<file>:5: `checks[0].keeperLoad.maxAmplification` must be at most 1000000. Got `1e9`.',
    )
  })
})

describe('forkchaos validate / run on a file that once crashed the loader (built CLI)', () => {
  const cli = path.join(import.meta.dirname, '..', 'bin', 'forkchaos.js')
  for (const command of ['validate', 'run'])
    it(`${command}: exit 2, the file and line, no stack`, () => {
      const file = path.join(dir, `alias-${command}.yaml`)
      fs.writeFileSync(file, good.replace('protocol: reference', 'protocol: *nope'))
      const r = spawnSync(process.execPath, [cli, command, file], { encoding: 'utf8', timeout: 60_000 })
      expect(r.status).toBe(2)
      expect(r.stderr.split('\n')[0]).toBe(`forkchaos: ${file}:3: the alias \`*nope\` (at \`protocol\`) has no anchor \`&nope\` before it.`)
      expect(r.stderr).not.toMatch(/\n\s+at /)
    }, 60_000)
})
