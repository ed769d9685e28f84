import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { describe, expect, it } from 'vitest'
import { InputError } from '../src/errors.js'
import { loadScenario } from '../src/scenario/loader.js'
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
function errorOf(text: string): InputError {
  const file = path.join(dir, `s${Math.random().toString(36).slice(2)}.yaml`)
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
    expect(s.target).toEqual({ kind: 'fork', slotMs: 1000, isolation: 'snapshot', rpcProxy: false, upstreamProxy: false, anvil: {} })
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
      /`inject.steps\[0\]` must be a step with one of the keys cycle, call, mine, warp, stress, keeper, module/,
    )
  })

  it('names a missing required field and an unknown field', () => {
    expect(errorOf(good.replace('hypothesis: h\n', '')).message.split('\n')[0]).toBe('<file>:1: `hypothesis` is required.')
    expect(errorOf(good.replace('name: ok', 'name: ok\nhypothesys: typo')).message.split('\n')[0]).toMatch(/`hypothesys` is not a known field/)
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
})
