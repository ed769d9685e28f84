import * as fs from 'node:fs'
import { InfraError } from '../../errors.js'
import { define, num, seenIn, str } from '../../Fault.js'
import type { Devnet, DevnetNode, NodeStatus } from '../../targets/devnet.js'
import { clockSkewEnv } from '../../targets/devnet.js'
import { devnetOf, validatorId } from '../devnet-common.js'

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
 * them on the true clock. Where libfaketime is missing the scenario ends `skipped`, with the
 * install command.
 *
 * Either way, `detect` reports what the validators showed: the others' rejections of its
 * proposals for timestamp drift, and its own refusals of theirs.
 */
export const clockSkew = define<{ offsetS: number; via: Via }, State>({
  type: 'node.clock-skew',
  summary:
    "Run a validator's wall clock `offsetS` seconds off: `via: node` (default) steps the embedded node's own clock at runtime, `via: faketime` restarts its processes under libfaketime; revert puts the true clock back.",
  paramsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['offsetS'],
    properties: {
      offsetS: { type: 'integer', minimum: -86_400, maximum: 86_400 },
      via: { enum: ['node', 'faketime'], default: 'node', description: '`node`: the embedded node\'s own clock, nothing to install. `faketime`: libfaketime (apt-get install -y faketime); skipped without it.' },
    },
  },
  parse: (raw, where) => ({
    offsetS: num(raw, 'offsetS', where, { min: -86_400, max: 86_400, integer: true }),
    via: str(raw, 'via', where, { default: 'node', oneOf: ['node', 'faketime'] }) as Via,
  }),
  async apply(ctx, target, params) {
    const id = validatorId(target, 'node.clock-skew')
    const devnet = devnetOf(ctx, 'node.clock-skew')
    const offsetMs = params.offsetS * 1_000
    const appliedAtMs = Date.now()
    if (params.via === 'faketime') {
      await devnet.startNode(id, { env: clockSkewEnv(params.offsetS) })
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
      await devnet.startNode(state.id)
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
    if (state.via === 'faketime') took = `validator ${state.id} runs under libfaketime with FAKETIME=${node?.env.FAKETIME ?? '(none)'}`
    else {
      const status = node?.running ? await node.rpc.request<NodeStatus>('fc_status').catch(() => undefined) : undefined
      const preload = node?.running ? preloadOf(node.pid) : 'unknown'
      took = status
        ? `validator ${state.id} reports a wall-clock offset of ${status.clockOffsetMs} ms (fc_status); its process (pid ${node?.pid}) runs with LD_PRELOAD ${preload}`
        : `validator ${state.id} did not answer fc_status`
    }
    const drift = await driftRejections(devnet, state)
    const seen = [...drift, seenIn(observations)].filter((s): s is string => !!s)
    return { took, seen: seen.length ? seen.join('; ') : null }
  },
})

/** The LD_PRELOAD a running process was started with, read from /proc (Linux): `unset` or its value. */
function preloadOf(pid: number): string {
  try {
    const env = fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')
    const hit = env.find((e) => e.startsWith('LD_PRELOAD='))
    return hit ? `=${hit.slice('LD_PRELOAD='.length)}` : 'unset'
  } catch {
    return 'unknown (no /proc)'
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
