import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import fc from 'fast-check'
import { parse } from 'yaml'
import { afterAll, describe, expect, it } from 'vitest'
import { commandsFor } from '../src/cli/main.js'
import { packageRoot } from '../src/contracts.js'
import { scenarioSchema } from '../src/scenario/schema.js'
import { loadValidator, schemaHash, standaloneValidatorSource } from '../src/scenario/validate-schema.js'
import { VERSION } from '../src/version.js'

// Inside the package, so that the generated module's require('ajv/dist/runtime/…') resolves.
const dir = fs.mkdtempSync(path.join(packageRoot, 'node_modules', '.forkchaos-validator-test-'))
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

const yamlFiles = (root: string): string[] =>
  fs.readdirSync(root, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? yamlFiles(path.join(root, e.name)) : e.name.endsWith('.yaml') ? [path.join(root, e.name)] : []))

/** A value at a path of `value` replaced (paths picked by index, so a seed replays them). */
function mutate(value: unknown, picks: number[], replacement: unknown): unknown {
  if (picks.length === 0 || value === null || typeof value !== 'object') return replacement
  const keys = Object.keys(value)
  if (keys.length === 0) return replacement
  const key = keys[(picks[0] as number) % keys.length] as string
  const copy: Record<string, unknown> = Array.isArray(value) ? [...value] : { ...value }
  copy[key] = mutate((value as Record<string, unknown>)[key], picks.slice(1), replacement)
  return copy
}

describe('the build-time scenario validator (ajv standalone code)', () => {
  const file = path.join(dir, 'scenario-validator.cjs')
  const source = standaloneValidatorSource()
  fs.writeFileSync(file, source)
  const built = loadValidator(file)
  const compiled = loadValidator(path.join(dir, 'missing.cjs'))

  it('is used when its schema hash matches, and the schema is compiled when it is stale or missing', () => {
    expect(built.origin).toBe('build')
    expect(compiled.origin).toBe('compiled')
    const stale = path.join(dir, 'stale.cjs')
    fs.writeFileSync(stale, source.replace(schemaHash(), '0'.repeat(64)))
    expect(loadValidator(stale).origin).toBe('compiled')
    // A schema that changed after the build (any field) no longer matches the module's hash.
    expect(schemaHash({ ...scenarioSchema, title: 'changed' })).not.toBe(schemaHash())
  })

  it('is reproducible: the same schema gives the same bytes', () => {
    expect(standaloneValidatorSource()).toBe(source)
  })

  it('reports exactly the errors the compiled schema reports, on every shipped scenario and 300 seeded mutations of them', () => {
    const docs = [...yamlFiles(path.join(packageRoot, 'scenarios')), ...yamlFiles(path.join(packageRoot, 'test', 'fixtures'))].flatMap((f) => {
      try {
        return [parse(fs.readFileSync(f, 'utf8')) as unknown]
      } catch {
        return []
      }
    })
    expect(docs.length).toBeGreaterThan(20)
    const same = (raw: unknown) => {
      const a = built.validate(raw)
      const b = compiled.validate(raw)
      expect(a).toBe(b)
      expect(built.validate.errors ?? null).toEqual(compiled.validate.errors ?? null)
      return a
    }
    for (const d of docs) same(d)
    // The duration keywords, both forms: over the 1 h bound as a string and as a number.
    for (const duration of ['2h', 7_200_000]) {
      const raw = { name: 'x', hypothesis: 'h', inject: { duration, faults: [], steps: [] } }
      expect(same(raw)).toBe(false)
      expect(built.validate.errors?.map((e) => e.keyword)).toContain('maxDurationMs')
    }
    let invalid = 0
    const replacements = fc.oneof(fc.constantFrom('2h', '0ms', '25h', -1, 1e308, null, [], {}, 'x'.repeat(300), true), fc.integer(), fc.string({ maxLength: 8 }))
    fc.assert(
      fc.property(fc.nat({ max: docs.length - 1 }), fc.array(fc.nat(), { minLength: 1, maxLength: 6 }), replacements, (i, picks, replacement) => {
        if (!same(mutate(docs[i], picks, replacement))) invalid += 1
      }),
      { seed: 13, numRuns: 300 },
    )
    // The comparison covered refusals, not only valid files.
    expect(invalid).toBeGreaterThan(100)
  })
})

describe('the CLI loads only the command it runs', () => {
  it('registers none for --version, the one named, and all for help or an unknown word', () => {
    const argv = (...a: string[]) => ['node', 'forkchaos', ...a]
    expect(commandsFor(argv('--version'))).toEqual([])
    expect(commandsFor(argv('validate', 'scenarios/defi'))).toEqual(['validate'])
    expect(commandsFor(argv('devnet', 'up', '--detach'))).toEqual(['devnet'])
    const all = commandsFor(argv('--help'))
    expect(all).toEqual(expect.arrayContaining(['run', 'fork', 'devnet', 'proxy', 'list', 'validate', 'export', 'cleanup']))
    expect(commandsFor(argv('help', 'run'))).toEqual(all)
    expect(commandsFor(argv('nonsense'))).toEqual(all)
    expect(commandsFor(argv())).toEqual(all)
  })

  /** Runs bin/forkchaos.js with a load hook; the module files (URLs) it opened, in order. */
  const openedBy = (name: string, args: string[]) => {
    const out = path.join(dir, `${name}.txt`)
    const hook = `data:text/javascript,${encodeURIComponent(`import fs from 'node:fs'; export async function load(url, context, next) { fs.appendFileSync(${JSON.stringify(out)}, url + '\\n'); return next(url, context) }`)}`
    const register = `data:text/javascript,${encodeURIComponent(`import { register } from 'node:module'; register(${JSON.stringify(hook)})`)}`
    const run = spawnSync(process.execPath, ['--import', register, 'bin/forkchaos.js', ...args], { cwd: packageRoot, encoding: 'utf8', timeout: 60_000 })
    expect(run.status, run.stderr).toBe(0)
    return { stdout: run.stdout, urls: fs.readFileSync(out, 'utf8').split('\n').filter(Boolean) }
  }

  // Runs dist/ (bin/forkchaos.js): build with `npx tsc -p tsconfig.json` first.
  it('validate opens neither the experiment engine nor its targets (they load on the first run), nor any viem module', () => {
    const { stdout, urls: opened } = openedBy('validate', ['validate', 'scenarios/defi'])
    expect(stdout).toMatch(/ok {2}scenarios\/defi\/reorg\.yaml/)
    // The hook saw the loader, so an empty list cannot pass.
    expect(opened.some((u) => u.endsWith('/dist/src/scenario/loader.js'))).toBe(true)
    const runTime = opened.filter((u) => /\/dist\/src\/(experiment\/experiment|experiment\/targets\/|topology\/endpoints)[^/]*\.js$/.test(u))
    expect(runTime).toEqual([])
     // viem's root alone is ~360 module files (a quarter of a second of CPU on an idle core):
    // the loader's graph uses ox subpaths and abitype (src/util/evm.ts), and viem's accounts
    // load when a devnet starts.
    expect(opened.filter((u) => u.includes('/node_modules/viem/'))).toEqual([])
  })

  it('a bare --version opens only bin/forkchaos.js and the version module', () => {
    const { stdout, urls } = openedBy('version', ['--version'])
    expect(stdout).toBe(`${VERSION}\n`)
    expect(urls.map((u) => u.replace(/^.*\/(bin|dist\/src)\//, '$1/'))).toEqual(['bin/forkchaos.js', 'dist/src/version.js'])
  })
})
