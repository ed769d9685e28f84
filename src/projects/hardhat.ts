import * as fs from 'node:fs'
import * as path from 'node:path'
import type { Abi, Address } from 'viem'
import { getAddress, isAddress } from '../util/evm.js'
import { isDir, listDirs, ProjectError, type ProjectContracts, readProjectJson } from './foundry.js'

/**
 * A Hardhat project as `contracts:` names it: `{ hardhat: "../my-protocol", deployment: "chain-1" }`.
 * Addresses come from an Ignition deployment (`ignition/deployments/<deployment>/deployed_addresses.json`,
 * keys `<Module>#<Contract>`), ABIs from Hardhat's `artifacts/<path>/<Source>.sol/<Name>.json`.
 * `deployment` may be left out when the project has only one.
 */
export type HardhatRef = { hardhat: string; deployment?: string }

/** How deep `artifacts/` is searched for `<Name>.json` (source folders nest). */
const maxArtifactDepth = 8

export function loadHardhat(ref: HardhatRef, base: string): ProjectContracts {
  const root = path.resolve(base, ref.hardhat)
  if (!isDir(root)) throw new ProjectError(`\`contracts.hardhat\` names ${root}, which is not a directory (a Hardhat project, with hardhat.config.*).`)
  if (!fs.readdirSync(root).some((f) => /^hardhat\.config\.(js|cjs|mjs|ts|cts|mts)$/.test(f))) throw new ProjectError(`${root} has no hardhat.config.{js,cjs,mjs,ts}: \`contracts.hardhat\` names a Hardhat project's root.`)
  const deployments = path.join(root, 'ignition', 'deployments')
  let deployment = ref.deployment
  if (deployment === undefined) {
    const all = listDirs(deployments)
    if (all.length !== 1) throw new ProjectError(`${deployments} holds ${all.length === 0 ? 'no' : all.length} deployment${all.length === 1 ? '' : 's'}${all.length ? ` (${all.join(', ')})` : ''}: ${all.length ? 'name one with `contracts.deployment`' : 'deploy with Hardhat Ignition first'}.`)
    deployment = all[0] as string
  }
  const file = path.join(deployments, deployment, 'deployed_addresses.json')
  if (!fs.existsSync(file)) throw new ProjectError(`${file} does not exist: no Ignition deployment \`${deployment}\` (deployments there: ${listDirs(deployments).join(', ') || 'none'}).`)
  const deployed = readProjectJson(file)
  if (!deployed || typeof deployed !== 'object' || Array.isArray(deployed)) throw new ProjectError(`${file} is not an object of "<Module>#<Contract>": address.`)
  const addresses: Record<string, Address> = {}
  for (const [key, value] of Object.entries(deployed as Record<string, unknown>)) {
    const name = key.slice(key.indexOf('#') + 1)
    if (!key.includes('#') || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) || typeof value !== 'string' || !isAddress(value))
      throw new ProjectError(`${file}: \`${key}\` is not "<Module>#<Contract>" with an address.`)
    if (addresses[name]) throw new ProjectError(`${file}: \`${name}\` is deployed twice (${addresses[name]} and ${getAddress(value)}); name the one you mean by address in \`contracts\`.`)
    addresses[name] = getAddress(value)
  }
  if (Object.keys(addresses).length === 0) throw new ProjectError(`${file} deploys no contract.`)
  const artifacts = path.join(root, 'artifacts')
  const abis: Record<string, Abi> = {}
  for (const name of Object.keys(addresses)) {
    const artifact = findArtifact(artifacts, `${name}.json`, 0)
    if (!artifact) throw new ProjectError(`No artifact for \`${name}\` under ${artifacts} (artifacts/…/<Source>.sol/${name}.json): run \`npx hardhat compile\`.`)
    const abi = (readProjectJson(artifact) as { abi?: unknown }).abi
    if (!Array.isArray(abi)) throw new ProjectError(`${artifact} has no \`abi\` list.`)
    abis[name] = abi as Abi
  }
  const relative = path.relative(process.cwd(), file)
  return { addresses, abis, source: relative.startsWith('..') ? file : relative }
}

/** `<Source>.sol/<Name>.json` anywhere under artifacts/ (not build-info/, not debug files). */
function findArtifact(dir: string, want: string, depth: number): string | undefined {
  if (depth > maxArtifactDepth) return undefined
  for (const sub of listDirs(dir)) {
    if (depth === 0 && sub === 'build-info') continue
    const here = path.join(dir, sub)
    if (sub.endsWith('.sol') && fs.existsSync(path.join(here, want))) return path.join(here, want)
    const deeper = findArtifact(here, want, depth + 1)
    if (deeper) return deeper
  }
  return undefined
}

