import type { Command } from 'commander'
import { InputError } from '../../errors.js'
import { onTeardown } from '../../lifecycle.js'
import { watchProxy } from '../../ui/proxy-watch.js'
import { parseUiPort, startUi } from '../../ui/server.js'

type Flags = { control: string; uiPort?: string; uiHost?: string; uiControl?: boolean }

export function uiCommand(program: Command) {
  program
    .command('ui')
    .description('Serve the live view for a running `forkchaos proxy`: each chaos experiment (POST /chaos/inject) on the Tests tab with its state and verdict, faults and toxics on the Timeline, pushed by the proxy as they happen.')
    .option('--control <url>', "the proxy's control server (its --listen)", 'http://127.0.0.1:8474')
    .option('--ui-port <n>', "the live view's port (0: any free port, printed)", '0')
    .option('--ui-host <host>', "the live view's address (default 127.0.0.1: this machine only)")
    .option('--ui-control', 'allow control actions in the page: a revert button per active experiment (POST /chaos/revert/{id})')
    .action(async (flags: Flags) => {
      const control = parseControlUrl(flags.control)
      const port = parseUiPort(flags.uiPort)
      const ui = await startUi({
        host: flags.uiHost ?? '127.0.0.1',
        port,
        control: Boolean(flags.uiControl),
        seed: 0,
        replay: '',
        proxy: control,
        onRevert: async (id) => {
          const res = await fetch(`${control}/chaos/revert/${encodeURIComponent(id)}`, { method: 'POST', headers: { 'user-agent': 'forkchaos-ui' }, signal: AbortSignal.timeout(15_000) })
          return { status: res.status, body: await res.json().catch(() => ({ error: `the control server answered ${res.status} without JSON` })) }
        },
      })
      onTeardown('the live view', () => ui.close())
      // Nothing half-started: if the proxy cannot be reached, the page goes away again (exit 3).
      const watch = await watchProxy(control, ui, { say: (line) => process.stderr.write(`forkchaos ui: ${line}\n`) }).catch(async (error) => {
        await ui.close()
        throw error
      })
      onTeardown('the proxy event stream', () => watch.close())
      process.stdout.write(`forkchaos ui: watching ${control} · live view: ${ui.url}${flags.uiControl ? ' (control actions on: revert)' : ''}\n`)
      process.stdout.write('Ctrl-C stops the view (the proxy and its faults are left as they are).\n')
      await new Promise<never>(() => {})
    })
}

/** `--control`: an http URL with a host and nothing after the port (`http://127.0.0.1:8474`). */
export function parseControlUrl(raw: string): string {
  const bad = (why: string) => new InputError(`\`--control\` must be the proxy control server's http URL, such as http://127.0.0.1:8474 (${why}). Got \`${raw}\`.`)
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(raw)) throw bad('it starts with http://')
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw bad('not a URL')
  }
  if (url.protocol !== 'http:') throw bad(`a ${url.protocol} URL`)
  if (url.pathname !== '/' || url.search || url.hash || url.username || url.password) throw bad('no path, query or credentials')
  return `http://${url.host}`
}
