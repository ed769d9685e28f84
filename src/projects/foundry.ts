import * as fs from 'node:fs'
import * as path from 'node:path'
import type { Abi, Address } from 'viem'
import { getAddress, isAddress } from '../util/evm.js'

/**
 * A Foundry project as `contracts:` names it: `{ foundry: "../my-protocol", script: "Deploy.s.sol",
 * chainId: 1 }`. Addresses come from the script's last broadcast
 * (`broadcast/<script>/<chainId>/run-latest.json`, every CREATE/CREATE2 by its `contractName`),
 * ABIs from `out/<Source>.sol/<Name>.json`. `script` and `chainId` may be left out when the
 * project has only one of each.
 */
export type FoundryRef = { foundry: string; script?: string; chainId?: number }

export type ProjectContracts = { addresses: Record<string, Address>; abis: Record<string, Abi>; source: string }

/** The most a broadcast or artifact file may be (a larger one is refused, not read whole). */
const maxFileBytes = 32 * 1024 * 1024

/**
 * Reads the project's deployed contracts. `dir` is resolved against `base` (the scenario file's
 * directory). A problem is a `ProjectError` whose message names the file or directory.
 */
export function loadFoundry(ref: FoundryRef, base: string): ProjectContracts {
  const root = path.resolve(base, ref.foundry)
  if (!isDir(root)) throw new ProjectError(`\`contracts.foundry\` names ${root}, which is not a directory (a Foundry project, with foundry.toml).`)
  if (!fs.existsSync(path.join(root, 'foundry.toml'))) throw new ProjectError(`${root} has no foundry.toml: \`contracts.foundry\` names a Foundry project's root.`)
  const broadcast = path.join(root, 'broadcast')
  const script = ref.script ?? only(broadcast, 'script', 'contracts.script')
  const scriptDir = path.join(broadcast, script)
  if (!isDir(scriptDir)) throw new ProjectError(`${scriptDir} does not exist: no broadcast of \`${script}\` (run \`forge script ${script} --broadcast\`; broadcasts there: ${listDirs(broadcast).join(', ') || 'none'}).`)
  const chainId = ref.chainId !== undefined ? String(ref.chainId) : only(scriptDir, 'chain id', 'contracts.chainId')
  const file = path.join(scriptDir, chainId, 'run-latest.json')
  const run = readProjectJson(file) as { transactions?: { transactionType?: string; contractName?: string | null; contractAddress?: string | null }[] }
  if (!Array.isArray(run.transactions)) throw new ProjectError(`${file} has no \`transactions\` list: is it a forge broadcast?`)
  const addresses: Record<string, Address> = {}
  for (const [i, tx] of run.transactions.entries()) {
    if (tx.transactionType !== 'CREATE' && tx.transactionType !== 'CREATE2') continue
    const name = tx.contractName
    if (typeof name !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) || typeof tx.contractAddress !== 'string' || !isAddress(tx.contractAddress))
      throw new ProjectError(`${file}: transactions[${i}] is a ${tx.transactionType} without a contract name and address.`)
    if (addresses[name]) throw new ProjectError(`${file}: \`${name}\` is deployed twice (${addresses[name]} and ${getAddress(tx.contractAddress)}); name the one you mean by address in \`contracts\`.`)
    addresses[name] = getAddress(tx.contractAddress)
  }
  if (Object.keys(addresses).length === 0) throw new ProjectError(`${file} deploys no contract.`)
  const abis: Record<string, Abi> = {}
  const out = path.join(root, 'out')
  for (const name of Object.keys(addresses)) {
    const artifact = listDirs(out)
      .map((d) => path.join(out, d, `${name}.json`))
      .find((f) => fs.existsSync(f))
    if (!artifact) throw new ProjectError(`No ABI for \`${name}\` under ${out} (out/<Source>.sol/${name}.json): run \`forge build\`.`)
    const abi = (readProjectJson(artifact) as { abi?: unknown }).abi
    if (!Array.isArray(abi)) throw new ProjectError(`${artifact} has no \`abi\` list.`)
    abis[name] = abi as Abi
  }
  const relative = path.relative(process.cwd(), file)
  return { addresses, abis, source: relative.startsWith('..') ? file : relative }
}

/** The one entry of a directory (a project with one script, or one chain), or an error listing them. */
function only(dir: string, what: string, field: string): string {
  const entries = listDirs(dir)
  if (entries.length === 1) return entries[0] as string
  throw new ProjectError(`${dir} holds ${entries.length === 0 ? 'no' : entries.length} ${what} director${entries.length === 1 ? 'y' : 'ies'}${entries.length ? ` (${entries.join(', ')})` : ''}: name one with \`${field}\`.`)
}

/** The sorted names of a directory's subdirectories; none when it cannot be read. */
export function listDirs(dir: string): string[] {
  try {
    return fs.readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name).sort()
  } catch {
    return []
  }
}

export const isDir = (p: string) => fs.statSync(p, { throwIfNoEntry: false })?.isDirectory() === true

/** A project file as JSON, refused over the size limit or when it does not parse. */
export function readProjectJson(file: string): unknown {
  const size = fs.statSync(file, { throwIfNoEntry: false })?.size
  if (size === undefined) throw new ProjectError(`${file} does not exist.`)
  if (size > maxFileBytes) throw new ProjectError(`${file} is larger than ${maxFileBytes} bytes (32 MiB), the limit for a project file.`)
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'))
  } catch (error) {
    throw new ProjectError(`${file} is not JSON: ${(error as Error).message}`)
  }
}

/** A project that cannot be read as `contracts:` names it (the loader makes it an exit-2 error with the scenario's file and line). */
export class ProjectError extends Error {
  override name = 'ProjectError'
}
