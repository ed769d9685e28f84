import { Command } from 'commander'
import { describe, expect, it } from 'vitest'
import { listCommand } from '../src/cli/commands/list.js'
import { faults } from '../src/faults/registry.js'

/** `forkchaos list`, in process: what it prints about faults comes from each fault's declaration. */
async function list(args: string[]): Promise<string> {
  const program = new Command().exitOverride()
  listCommand(program)
  let out = ''
  const write = process.stdout.write
  process.stdout.write = ((chunk: string) => {
    out += chunk
    return true
  }) as typeof process.stdout.write
  try {
    await program.parseAsync(['node', 'forkchaos', 'list', ...args])
  } finally {
    process.stdout.write = write
  }
  return out
}

describe('forkchaos list: faults', () => {
  it('prints each fault with the target kind it needs, its summary and one line per param', async () => {
    const text = await list(['scenarios/defi'])
    const block = text.slice(text.indexOf('  rpc.latency'), text.indexOf('  rpc.timeout'))
    expect(block).toMatchInlineSnapshot(`
      "  rpc.latency                [proxy] Delay matching JSON-RPC calls by \`latencyMs\` ± \`jitterMs\`.
                                     latencyMs: number 0–600000, required. Added delay, in ms.
                                     jitterMs: number 0–600000, default 0. Uniform ± spread around \`latencyMs\`, in ms (seeded).
                                     methods: list of string (≤ 256 chars) (at most 256 items), default ["*"]. Methods to match (exact or prefix*); default all.
                                     probability: number 0–1, default 1. Share of matching calls hit (seeded).
      "
    `)
    for (const f of Object.values(faults)) expect(text).toContain(`  ${f.type.padEnd(26)} [${f.target}] ${f.summary}\n`)
  })

  it('--json carries the same declaration: target kind, params text and the params schema the scenario schema publishes', async () => {
    const json = JSON.parse(await list(['scenarios/defi', '--json'])) as { faults: { type: string; target: string; params: string[]; paramsSchema: unknown }[] }
    // Every registered fault, once (the count follows the registry: a fault added is listed too).
    expect(json.faults).toHaveLength(Object.keys(faults).length)
    for (const f of json.faults) {
      const def = faults[f.type as keyof typeof faults]
      expect(f).toEqual({ type: def.type, target: def.target, summary: def.summary, params: def.paramsText, paramsSchema: JSON.parse(JSON.stringify(def.paramsSchema)) })
    }
  })
})
