import { spawn } from 'node:child_process'
import * as path from 'node:path'
import { packageRoot } from '../contracts.js'
import { InfraError } from '../errors.js'
import { onTeardown } from '../lifecycle.js'
import type { KeeperOptions, KeeperStats } from './keeper.js'

/** Runs the reference keeper as its own process (its own event loop, as a real bot) and returns its stats. */
export function spawnKeeper(options: KeeperOptions): Promise<KeeperStats> {
  const main = path.join(packageRoot, 'dist', 'src', 'keeper', 'main.js')
  const child = spawn(process.execPath, [main, JSON.stringify(options)], { stdio: ['ignore', 'pipe', 'pipe'] })
  const unregister = onTeardown('keeper', () => {
    child.kill('SIGKILL')
  })
  let out = ''
  let err = ''
  child.stdout.on('data', (c: Buffer) => (out += c.toString()))
  child.stderr.on('data', (c: Buffer) => (err += c.toString()))
  return new Promise((resolve, reject) => {
    child.once('error', (cause) => reject(new InfraError('The reference keeper failed to start.', { context: { Entry: main }, cause })))
    child.once('exit', (code) => {
      unregister()
      try {
        resolve(JSON.parse(out.trim().split('\n').pop() ?? '') as KeeperStats)
      } catch {
        reject(new InfraError('The reference keeper exited without stats.', { context: { 'Exit code': code ?? 'signal', Stderr: err.slice(-500) }, hint: 'Run `npm run build`: the keeper runs from dist/.' }))
      }
    })
  })
}
