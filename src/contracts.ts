import * as fs from 'node:fs'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Abi, Hex } from 'viem'
import { InfraError } from './errors.js'

export type Artifact = { abi: Abi; bytecode: Hex; deployedBytecode: Hex }
type Artifacts = { solcVersion: string; contracts: Record<string, Artifact>; variants: Record<string, Artifact> }

/** The package root: two levels up from src/ or dist/src/. */
export const packageRoot = (() => {
  let dir = path.dirname(fileURLToPath(import.meta.url))
  while (!fs.existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir)
  return dir
})()

let cache: Artifacts | undefined

/** Compiled contracts from `npm run build` (contracts/ compiled offline with npm solc). */
export function artifact(name: string): Artifact {
  if (!cache) {
    const file = path.join(packageRoot, 'dist', 'contracts', 'artifacts.json')
    if (!fs.existsSync(file))
      throw new InfraError('The compiled contracts are missing.', {
        context: { File: file },
        hint: 'Run `npm ci` (or `npm run build`): it compiles contracts/ with solc.',
      })
    cache = JSON.parse(fs.readFileSync(file, 'utf8')) as Artifacts
  }
  const found = cache.contracts[name] ?? cache.variants[name]
  if (!found)
    throw new InfraError(`No compiled contract named \`${name}\`.`, {
      context: { Known: [...Object.keys(cache.contracts), ...Object.keys(cache.variants)].join(', ') },
    })
  return found
}
