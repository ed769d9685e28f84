import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import fc from 'fast-check'
import { toFunctionSelector } from 'viem'
import { afterAll, describe, expect, it } from 'vitest'
import { agreement, faultParamsFuzz, outcome, refinements, type Schema, valuesFor } from '../fuzz/fault-params.js'
import { createMetrics } from '../src/metrics/metrics.js'
import { createChaosApi } from '../src/proxy/chaos-api.js'
import { startRpcProxy } from '../src/proxy/jsonrpc/proxy.js'
import { startControlServer } from '../src/proxy/server.js'
import { createProxyRegistry } from '../src/proxy/tcp/registry.js'
import { createPrng } from '../src/util/prng.js'
import { InputError } from '../src/errors.js'
import { type AnyFault, acceptedFaultTargets, define } from '../src/Fault.js'
import { faults } from '../src/faults/registry.js'
import * as P from '../src/Params.js'
import { loadScenario } from '../src/scenario/loader.js'
import { scenarioSchema } from '../src/scenario/schema.js'

/** The oracle (Ajv over each fault's published schema) and the values it draws live in fuzz/fault-params.ts. */
describe('fault params: one declaration gives the schema and the parser', () => {
  it('for every fault, values the schema accepts parse and values the parser refuses the schema refuses (refinements aside)', () => {
    expect(Object.keys(faults)).toHaveLength(33)
    const disagreements = Object.values(faults).flatMap((fault) => {
      const result = agreement(fault, 400)
      return result.failed ? [`${fault.type}: ${JSON.stringify(result.counterexample)}`] : []
    })
    expect(disagreements).toEqual([])
  })

  it('the values reach both sides of every fault\'s schema, and every declared refinement', () => {
    const thin: string[] = []
    for (const fault of Object.values(faults)) {
      const values = fc.sample(valuesFor(fault.paramsSchema), { seed: 8, numRuns: 400 })
      const outcomes = values.map((v) => outcome(fault, v))
      const accepted = outcomes.filter((o) => o.schemaOk).length
      const refined = outcomes.filter((o) => o.schemaOk && o.error).length
      if (accepted < 20 || values.length - accepted < 20) thin.push(`${fault.type}: ${accepted}/${values.length} accepted`)
      if (refinements[fault.type] && refined === 0) thin.push(`${fault.type}: its refinement never reached`)
    }
    expect(thin).toEqual([])
  })

  it('the fuzz target (`npm run fuzz -- fault-params`) finds nothing at a fixed seed', async () => {
    const tally = await faultParamsFuzz.run({ count: 3_100, seed: 8 })
    expect(tally).toEqual({ inputs: 3_100, crashes: 0, hangs: 0, acceptedInvalid: 0, examples: [] })
  })

  it('the property catches drift: a schema whose maximum differs from the parser\'s (rpc.latency\'s jitterMs, as before)', () => {
    const real = faults['rpc.latency']
    const drifted: AnyFault = {
      ...real,
      paramsSchema: { ...real.paramsSchema, properties: { ...(real.paramsSchema.properties as object), jitterMs: { type: 'number', minimum: 0, maximum: 6_000_000 } } },
    }
    const result = agreement(drifted, 400)
    expect(result.failed).toBe(true)
    expect((result.counterexample?.[0] as { jitterMs: number }).jitterMs).toBeGreaterThan(600_000)
    // And an undeclared refinement is one too: partition's check without its entry in the list.
    const partition = faults['net.partition']
    delete refinements['net.partition']
    try {
      expect(agreement(partition, 400).failed).toBe(true)
    } finally {
      refinements['net.partition'] = /must not put a validator in two groups/
    }
  })

  it('a parsed default is the schema\'s default, and a parsed value has the declared type', () => {
    for (const fault of Object.values(faults)) {
      const properties = (fault.paramsSchema.properties ?? {}) as Record<string, Schema>
      const required = (fault.paramsSchema.required ?? []) as string[]
      // The least valid params: only the required keys, at their minimum (or first choice).
      const leastOf = (s: Schema): unknown =>
        Array.isArray(s.enum) ? s.enum[0] : s.type === 'string' ? 'f()' : s.type === 'array' ? Array.from({ length: Number(s.minItems ?? 0) }, () => leastOf(s.items as Schema)) : (s.minimum ?? 1)
      // A spec's `exactlyOne` (schema `oneOf` of `required`): its first key too.
      const one = ((fault.paramsSchema.oneOf ?? []) as { required: string[] }[]).slice(0, 1).flatMap((s) => s.required)
      const least = Object.fromEntries([...required, ...one].map((k) => [k, leastOf(properties[k] as Schema)]))
      const o = outcome(fault, least)
      expect.soft(o.error?.message, fault.type).toBeUndefined()
      for (const [k, s] of Object.entries(properties)) if (s.default !== undefined) expect.soft((o.parsed as Record<string, unknown>)[k], `${fault.type}.${k}`).toEqual(k === 'gas' ? BigInt(s.default as number) : s.default)
    }
    expect(faults['dependency.gas'].parse({ selectors: ['f()'], gas: 5 }, 'w')).toEqual({ selectors: ['0x26121ff0'], gas: 5n })
  })

  it('the parser\'s own error texts name the param, the expected value and where (the chaos API shows these)', () => {
    const text = (fault: AnyFault, raw: unknown) => {
      try {
        fault.parse(raw, 'POST /chaos/inject: params')
      } catch (error) {
        expect((error as InputError).exitCode).toBe(2)
        return (error as Error).message
      }
      throw new Error('expected a refusal')
    }
    expect(text(faults['rpc.latency'], { latencyMs: 'slow' })).toMatchInlineSnapshot(`
      "\`latencyMs\` must be a number between 0 and 600000. Got \`"slow"\`.

      Where: POST /chaos/inject: params"
    `)
    expect(text(faults['rpc.latency'], { latencyMs: 10, jitterMs: 600_001 })).toMatchInlineSnapshot(`
      "\`jitterMs\` must be at most 600000. Got \`600001\`.

      Where: POST /chaos/inject: params"
    `)
    expect(text(faults['rpc.latency'], { latencyMs: 10, jiter: 5 })).toMatchInlineSnapshot(`
      "\`jiter\` is not a known param; expected \`latencyMs\`, \`jitterMs\`, \`methods\`, \`probability\`.

      Where: POST /chaos/inject: params"
    `)
    expect(text(faults['net.partition'], { groups: [[0, 1], [1, 2]] })).toMatchInlineSnapshot(`
      "\`groups\` must not put a validator in two groups (validator 1 is). Got \`[[0,1],[1,2]]\`.

      Where: POST /chaos/inject: params"
    `)
  })

  it('the scenario schema publishes each fault\'s params schema as declared, once, for both fault lists', () => {
    const inject = (scenarioSchema.properties as Record<string, Schema>).inject as { properties: Record<string, Schema> }
    const lists = [inject.properties.faults, (inject.properties.random as { properties: Record<string, Schema> }).properties.faults]
    // Both lists take the one fault definition (the schema defines a fault once: definitions, $ref).
    for (const list of lists) expect((list as { items: unknown }).items).toEqual({ $ref: '#/definitions/fault' })
    const fault = (scenarioSchema as unknown as { definitions: Record<string, Schema> }).definitions.fault as { allOf: { if: Schema; then: { properties: { params: unknown } } }[] }
    const clauses = fault.allOf
    expect(clauses.map((c) => (c.if.properties as { type: { const: string } }).type.const)).toEqual(Object.keys(faults))
    for (const c of clauses) expect(c.then.properties.params).toBe(faults[(c.if.properties as { type: { const: keyof typeof faults } }).type.const].paramsSchema)
  })

  it('every fault declares the target kind it needs, and each scenario kind takes some', () => {
    const byTarget = (t: string) => Object.values(faults).filter((f) => f.target === t).map((f) => f.type)
    expect(byTarget('proxy')).toEqual(['rpc.latency', 'rpc.timeout', 'rpc.error', 'rpc.stale', 'rpc.partial', 'rpc.rewrite'])
    expect(byTarget('fork')).toEqual(['oracle.divergence', 'liquidity.shortfall', 'dependency.revert', 'dependency.garbage', 'dependency.gas', 'dependency.cooldown', 'time.warp', 'gas.spike', 'chain.reorg'])
    expect(byTarget('devnet')).toHaveLength(18)
    expect(acceptedFaultTargets).toEqual({ fork: ['fork', 'proxy'], devnet: ['devnet'] })
  })

  it('every fault is found by its name in one step: `family.kind` is exported by src/faults/<family>/<kind>.ts', async () => {
    const misplaced: string[] = []
    for (const fault of Object.values(faults)) {
      const [family, kind] = fault.type.split('.')
      const file = path.join(import.meta.dirname, '..', 'src', 'faults', family as string, `${kind}.ts`)
      const module = fs.existsSync(file) ? ((await import(file)) as Record<string, { type?: string }>) : {}
      if (!Object.values(module).some((e) => e?.type === fault.type)) misplaced.push(fault.type)
    }
    expect(misplaced).toEqual([])
    // What else src/faults/ holds: the registry, the factories three families share, and the
    // Engine API form of the three byzantine block faults (engine.ts: the link rules; engine-fault.ts: apply/revert/detect).
    const files = fs.readdirSync(path.join(import.meta.dirname, '..', 'src', 'faults'), { recursive: true, withFileTypes: true }).filter((d) => d.isFile()).map((d) => path.relative(path.join(import.meta.dirname, '..', 'src', 'faults'), path.join(d.parentPath, d.name)))
    const definitions = new Set(Object.keys(faults).map((t) => `${t.replace('.', '/')}.ts`))
    expect(files.filter((f) => !definitions.has(f)).sort()).toEqual(['byzantine/common.ts', 'byzantine/engine-fault.ts', 'byzantine/engine.ts', 'dependency/common.ts', 'mempool/flooder.ts', 'registry.ts', 'rpc/common.ts'])
  })

  it('`list` text comes from the same declaration', () => {
    expect(faults['oracle.divergence'].paramsText).toMatchInlineSnapshot(`
      [
        "bps: number 0–9999, optional. Move in basis points (required unless \`value\` replaces the word).",
        "direction: "up" | "down", default "down"",
        "staleS: integer 0–315360000, optional. Chainlink-style feeds only: age \`updatedAt\` by this many seconds.",
        "fn: string (≤ 1000 chars), optional. Any view, by signature with its return types (\`consult() returns (uint256)\`): its answer is rewritten through the selector shim, which calls the original code.",
        "word: integer 0–31, optional. With \`fn\`: the index of the returned word to rewrite (default 0).",
        "value: a whole number (decimal or 0x hex) (≤ 80 chars), optional. With \`fn\`: replace the word with this value instead of scaling it by \`bps\`.",
        "cumulativeS: integer 1–31536000, optional. V2 pairs only: move price0/price1CumulativeLast as if the spot price had been off by \`bps\` for this many seconds (TWAP manipulation); reserves stay.",
        "(exactly one of \`bps\`, \`value\`)",
        "(\`word\` and \`value\` only with \`fn\`; \`staleS\` not with \`fn\` or \`cumulativeS\`; \`fn\` returns static words)",
      ]
    `)
    expect(faults['node.kill'].paramsText).toEqual([])
  })

  it('define builds schema and parser from one spec (a unit outside the registry)', () => {
    const f = define({
      type: 'test.unit',
      summary: 's',
      target: 'fork',
      params: P.object({ n: P.integer({ min: 1, max: 3, default: 2 }), tag: P.optional(P.string({ maxLength: 4 })) }),
      apply: async () => ({}),
      revert: async () => {},
      detect: async () => ({ took: '', seen: null }),
    })
    expect(f.paramsSchema).toEqual({ type: 'object', additionalProperties: false, properties: { n: { type: 'integer', minimum: 1, maximum: 3, default: 2 }, tag: { type: 'string', maxLength: 4 } } })
    expect(f.parse({}, 'w')).toEqual({ n: 2, tag: undefined })
    expect(() => f.parse({ n: 2.5 }, 'w')).toThrow('`n` must be an integer between 1 and 3. Got `2.5`.')
    expect(() => f.parse({ tag: '😀😀😀😀😀' }, 'w')).toThrow('`tag` must be at most 4 characters long. Got 5.')
    expect(f.parse({ tag: '😀😀😀😀' }, 'w')).toEqual({ n: 2, tag: '😀😀😀😀' })
  })
})

