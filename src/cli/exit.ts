import type { Command } from 'commander'

/** Typed exit codes: 0 all held, 1 a hypothesis failed, 2 bad input, 3 infrastructure. */
export const ExitCode = { ok: 0, failed: 1, badInput: 2, infrastructure: 3 } as const

/** Commands report their exit code through the root program (no process.exit mid-teardown). */
export function setExit(command: Command, code: number) {
  let root = command
  while (root.parent) root = root.parent
  ;(root as Command & { exitCodeResult?: number }).exitCodeResult = code
}
