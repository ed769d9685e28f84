import * as fs from 'node:fs'
import { InfraError } from '../../errors.js'
import { define, devnetOf, seenIn } from '../../Fault.js'
import * as P from '../../Params.js'
import type { Devnet, DevnetNode, NodeStatus } from '../../targets/devnet.js'
import { clockSkewEnv } from '../../targets/devnet/faketime.js'
import { validatorId } from '../../targets/devnet/validators.js'
import { seenOnDevnet } from '../../experiment/observations.js'

type Via = 'node' | 'faketime'
type State = { id: number; via: Via; offsetMs: number; appliedAtMs: number }

/**
 * One validator's wall clock runs `offsetS` seconds off.
 *
 * `via: node` (the default): the embedded validator's own clock (src/devnet/node/clock.ts) is
 * stepped at runtime through its loopback admin method `fc_setClockOffset`, as a real clock
 * jump hits a running process: no restart, nothing to install. The blocks it proposes carry the
 * skewed time, the drift bound it holds others to reads it; its timers and durations stay on
 * the monotonic clock. Revert sets the offset back to 0.
 *
 * `via: faketime`: for processes forkchaos did not write. The validator's processes (node and
 * Anvil) restart under libfaketime (LD_PRELOAD; Debian's `faketime` package); revert restarts
 * them on the true clock, each time with the validator's build (overrides) kept. `detect` reads
 * what the restarted processes show, not what was asked: LD_PRELOAD and FAKETIME in
 * /proc/<pid>/environ, and the node's wall clock from the `Date` header of its RPC answers.
 * Where libfaketime is missing the scenario ends `skipped`, with the install command.
 *
 * Either way, `detect` reports what the validators showed: the others' rejections of its
 * proposals for timestamp drift, and its own refusals of theirs.
 */
export const clockSkew = define<{ offsetS: number; via: Via }, State>({
  type: 'node.clock-skew',
  summary:
    "Run a validator's wall clock `offsetS` seconds off: `via: node` (default) steps the embedded node's own clock at runtime, `via: faketime` restarts its processes under libfaketime; revert puts the true clock back.",
  target: 'devnet',
  params: P.object({
    offsetS: P.integer({ min: -86_400, max: 86_400, description: 'Clock offset, in seconds (negative: behind).' }),
    via: P.oneOf(['node', 'faketime'], {
      default: 'node',
      description: "`node`: the embedded node's own clock, nothing to install. `faketime`: libfaketime (apt-get install -y faketime); skipped without it.",
    }),
  }),
  prerequisites(params) {
    // Throws PrerequisiteMissingError without the library: the scenario is skipped unbooted.
    if (params.via === 'faketime') clockSkewEnv(params.offsetS)
  },
  async apply(ctx, target, params) {
    const id = validatorId(target, 'node.clock-skew', devnetOf(ctx, 'node.clock-skew').nodes.length)
    const devnet = devnetOf(ctx, 'node.clock-skew')
    const offsetMs = params.offsetS * 1_000
    const appliedAtMs = Date.now()
    if (params.via === 'faketime') {
      // The validator keeps its build (overrides) across both restarts; only the clock changes.
      await devnet.startNode(id, { env: clockSkewEnv(params.offsetS), overrides: devnet.nodes[id]?.overrides ?? {} })
      return { id, via: params.via, offsetMs, appliedAtMs }
    }
    const node = running(devnet, id)
    await node.rpc.request('fc_setClockOffset', [offsetMs])
    // Read back: the node reports the offset it now runs with.
    const status = await node.rpc.request<NodeStatus>('fc_status')
    if (status.clockOffsetMs !== offsetMs)
      throw new InfraError(`Validator ${id} did not take the clock offset.`, { context: { Asked: `${offsetMs} ms`, 'fc_status.clockOffsetMs': String(status.clockOffsetMs) } })
    return { id, via: params.via, offsetMs, appliedAtMs }
  },
  async revert(ctx, state) {
    const devnet = devnetOf(ctx, 'node.clock-skew')
    if (state.via === 'faketime') {
      await devnet.startNode(state.id, { overrides: devnet.nodes[state.id]?.overrides ?? {} })
      return
    }
    // A validator that crashed meanwhile restarts on offset 0: nothing to put back.
    const node = devnet.nodes[state.id]
    if (node?.running) await node.rpc.request('fc_setClockOffset', [0])
  },
  async detect(ctx, state, observations) {
    const devnet = devnetOf(ctx, 'node.clock-skew')
    const node = devnet.nodes[state.id]
    let took: string
    if (state.via === 'faketime') took = node?.running ? await underFaketime(node) : `validator ${state.id} is not running`
    else {
      const status = node?.running ? await node.rpc.request<NodeStatus>('fc_status').catch(() => undefined) : undefined
      const preload = node?.running ? preloadOf(node.pid) : 'unknown'
      took = status
        ? `validator ${state.id} reports a wall-clock offset of ${status.clockOffsetMs} ms (fc_status); its process (pid ${node?.pid}) runs with LD_PRELOAD ${preload}`
        : `validator ${state.id} did not answer fc_status`
    }
    const drift = await driftRejections(devnet, state)
    const seen = [...drift, seenIn(observations) ?? seenOnDevnet(observations, [state.id])].filter((s): s is string => !!s)
    return { took, seen: seen.length ? seen.join('; ') : null }
  },
})

