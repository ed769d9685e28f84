/**
 * For a child that must die with forkchaos by design (the keeper, the flooder): it runs in a
 * process group of its own, so no terminal signal reaches it, and a SIGKILLed forkchaos sends
 * nothing. So the child watches: every `intervalMs` it checks that its parent is still the
 * forkchaos that started it (`FORKCHAOS_OWNER_PID`, set by the process owner) — an orphan is
 * re-parented, so `process.ppid` changes — and an IPC channel's close ends it at once. On
 * either, `onOrphaned` runs and the process exits with `ORPHANED_EXIT_CODE`.
 * `forkchaos cleanup` is the second line: it kills the group by its pid file.
 */
export const ORPHANED_EXIT_CODE = 70

/** The default poll of the parent, in ms. */
export const PARENT_POLL_MS = 250

export function watchParent(options: { intervalMs?: number; onOrphaned?: () => void } = {}): () => void {
  const owner = Number(process.env.FORKCHAOS_OWNER_PID)
  // Started by hand (no owner named): the parent at start is the one to watch.
  const expected = Number.isInteger(owner) && owner > 1 ? owner : process.ppid
  const orphaned = () => {
    options.onOrphaned?.()
    process.stderr.write(`forkchaos child ${process.pid}: forkchaos (pid ${expected}) is gone; exiting.\n`)
    process.exit(ORPHANED_EXIT_CODE)
  }
  const check = () => {
    if (process.ppid !== expected) orphaned()
  }
  check()
  // unref: the watch alone never keeps the child alive once its work is done.
  const timer = setInterval(check, options.intervalMs ?? PARENT_POLL_MS)
  timer.unref()
  if (process.channel) process.once('disconnect', orphaned)
  return () => {
    clearInterval(timer)
    process.off('disconnect', orphaned)
  }
}
