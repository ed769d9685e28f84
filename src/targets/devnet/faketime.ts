import * as fs from 'node:fs'
import { PrerequisiteMissingError } from '../../errors.js'

/** Where Debian's `faketime` package puts libfaketime. */
export const FAKETIME_LIB = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1'

/** The libfaketime to preload: `FORKCHAOS_FAKETIME_LIB` when set, else Debian's path. */
export function faketimeLib(): string {
  return process.env.FORKCHAOS_FAKETIME_LIB || FAKETIME_LIB
}

/**
 * The environment that runs a process `offsetS` seconds off through libfaketime (LD_PRELOAD),
 * for processes forkchaos did not write. Throws `PrerequisiteMissingError` (the scenario ends
 * `skipped`) when the library is not there.
 */
export function clockSkewEnv(offsetS: number, lib = faketimeLib()): Record<string, string> {
  if (!fs.existsSync(lib))
    throw new PrerequisiteMissingError(`libfaketime is not installed (${lib}).`, { install: 'apt-get install -y faketime', context: { Library: lib } })
  return { LD_PRELOAD: lib, FAKETIME: `${offsetS >= 0 ? '+' : ''}${offsetS}s`, FAKETIME_DONT_FAKE_MONOTONIC: '1', FAKETIME_NO_CACHE: '1' }
}