describe('fault params at load: parsed once, target kind checked', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forkchaos-fault-params-'))
  let n = 0
  const write = (text: string) => {
    const file = path.join(dir, `s${n++}.yaml`)
    fs.writeFileSync(file, text)
    return file
  }
  const errorOf = (text: string) => {
    const file = write(text)
    try {
      loadScenario(file)
    } catch (error) {
      expect(error).toBeInstanceOf(InputError)
      expect((error as InputError).exitCode).toBe(2)
      return (error as Error).message.replaceAll(file, '<file>')
    }
    throw new Error('expected an InputError')
  }
  const fork = (fault: string) => `name: f\nhypothesis: h\ninject:\n  faults:\n    - ${fault}\n`
  const devnet = (fault: string, extra = '') => `name: d\nhypothesis: h\ntarget: { kind: devnet${extra} }\ninject:\n  faults:\n    - ${fault}\n`

  it('the loaded spec carries the parsed params (defaults filled, values converted), not in its JSON', () => {
    const s = loadScenario(write(fork('{ type: dependency.gas, target: perp, params: { selectors: ["closeTrade(uint256)"], gas: 70000 } }')))
    const spec = s.inject.faults[0]
    expect(spec?.parsed).toEqual({ selectors: [toFunctionSelector('closeTrade(uint256)')], gas: 70_000n })
    expect(JSON.parse(JSON.stringify(spec))).toEqual({ type: 'dependency.gas', target: 'perp', params: { selectors: ['closeTrade(uint256)'], gas: 70000 } })
    const r = loadScenario(write(fork('{ type: rpc.latency, params: { latencyMs: 5 } }').replace('name: f', 'name: f\ntarget: { rpcProxy: true }')))
    expect(r.inject.faults[0]?.parsed).toEqual({ latencyMs: 5, jitterMs: 0, methods: ['*'], probability: 1 })
  })

  it('a devnet fault in a fork scenario, and a fork fault in a devnet one, are load errors naming the file and field', () => {
    expect(errorOf(fork('{ type: node.kill, target: 1 }'))).toMatchInlineSnapshot(`
      "<file>:5: \`inject.faults[0].type\` \`node.kill\` needs a devnet target, and this scenario's target is a fork (\`target.kind: fork\`). A fork scenario takes oracle.*, liquidity.*, dependency.*, time.*, gas.*, chain.*, rpc.*.

      File: <file>
      Field: inject.faults[0].type"
    `)
    expect(errorOf(devnet('{ type: oracle.divergence, target: feed, params: { bps: 5 } }'))).toMatchInlineSnapshot(`
      "<file>:6: \`inject.faults[0].type\` \`oracle.divergence\` needs a fork target, and this scenario's target is a devnet (\`target.kind: devnet\`). A devnet scenario takes node.*, net.*, mempool.*, byzantine.*.

      File: <file>
      Field: inject.faults[0].type"
    `)
    // A soak's random faults too, and a proxy fault: on a devnet there is no JSON-RPC fault proxy.
    expect(errorOf(`name: d\nhypothesis: h\ntarget: { kind: devnet }\ninject:\n  faults: []\n  random: { every: 1m, faults: [{ type: node.kill }, { type: rpc.timeout }] }\n`).split('\n')[0]).toMatchInlineSnapshot(
      `"<file>:6: \`inject.random.faults[1].type\` \`rpc.timeout\` needs a JSON-RPC fault proxy in front of a fork, and this scenario's target is a devnet (\`target.kind: devnet\`). A devnet scenario takes node.*, net.*, mempool.*, byzantine.*."`,
    )
  })

  it('a devnet fault\'s target is a validator id', () => {
    expect(errorOf(devnet('{ type: node.kill, target: leader }'))).toMatchInlineSnapshot(`
      "<file>:6: \`inject.faults[0].target\` must be a validator id from 0 to 3 (or \`validator-<id>\`). Got \`"leader"\`.

      File: <file>
      Field: inject.faults[0].target"
    `)
    expect(errorOf(devnet('{ type: node.kill, target: validator-9 }', ', validators: 7'))).toMatchInlineSnapshot(`
      "<file>:6: \`inject.faults[0].target\` must be a validator id from 0 to 6 (\`target.validators\` is 7). Got \`9\`.

      File: <file>
      Field: inject.faults[0].target"
    `)
    expect(loadScenario(write(devnet('{ type: node.kill, target: validator-6 }', ', validators: 7'))).inject.faults[0]?.target).toBe('validator-6')
  })

  it('a proxy fault names a JSON-RPC fault proxy the scenario has', () => {
    expect(errorOf(fork('{ type: rpc.timeout }'))).toMatchInlineSnapshot(`
      "<file>:5: \`inject.faults[0].target\` names the JSON-RPC fault proxy \`fork\` (the default), which this scenario does not have (it has none): \`target: { rpcProxy: true }\` adds \`fork\`, \`target: { upstreamProxy: true }\` adds \`upstream\`.

      File: <file>
      Field: inject.faults[0].target"
    `)
    expect(errorOf(fork('{ type: rpc.timeout, target: upstream }').replace('name: f', 'name: f\ntarget: { rpcProxy: true }')).split('\n')[0]).toMatchInlineSnapshot(`"<file>:6: \`inject.faults[0].target\` names the JSON-RPC fault proxy \`upstream\`, which this scenario does not have (it has \`fork\`): \`target: { rpcProxy: true }\` adds \`fork\`, \`target: { upstreamProxy: true }\` adds \`upstream\`."`)
    expect(loadScenario(write(fork('{ type: rpc.timeout, target: upstream }').replace('name: f', 'name: f\ntarget: { upstreamProxy: true }'))).inject.faults[0]?.parsed).toEqual({ methods: ['*'], probability: 1 })
  })

  it('a wrong type and an out-of-range value: the whole error text', () => {
    expect(errorOf(fork('{ type: chain.reorg, params: { depth: "three" } }'))).toMatchInlineSnapshot(`
      "<file>:5: \`inject.faults[0].params.depth\` must be integer. Got \`"three"\`.

      File: <file>
      Field: inject.faults[0].params.depth"
    `)
    expect(errorOf(fork('{ type: liquidity.shortfall, target: pair, params: { cutBps: 0.5 } }'))).toMatchInlineSnapshot(`
      "<file>:5: \`inject.faults[0].params.cutBps\` must be at least 1. Got \`0.5\`.

      File: <file>
      Field: inject.faults[0].params.cutBps"
    `)
  })

  it('validator ids in params are bounded by the scenario\'s validator count, at load, at the param\'s line', () => {
    const text = `name: d\nhypothesis: h\ntarget: { kind: devnet }\ninject:\n  faults:\n    - type: net.partition\n      params:\n        groups:\n          - [0, 1]\n          - [2, 4]\n`
    expect(errorOf(text)).toMatchInlineSnapshot(`
      "<file>:10: \`inject.faults[0].params.groups[1][1]\` must be a validator id from 0 to 3 (the devnet has 4 validators). Got \`4\`.

      File: <file>
      Field: inject.faults[0].params.groups[1][1]"
    `)
    expect(loadScenario(write(text.replace('{ kind: devnet }', '{ kind: devnet, validators: 7 }'))).inject.faults[0]?.parsed).toEqual({ groups: [[0, 1], [2, 4]] })
    // Which params go together is in the schema too (`oneOf` / `not`), with the same words.
    expect(errorOf(devnet('{ type: node.burst-kill, params: {} }')).split('\n')[0]).toMatchInlineSnapshot(`"<file>:6: \`inject.faults[0].params\` must have exactly one of \`validators\`, \`count\`. Got \`{}\`."`)
    expect(errorOf(devnet('{ type: net.partition, params: { groups: [[0], [1]], sizes: [f] } }')).split('\n')[0]).toMatchInlineSnapshot(`"<file>:6: \`inject.faults[0].params\` must not have \`groups\`, \`sizes\` together. Got \`{"groups":[[0],[1]],"sizes":["f"]}\`."`)
    expect(() => faults['node.burst-kill'].parse({}, 'w')).toThrow('`params` must have exactly one of `validators`, `count`. Got `{}`.')
    expect(() => faults['net.partition'].parse({ groups: [[0], [1]], sizes: ['f'] }, 'w')).toThrow('`params` must not have `groups`, `sizes` together. Got `{"groups":[[0],[1]],"sizes":["f"]}`.')
    expect(errorOf(devnet('{ type: node.burst-kill, params: { validators: [1, 1] } }')).split('\n')[0]).toMatchInlineSnapshot(
      `"<file>:6: \`inject.faults[0].params.validators\` must not repeat an item (items 0 and 1 are equal). Got \`[1,1]\`."`,
    )
  })
})

