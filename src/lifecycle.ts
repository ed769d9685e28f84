/**
 * Teardown on every way out. Code that changes the world (applies a fault, starts a process)
 * registers an undo here; `runTeardown` runs the undos last-first. SIGINT and SIGTERM run them
 * and exit with 130 / 143; the process registry's exit hook kills whatever is still left.
 */
type Undo = { label: string; run: () => Promise<void> | void }

const undos: Undo[] = []
let signalsInstalled = false
let tearingDown: Promise<void> | undefined

export function onTeardown(label: string, run: Undo['run']): () => void {
  const undo = { label, run }
  undos.push(undo)
  installSignalHandlers()
  return () => {
    const i = undos.indexOf(undo)
    if (i >= 0) undos.splice(i, 1)
  }
}

export function runTeardown(): Promise<void> {
  tearingDown ??= (async () => {
    while (undos.length > 0) {
      const undo = undos.pop() as Undo
      try {
        await undo.run()
      } catch (error) {
        process.stderr.write(`forkchaos: teardown of ${undo.label} failed: ${(error as Error).message}\n`)
      }
    }
  })().finally(() => {
    tearingDown = undefined
  })
  return tearingDown
}

function installSignalHandlers() {
  if (signalsInstalled) return
  signalsInstalled = true
  const handle = (signal: NodeJS.Signals, code: number) => {
    process.stderr.write(`\nforkchaos: ${signal}: reverting faults and stopping processes…\n`)
    // A second signal while tearing down exits at once; the exit hook still kills our groups.
    process.once(signal, () => process.exit(code))
    const timer = setTimeout(() => process.exit(code), 10_000)
    timer.unref()
    runTeardown().finally(() => process.exit(code))
  }
  process.once('SIGINT', () => handle('SIGINT', 130))
  process.once('SIGTERM', () => handle('SIGTERM', 143))
}
