import type { NodeStatus } from '../../devnet/node/node.js'
import { define, devnetOf, seenIn } from '../../Fault.js'
import * as P from '../../Params.js'
import type { Devnet } from '../../targets/devnet.js'
import { nodeStatus } from '../../targets/devnet/status.js'
import { validatorId } from '../../targets/devnet/validators.js'
import { seenOnDevnet } from '../../experiment/observations.js'

type State = { id: number; killed: number[]; took: string }

/** Tries at lining up the target's turn with the stall before the restart goes ahead anyway. */
const ATTEMPTS = 3

/**
 * A crash-restart that lands in the middle of a round the validator has already signed in — the
 * moment a validator that forgets what it signed (the "amnesia" double-sign) signs a second,
 * different proposal and vote. A plain `node.restart` never gets there: with a quorum up, the
 * height the validator signed at is committed before it is back (a restart takes a second or
 * more), so it comes back at a new height and signs nothing twice.
 *
 * So the round is held open first. At a height whose round-0 proposer is the target (its turn
 * comes every n-th height), while it waits for that slot, the f + 1 highest other validators are
 * SIGKILLed: the target proposes and prevotes in round 0, but no quorum can form, so it and the
 * other survivors stay in that round. Then the target is SIGKILLed and started again with the
 * same data. Back, it is the proposer of the same round once more and builds a block with a
 * later timestamp: a validator that remembers (sign-state.json) refuses to sign it; one that
 * forgets signs a second proposal (and a second prevote), which the survivors record as evidence
 * (`honestNotAccused`). Revert starts the killed validators again and the chain resumes.
 *
 * If the height commits before the kill lands (a busy machine), the killed validators are started
 * again and the next turn of the target is tried, `ATTEMPTS` times; after that the restart runs
 * anyway and `took` says the round was not held.
 */
export const restartMidRound = define<Record<string, never>, State>({
  type: 'node.restart-mid-round',
  summary:
    'Crash-restart a validator in the middle of a round it signed in: at its turn as proposer, SIGKILL f + 1 others (no quorum: the round stays open), wait until it has proposed and prevoted, SIGKILL and start it again; revert starts the others.',
  target: 'devnet',
  params: P.object({}),
  async apply(ctx, target) {
    const devnet = devnetOf(ctx, 'node.restart-mid-round')
    const n = devnet.nodes.length
    const id = validatorId(target, 'node.restart-mid-round', n)
    const f = Math.floor((n - 1) / 3)
    const others = devnet.nodes.map((v) => v.id).filter((v) => v !== id)
    const killed = others.slice(others.length - (f + 1))
    const pidBefore = devnet.nodes[id]?.pid ?? 0
    const slotMs = devnet.slotMs
    const t0 = Date.now()
    let held: { height: number } | null = null
    const misses: string[] = []
    for (let attempt = 1; attempt <= ATTEMPTS && !held; attempt++) {
      // Its turn: the head is H, consensus waits for the slot of H + 1, whose round-0 proposer it is.
      const turn = await waitFor(devnet, id, (s) => s.step === 'waiting' && (s.height + 1) % n === id, (n + 4) * slotMs + 10_000)
      if (!turn) {
        misses.push(`attempt ${attempt}: no turn of validator ${id} as proposer seen`)
        continue
      }
      await Promise.all(killed.map((k) => devnet.stopNode(k, 'SIGKILL')))
      // Proposed and prevoted at H + 1 round 0, the head still H: the round is open with it signed in.
      const open = await waitFor(devnet, id, (s) => s.height !== turn.height || (s.round === 0 && (s.step === 'prevote' || s.step === 'precommit')), 6 * slotMs + 5_000)
      if (open && open.height === turn.height) {
        // One more status later, to see the round did not end meanwhile.
        await sleep(Math.min(500, slotMs / 2))
        const still = await statusOf(devnet, id)
        if (still && still.height === turn.height && still.round === 0) {
          held = { height: turn.height + 1 }
          break
        }
      }
      misses.push(`attempt ${attempt}: height ${turn.height + 1} ${open ? `moved on (head ${open.height}, round ${open.round} ${open.step})` : 'gave no status'} before the kill held it`)
      await Promise.all(killed.map((k) => devnet.startNode(k)))
    }
    await devnet.stopNode(id, 'SIGKILL')
    await devnet.startNode(id)
    const pidAfter = devnet.nodes[id]?.pid ?? 0
    const at = `${((Date.now() - t0) / 1_000).toFixed(1)} s after the fault began`
    const took = held
      ? `validator ${id} proposed and prevoted at ${held.height}/0 with validators ${killed.join(', ')} down (no quorum), then was crash-restarted in that round (pid ${pidBefore} → ${pidAfter}, back ${at})`
      : `validator ${id} crash-restarted (pid ${pidBefore} → ${pidAfter}, back ${at}) without a round held open: ${misses.join('; ')}`
    return { id, killed, took }
  },
  async revert(ctx, state) {
    const devnet = devnetOf(ctx, 'node.restart-mid-round')
    await Promise.all(state.killed.filter((k) => !devnet.nodes[k]?.running).map((k) => devnet.startNode(k)))
  },
  async detect(_ctx, state, observations) {
    return { took: state.took, seen: seenIn(observations) ?? seenOnDevnet(observations, [state.id]) }
  },
})

async function statusOf(devnet: Devnet, id: number): Promise<NodeStatus | null> {
  const node = devnet.nodes[id]
  if (!node?.running) return null
  return nodeStatus(node).catch(() => null)
}

/** Polls the validator's `fc_status` every 20 ms until `ok`; null after `timeoutMs`. */
async function waitFor(devnet: Devnet, id: number, ok: (s: NodeStatus) => boolean, timeoutMs: number): Promise<NodeStatus | null> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    const s = await statusOf(devnet, id)
    if (s && ok(s)) return s
    await sleep(20)
  }
  return null
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