describe('fault params through the chaos API: the same parser, a 400 with its text', () => {
  const stops: (() => Promise<void>)[] = []
  afterAll(async () => {
    for (const stop of stops.reverse()) await stop()
  })

  it('a wrong type, an out-of-range value and an unknown param are 400s naming the param and the expected value; nothing is applied', async () => {
    // The upstream is never reached: params are refused before a rule is added.
    const proxy = await startRpcProxy({ upstream: 'http://127.0.0.1:9', prng: createPrng(1), name: 'node' })
    stops.push(() => proxy.close())
    const chaos = createChaosApi({ tcp: createProxyRegistry({ prng: createPrng(2) }), rpc: new Map([['node', proxy]]), metrics: createMetrics(), prng: createPrng(3) })
    stops.push(() => chaos.revertAll())
    const server = await startControlServer({ listen: '127.0.0.1:0', proxies: createProxyRegistry({ prng: createPrng(4) }), registerRoutes: [chaos.register] })
    stops.push(() => server.close())
    const inject = async (body: unknown) => {
      const res = await fetch(`${server.url}/chaos/inject`, { method: 'POST', body: JSON.stringify(body) })
      return { status: res.status, body: (await res.json()) as { error: string } }
    }
    expect(await inject({ type: 'rpc.latency', target: 'node', params: { latencyMs: '5ms' } })).toEqual({ status: 400, body: { status: 400, error: '`latencyMs` must be a number between 0 and 600000. Got `"5ms"`.' } })
    expect(await inject({ type: 'rpc.error', target: 'node', params: { http: 418 } })).toEqual({ status: 400, body: { status: 400, error: '`http` must be one of 429, 500, 502, 503, 504. Got `418`.' } })
    expect(await inject({ type: 'rpc.stale', target: 'node', params: { blocks: 3, jitter: 1 } })).toEqual({
      status: 400,
      body: { status: 400, error: '`jitter` is not a known param; expected `blocks`, `methods`, `probability`.' },
    })
    expect(proxy.stats().requests).toBe(0)
    const res = await fetch(`${server.url}/chaos/experiments`)
    expect(((await res.json()) as { active: unknown[] }).active).toEqual([])
  })
})

describe('forkchaos validate / run: a devnet fault in a fork scenario (built CLI)', () => {
  const cli = path.join(import.meta.dirname, '..', 'bin', 'forkchaos.js')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forkchaos-fault-cli-'))
  for (const command of ['validate', 'run'])
    it(`${command}: exit 2 before anything boots, the file, line and field, no stack`, () => {
      const file = path.join(dir, `kind-${command}.yaml`)
      fs.writeFileSync(file, 'name: f\nhypothesis: h\ninject:\n  faults:\n    - { type: net.partition, target: 1 }\n')
      const r = spawnSync(process.execPath, [cli, command, file], { encoding: 'utf8', timeout: 60_000 })
      expect(r.status).toBe(2)
      expect(r.stderr.split('\n')[0]).toBe(
        `forkchaos: ${file}:5: \`inject.faults[0].type\` \`net.partition\` needs a devnet target, and this scenario's target is a fork (\`target.kind: fork\`). A fork scenario takes oracle.*, liquidity.*, dependency.*, time.*, gas.*, chain.*, rpc.*.`,
      )
      expect(r.stderr).not.toMatch(/\n\s+at /)
      expect(r.stdout).not.toMatch(/fork ready/)
    }, 60_000)
})
