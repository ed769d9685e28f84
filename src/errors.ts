/**
 * One base error for the toolkit. The text reads: a short message, then `Key: value`
 * context lines, then an optional hint for the CLI user.
 *
 * `exitCode` is what the CLI exits with when this error reaches it:
 * 2 for bad input (a scenario file, a flag, a body), 3 for infrastructure trouble.
 */
export class ForkchaosError extends Error {
  override name = 'ForkchaosError'
  readonly shortMessage: string
  readonly exitCode: 2 | 3
  readonly context: Record<string, string>
  readonly hint: string | undefined

  constructor(
    shortMessage: string,
    options: {
      exitCode?: 2 | 3
      context?: Record<string, string | number | undefined>
      hint?: string
      cause?: unknown
    } = {},
  ) {
    const context: Record<string, string> = {}
    for (const [k, v] of Object.entries(options.context ?? {}))
      if (v !== undefined) context[k] = String(v)
    const lines = [shortMessage]
    const keys = Object.entries(context)
    if (keys.length > 0) lines.push('', ...keys.map(([k, v]) => `${k}: ${v}`))
    if (options.hint) lines.push('', `Hint: ${options.hint}`)
    super(lines.join('\n'), options.cause === undefined ? undefined : { cause: options.cause })
    this.shortMessage = shortMessage
    this.exitCode = options.exitCode ?? 3
    this.context = context
    this.hint = options.hint
  }
}

/** Bad input: a scenario file, a CLI flag, a fault's params. Exit code 2. */
export class InputError extends ForkchaosError {
  override name = 'InputError'
  constructor(
    shortMessage: string,
    options: { context?: Record<string, string | number | undefined>; hint?: string } = {},
  ) {
    super(shortMessage, { ...options, exitCode: 2 })
  }
}

/** The experiment could not run: a process did not start, a port, an RPC. Exit code 3. */
export class InfraError extends ForkchaosError {
  override name = 'InfraError'
  constructor(
    shortMessage: string,
    options: { context?: Record<string, string | number | undefined>; hint?: string; cause?: unknown } = {},
  ) {
    super(shortMessage, { ...options, exitCode: 3 })
  }
}

/**
 * A prerequisite is missing on this machine (a Debian package, needed only for processes
 * forkchaos did not write). A scenario that meets it ends `skipped`, never `error`; `install`
 * is the command that provides it.
 */
export class PrerequisiteMissingError extends ForkchaosError {
  override name = 'PrerequisiteMissingError'
  readonly install: string
  constructor(
    shortMessage: string,
    options: { install: string; context?: Record<string, string | number | undefined> },
  ) {
    super(shortMessage, { exitCode: 3, ...(options.context ? { context: options.context } : {}), hint: `Install it: ${options.install}` })
    this.install = options.install
  }
}

/**
 * The protocol under test reverted while its target was being set up (a vault build whose normal
 * `cycle()` reverts on the embedded chain's history, say). That is a finding about the protocol,
 * not a broken machine: each scenario on that target is reported `error` with the step and the
 * revert reason, instead of the run ending without a report.
 */
export class SetupRevertedError extends InfraError {
  override name = 'SetupRevertedError'
  readonly step: string
  readonly revertReason: string
  constructor(step: string, revertReason: string, context: Record<string, string | number | undefined> = {}) {
    super(`The target's setup reverted at ${step}: ${revertReason}.`, { context })
    this.step = step
    this.revertReason = revertReason
  }
}
