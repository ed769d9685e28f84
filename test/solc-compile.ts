// Compiles a small Solidity source for a test with the npm solc (as scripts/build-contracts.mjs
// does for contracts/), cached on disk by the source's hash so a re-run does not pay for it again.
import { createHash } from 'node:crypto'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import type { Abi, Hex } from 'viem'

export type Compiled = Record<string, { abi: Abi; bytecode: Hex; deployedBytecode: Hex }>

export async function compileSolidity(source: string): Promise<Compiled> {
  const { default: solc } = (await import('solc')) as unknown as { default: { compile(input: string): string; version(): string } }
  const key = createHash('sha256').update(source).update(solc.version()).digest('hex').slice(0, 16)
  const cache = path.join(os.tmpdir(), `forkchaos-solc-${key}.json`)
  if (fs.existsSync(cache)) return JSON.parse(fs.readFileSync(cache, 'utf8')) as Compiled
  const input = {
    language: 'Solidity',
    sources: { 'Test.sol': { content: source } },
    settings: { evmVersion: 'cancun', optimizer: { enabled: true, runs: 200 }, outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } } },
  }
  const output = JSON.parse(solc.compile(JSON.stringify(input))) as {
    errors?: { severity: string; formattedMessage: string }[]
    contracts: Record<string, Record<string, { abi: Abi; evm: { bytecode: { object: string }; deployedBytecode: { object: string } } }>>
  }
  const errors = (output.errors ?? []).filter((e) => e.severity === 'error')
  if (errors.length > 0) throw new Error(errors.map((e) => e.formattedMessage).join('\n'))
  const out: Compiled = {}
  for (const [name, c] of Object.entries(output.contracts['Test.sol'] ?? {}))
    out[name] = { abi: c.abi, bytecode: `0x${c.evm.bytecode.object}`, deployedBytecode: `0x${c.evm.deployedBytecode.object}` }
  const tmp = `${cache}.${process.pid}`
  fs.writeFileSync(tmp, JSON.stringify(out))
  fs.renameSync(tmp, cache)
  return out
}
