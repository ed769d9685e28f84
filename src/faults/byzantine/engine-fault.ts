import { type Evidence, type FaultContext, type Observations, devnetOf, seenIn } from '../../Fault.js'
import { seenOnDevnet } from '../../experiment/observations.js'
import type { Devnet, DevnetNode } from '../../targets/devnet.js'
import { validatorId } from '../../targets/devnet/validators.js'
import {
  badBlocksCanonical,
  describeEngineEvidence,
  type ElAnswer,
  type EngineEvidence,
  type EngineLie,
  type EngineLieKind,
  type EngineSide,
  lieOnEngineLink,
  watchEngineLink,
} from './engine.js'

/**
 * The Engine API form of a byzantine fault, for devnets whose validators run a real execution
 * client (`--el ethereumjs`): the lie is told on the proposer's engine link (the JSON-RPC proxy
 * between its consensus node and its EL, `node.exec`), see `lieOnEngineLink`; every other
 * validator's engine link is watched for its EL's answers to the tampered blocks.
 */
export type EngineFormState = {
  form: 'engine'
  id: number
  lie: EngineLie
  answers: ElAnswer[]
  unwatch: (() => void)[]
}

/**
 * A validator's Engine API side: its engine link proxy (`node.exec`, in front of the client's
 * engine port) and its EL's plain JSON-RPC URL (`node.anvil.url`, which the devnet keeps in
 * the same shape for every client), or null on an Anvil validator.
 */
export function engineSideOf(node: DevnetNode | undefined): EngineSide | null {
  if (!node || node.el === 'anvil') return null
  return { engine: node.exec, elRpcUrl: node.anvil.url }
}

/** Whether the devnet's validators run an Engine API execution client. */
export function usesEngineApi(devnet: Devnet): boolean {
  return devnet.nodes.some((n) => engineSideOf(n) !== null)
}

export async function applyEngineForm(ctx: FaultContext, type: string, target: string | undefined, kind: EngineLieKind): Promise<EngineFormState> {
  const devnet = devnetOf(ctx, type)
  const id = validatorId(target, type, devnet.nodes.length)
  const side = engineSideOf(devnet.nodes[id]) as EngineSide
  // The EL client and the genesis reader (secp256k1, viem's accounts) load when the fault applies, not with the registry.
  const [{ JsonRpcHttp }, { readDevnetGenesis }] = await Promise.all([import('../../devnet/node/execution.js'), import('../../el/genesis.js')])
  const rpc = new JsonRpcHttp(side.elRpcUrl, 5_000)
  const lie = lieOnEngineLink(side.engine, {
    kind,
    chainId: readDevnetGenesis().chainId,
    label: String(id),
    parentOf: async (hash) => {
      const block = await rpc.call<{ number: string; parentHash: `0x${string}` } | null>('eth_getBlockByHash', [hash, false])
      return block ? { number: Number(block.number), parentHash: block.parentHash } : null
    },
  })
  const answers: ElAnswer[] = []
  const unwatch: (() => void)[] = [() => rpc.close()]
  for (const node of devnet.nodes) {
    if (node.id === id || !node.execProxied) continue
    unwatch.push(watchEngineLink(node.exec, node.id, lie, answers))
  }
  return { form: 'engine', id, lie, answers, unwatch }
}

export async function revertEngineForm(state: EngineFormState): Promise<void> {
  state.lie.remove()
  for (const u of state.unwatch.splice(0)) u()
}

/** Rejections recorded by the honest nodes that carry their EL's own answer (the node's view, when no engine link of theirs is watched). */
type RejectionWithEngine = { node: number; proposer: number; height: number; engine?: { status: string; latestValidHash: string | null; validationError: string | null } }

export async function detectEngineForm(ctx: FaultContext, type: string, state: EngineFormState, observations: Observations): Promise<Evidence> {
  const devnet = devnetOf(ctx, type)
  const answers = [...state.answers]
  if (answers.length === 0)
    for (const r of (observations.devnet?.rejections ?? []) as RejectionWithEngine[]) {
      if (r.proposer !== state.id || r.node === state.id || !r.engine) continue
      const block = state.lie.tampered.find((b) => b.number === r.height)
      const latestValidHash = r.engine.latestValidHash ? (r.engine.latestValidHash.toLowerCase() as `0x${string}`) : null
      answers.push({
        node: r.node,
        number: r.height,
        blockHash: block?.blockHash ?? ('0x' as `0x${string}`),
        status: r.engine.status,
        latestValidHash,
        validationError: r.engine.validationError,
        latestValidIsParent: latestValidHash !== null && latestValidHash === block?.parentHash,
      })
    }
  const els = devnet.nodes.flatMap((n) => {
    const side = engineSideOf(n)
    return side && n.running ? [{ node: n.id, rpcUrl: side.elRpcUrl }] : []
  })
  const { JsonRpcHttp } = await import('../../devnet/node/execution.js')
  const clients = new Map<string, InstanceType<typeof JsonRpcHttp>>()
  let canonical: EngineEvidence['canonical']
  try {
    canonical = await badBlocksCanonical(state.lie.tampered, els, (url, method, params) => {
      let c = clients.get(url)
      if (!c) clients.set(url, (c = new JsonRpcHttp(url, 5_000)))
      return c.call(method, params)
    })
  } finally {
    for (const c of clients.values()) c.close()
  }
  const engine: EngineEvidence = {
    kind: state.lie.kind,
    proposer: state.id,
    tampered: state.lie.tampered.length,
    blocks: state.lie.tampered.slice(0, 20),
    untouched: { count: state.lie.untouched.count, reasons: [...state.lie.untouched.reasons] },
    answers,
    canonical,
  }
  return {
    took: `engine link of validator ${state.id} rewrote ${engine.tampered} getPayload answers (${engine.kind}, block hash recomputed; its own newPayload of them answered VALID ${state.lie.ownValidations()} times)`,
    seen: [describeEngineEvidence(engine), seenIn(observations) ?? seenOnDevnet(observations, [state.id])].filter(Boolean).join('; '),
    engine,
  }
}