/** The environment a running process was started with, read from /proc (Linux); undefined without /proc. */
function environOf(pid: number): Map<string, string> | undefined {
  try {
    const env = fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')
    return new Map(env.filter((e) => e.includes('=')).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]))
  } catch {
    return undefined
  }
}

/** The LD_PRELOAD a running process was started with, read from /proc (Linux): `unset` or its value. */
function preloadOf(pid: number): string {
  const env = environOf(pid)
  if (!env) return 'unknown (no /proc)'
  const preload = env.get('LD_PRELOAD')
  return preload === undefined ? 'unset' : `=${preload}`
}

/**
 * What the processes restarted under libfaketime show, not what forkchaos asked for: their
 * environment in /proc, and the node's own wall clock as its HTTP server stamps the `Date`
 * header of an answer (Node reads it from `Date.now()`, which libfaketime moves), against ours.
 */
async function underFaketime(node: DevnetNode): Promise<string> {
  const env = (pid: number) => {
    const e = environOf(pid)
    if (!e) return 'an unknown environment (no /proc)'
    return `LD_PRELOAD${e.has('LD_PRELOAD') ? `=${e.get('LD_PRELOAD')}` : ' unset'} FAKETIME${e.has('FAKETIME') ? `=${e.get('FAKETIME')}` : ' unset'}`
  }
  const skewS = await dateHeaderSkewS(node.rpcUrl)
  const clock = skewS === undefined ? 'its RPC answered without a Date header' : `the Date header of its RPC answers runs ${skewS >= 0 ? '+' : ''}${skewS} s from our clock`
  return `validator ${node.id} restarted under libfaketime: its process (pid ${node.pid}) runs with ${env(node.pid)} (/proc/${node.pid}/environ), its Anvil (pid ${node.anvil.pid}) with ${env(node.anvil.pid)}; ${clock}`
}

/** A node's `Date` header (1 s resolution) minus our clock at the midpoint of the request, rounded to whole seconds. */
async function dateHeaderSkewS(rpcUrl: string): Promise<number | undefined> {
  try {
    const sentMs = Date.now()
    const res = await fetch(rpcUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'fc_status', params: [] }),
      signal: AbortSignal.timeout(2_000),
    })
    const midMs = (sentMs + Date.now()) / 2
    await res.arrayBuffer()
    const dateMs = Date.parse(res.headers.get('date') ?? '')
    // The header truncates to the second: its true instant lies within the following 1000 ms.
    return Number.isFinite(dateMs) ? Math.round((dateMs + 500 - midMs) / 1_000) : undefined
  } catch {
    return undefined
  }
}

function running(devnet: Devnet, id: number): DevnetNode {
  const node = devnet.nodes[id]
  if (!node?.running) throw new InfraError(`Validator ${id} is not running: its clock cannot be skewed.`)
  return node
}

type Rejection = { height: number; round: number; proposer: number; field: string; reason: string; at: number }

/**
 * What the validators recorded since the skew: the others' refusals of the skewed validator's
 * proposals for timestamp drift, and its own refusals of theirs (its clock disagrees with theirs).
 */
async function driftRejections(devnet: Devnet, state: State): Promise<string[]> {
  const drift = (r: Rejection) => r.field === 'timestamp' && /from the local clock/.test(r.reason)
  const read = async (n: DevnetNode) => (n.running ? await n.rpc.request<Rejection[]>('fc_rejections').catch(() => []) : [])
  const out: string[] = []
  const byOthers: { node: number; r: Rejection }[] = []
  for (const n of devnet.nodes) {
    if (n.id === state.id) continue
    // Honest clocks: their `at` is the true time, comparable with when the skew was applied.
    for (const r of await read(n)) if (r.proposer === state.id && drift(r) && r.at >= state.appliedAtMs) byOthers.push({ node: n.id, r })
  }
  if (byOthers.length > 0) {
    const nodes = [...new Set(byOthers.map((x) => x.node))].join(', ')
    const first = byOthers[0] as { node: number; r: Rejection }
    out.push(`validators ${nodes} refused ${byOthers.length} proposals of validator ${state.id} for timestamp drift (validator ${first.node} at ${first.r.height}/${first.r.round}: ${first.r.reason})`)
  }
  const self = devnet.nodes[state.id]
  if (self) {
    // Its own records are stamped with its skewed clock.
    const own = (await read(self)).filter((r) => r.proposer !== state.id && drift(r) && r.at >= state.appliedAtMs + state.offsetMs - 1_000)
    if (own.length > 0) out.push(`validator ${state.id} refused ${own.length} proposals of others for timestamp drift (${(own[0] as Rejection).reason})`)
  }
  return out
}
