// Vitest's global setup: after the whole run, stop what a timed-out or crashed test left behind.
// `cleanupStale` signals only processes whose recorded owner (the test worker that started them)
// is gone, by pid and group, after checking the leader's command line: a test run beside this one
// (its workers alive) keeps its processes.
import { cleanupStale } from '../src/process/registry.js'

export default function setup() {
  return async function teardown() {
    const { stopped, lingering } = await cleanupStale()
    if (stopped.length > 0)
      console.warn(`forkchaos tests: stopped ${stopped.length} process(es) a test left behind: ${stopped.map((e) => `${e.kind} ${e.label ?? ''} pid ${e.pid}`).join(', ')}`)
    if (lingering.length > 0) console.warn(`forkchaos tests: ${lingering.length} process group(s) still exiting: ${lingering.map((e) => e.pid).join(', ')}`)
  }
}
