import * as fs from 'node:fs'
import * as path from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { keccak256, stringToBytes } from '../../util/hash.js'
import { InfraError } from '../../errors.js'
import { createPrng } from '../../util/prng.js'
import { createClock } from './clock.js'
import { type NodeConfig, parseNodeConfig } from './config.js'
import { type Consensus, createConsensus, defaultTimeouts, type Output } from './consensus.js'
import { addressOf, quorums, valueIdOf } from './crypto.js'
import { EngineApiEngine } from './engine-api.js'
import { AnvilEngine, type BuiltPayload, JsonRpcHttp, toQuantity } from './execution.js'
import { type AddResult, loadTxCodec, Mempool, TipQueue, tipOf } from './mempool.js'
import { type P2p, startP2p } from './p2p.js'
import { type RpcServer, startRpcServer } from './rpc.js'
import { type BlockStore, openStore, type StoreOptions, storeFileName } from './store.js'
import { openSignState } from './sign-state.js'
import { createSync, type Sync } from './sync.js'
import type { CommittedBlock, Evidence, Hex, Message, Payload, Proposal, Rejection } from './types.js'

/**
 * One validator: consensus (`consensus.ts`) driven by real timers, TCP links (`p2p.ts`), an
 * Anvil as its execution layer (`execution.ts`), a mempool, an append-only store, catch-up
 * sync and a JSON-RPC server. Every call into the execution layer runs in one queue, in the
 * order consensus asked for it, so a validation never overlaps a build or a commit.
 */
export type NodeHandle = {
  readonly id: number
  /** `http://127.0.0.1:PORT` of the JSON-RPC server. */
  readonly rpc: string
  /** `127.0.0.1:PORT` the p2p server is bound to. */
  readonly p2p: string
  /** Closes sockets, flushes the store. Idempotent. */
  stop(): Promise<void>
  /** What `fc_status` answers. */
  status(): NodeStatus
}

export type NodeStatus = {
  id: number
  height: number
  headHash: Hex
  round: number
  step: string
  peers: number[]
  mempool: number
  lastCommitAtMs: number
  /** Proposals refused since start (`fc_rejections` keeps the newest 10,000). */
  rejections: number
  storeErrors: number
  /** Beyond the contract: more counters. */
  /** Equivocations seen since start (`fc_evidence` keeps the newest 10,000). */
  evidence: number
  executionErrors: number
  muted: boolean
  p2p: { dropped: number; badFrames: number; reconnects: number }
  sync: { requests: number; blocksSynced: number; badBlocks: number }
  badSignatures: number
  /** The offset the node's wall clock runs with (`fc_setClockOffset`), ms. */
  clockOffsetMs: number
}

export type StartNodeOptions = {
  /** Also write log lines here (main.ts: stderr). The node always logs to `<dataDir>/node.log`. */
  log?: (line: string) => void
  /** Test seam for the store's writes (a full disk). */
  store?: StoreOptions
  /** Transactions a proposer takes per block. Default min(500, 0.4 · slotMs). */
  maxTxsPerBlock?: number
}

/** Rejections and evidence kept for `fc_rejections` / `fc_evidence`; the oldest go first. */
const maxKept = 10_000
/** At start-up, round 0 waits for every peer to be heard from, at most this many slots (a validator alone starts anyway). */
const START_WAIT_SLOTS = 2
/** A height that has not committed for this many slots gets one `stalled at` log line per round. */
const STALL_LOG_SLOTS = 4

/**
 * Starts one validator in this process. `input` is the config file's JSON (or a `NodeConfig`);
 * it is validated and normalized (lowercase hex) first. Resolves once the store is replayed and
 * both servers listen; rejects with an `InputError` for a bad config, an `InfraError` when the
 * execution layer is unreachable or a port is taken.
 */
export async function startNode(input: NodeConfig | unknown, options: StartNodeOptions = {}): Promise<NodeHandle> {
  const config = parseNodeConfig(input)
  fs.mkdirSync(config.dataDir, { recursive: true })
  // The one clock (clock.ts): wall-clock reads are offset, durations are monotonic.
  const clock = createClock(config.unsafe?.ignoreClockOffset ? { ignoreOffset: true } : {})
  const logStream = fs.createWriteStream(path.join(config.dataDir, 'node.log'), { flags: 'a' })
  const log = (line: string) => {
    const text = `${new Date(clock.nowMs()).toISOString()} node${config.id} ${line}`
    logStream.write(`${text}\n`)
    options.log?.(text)
  }
  /** `FORKCHAOS_NODE_DEBUG=1`: log consensus steps and execution timings too. */
  const debug = process.env.FORKCHAOS_NODE_DEBUG ? log : () => undefined
  // Every validator re-executes a block one transaction at a time (~0.4 ms each on Anvil), so
  // the block must fit the slot: 0.4 transactions per slot ms, at most 500.
  // A block must build and re-execute well inside the propose timeout on a loaded 2-core
  // machine (each transaction is one call to Anvil, ~0.4 ms unloaded): 0.15 per slot-millisecond.
  const maxTxsPerBlock = options.maxTxsPerBlock ?? Math.min(500, Math.floor(config.slotMs * 0.15))
  const prng = createPrng(0x5eed0000 + config.id)
  const myAddress = addressOf(config.privateKey)
  const { quorum } = quorums(config.validators.length)
  // Block timestamps are whole seconds: with sub-second slots consecutive blocks may share one.
  const timestampGapS = config.slotMs >= 1_000 ? 1 : 0

  const rejections: Rejection[] = []
  const evidence: Evidence[] = []
  let rejectionsTotal = 0
  let evidenceTotal = 0
  const timers = new Set<NodeJS.Timeout>()
  let stopped = false
  let storeErrors = 0
  let executionErrors = 0
  let lastCommitAtMs = 0
  /** Monotonic (a duration base for sync), unlike `lastCommitAtMs`. */
  let lastProgressMs = clock.monotonicMs()
  const unflushed: CommittedBlock[] = []

  // ---- store and execution: replay what is on disk --------------------------------------
  if (config.unsafe?.volatileStore && fs.existsSync(path.join(config.dataDir, storeFileName))) {
    fs.rmSync(path.join(config.dataDir, storeFileName))
    log('store: unsafe.volatileStore: started without the blocks on disk')
  }
  const store: BlockStore = openStore(config.dataDir, { nowMs: clock.nowMs, ...options.store })
  if (store.corruption)
    log(
      `store: corruption at height ${store.corruption.atHeight} (${store.corruption.reason}); kept ${store.blocks.length} blocks, moved the rest to ${store.corruption.movedTo}; the rest will be synced from peers`,
    )
  const chain: CommittedBlock[] = [...store.blocks]
  // Engine calls take milliseconds; one that hangs (a fault proxy) must not hold the queue for long.
  let engine: AnvilEngine | EngineApiEngine
  try {
    const execution = config.execution
    engine = execution
      ? await EngineApiEngine.connect({
          url: execution.engineUrl,
          rpcUrl: execution.rpcUrl,
          jwtSecretHex: fs.readFileSync(execution.jwtSecretFile, 'utf8'),
          // A real client executes more slowly than Anvil, and the proposer also validates its own block.
          timeoutMs: Math.max(5_000, 2 * config.slotMs),
        })
      : await AnvilEngine.connect({ url: config.executionUrl, timeoutMs: Math.max(1_000, 2 * config.slotMs) })
  } catch (error) {
    store.close()
    logStream.end()
    throw error
  }
  try {
    await replay()
  } catch (error) {
    engine.close()
    store.close()
    logStream.end()
    throw error
  }

  async function replay() {
    const anvilHead = engine.head().number
    const first = chain[0]
    const genesis = await engine.blockHashAt(0)
    if (first && genesis !== first.payload.parentHash)
      throw new InfraError('The execution layer has another genesis than the stored chain.', {
        context: { 'Anvil genesis': genesis ?? 'none', 'Stored parent of block 1': first.payload.parentHash, 'Data dir': config.dataDir },
        hint: 'Start Anvil with the same flags as the other validators (--no-mining --timestamp <genesisTimestampS>).',
      })
    // Find where Anvil and the store agree (Anvil may have outlived the node, or be fresh).
    let agree = Math.min(anvilHead, chain.length)
    while (agree > 0 && (await engine.blockHashAt(agree)) !== chain[agree - 1]?.payload.blockHash) agree--
    if (anvilHead > agree) {
      // An Engine API client cannot be rewound (forkchoiceUpdated to an ancestor is a no-op): the
      // node works from `agree` and the client keeps its blocks. Above `agree` on the store's
      // branch they are certified blocks (a client only gets forkchoiceUpdated for committed
      // ones) that sync fetches back into the store; the store's own blocks on another branch
      // are replayed below, and forkchoiceUpdated to them reorgs the client onto the certified chain.
      log(`replay: ${engine instanceof EngineApiEngine ? 'working from' : 'rolling Anvil back from'} ${anvilHead} to ${agree}`)
      await engine.rollbackTo(agree)
    }
    for (let h = agree + 1; h <= chain.length; h++) {
      const block = chain[h - 1] as CommittedBlock
      const status = await engine.newPayload(block.payload, { ignore: ['stateRoot', 'receiptsRoot'] })
      if (status.status === 'INVALID') {
        log(`replay: block ${h} re-executes differently (${status.reason}); moving it and what follows aside, to sync from peers`)
        store.truncate(h - 1)
        chain.length = h - 1
        await engine.abandon()
        break
      }
      await engine.forkchoiceUpdated(block.payload.blockHash)
    }
    log(`replay: head ${engine.head().number} (${store.blocks.length} blocks on disk, Anvil was at ${anvilHead})`)
  }

  // ---- mempool ---------------------------------------------------------------------------
  // Ingress (mempool nonce lookups, client reads) has connections of its own to the execution
  // layer: on one shared pool, a flood's lookups queued ahead of every build and validation
  // call (200+ in flight, 2 s a call) and the chain stopped.
  const reads = new JsonRpcHttp(config.execution?.rpcUrl ?? config.executionUrl, Math.max(1_000, 2 * config.slotMs))
  /**
   * Committed nonces by sender, valid for one head. The lookup itself is shared: every
   * transaction of a sender that arrives while it is in flight waits for the same answer.
   * `value` is the last answer, for whatever head it was asked at.
   */
  const nonces = new Map<Hex, { head: number; nonce: Promise<number>; value: number | undefined }>()
  function committedNonce(sender: Hex): Promise<number> {
    const head = engine.head().number
    const hit = nonces.get(sender)
    if (hit?.head === head) return hit.nonce
    const nonce = reads.call<Hex>('eth_getTransactionCount', [sender, toQuantity(head)]).then(Number)
    if (nonces.size > 10_000) nonces.clear()
    const entry = { head, nonce, value: hit?.value }
    nonces.set(sender, entry)
    nonce.then(
      (n) => {
        entry.value = n
      },
      () => {
        if (nonces.get(sender) === entry) nonces.delete(sender)
      },
    )
    return nonce
  }
  const mempool = new Mempool({
    chainId: config.chainId,
    maxTotal: config.mempool.maxTotal,
    maxPerSender: config.mempool.maxPerSender,
    maxIngressPerS: config.mempool.maxIngressPerS,
    committedNonce,
    // Admission does not wait for a lookup when an older answer is at hand (a lower bound: the
    // nonce only grows); the fresh one is fetched meanwhile. Admission is worked one
    // transaction at a time, and with a lookup per sender per block on a busy machine (100 ms
    // and more each) it admitted 5 transactions a second. A stale nonce it lets in is refused
    // by execution when a block is built, and dropped.
    knownNonce: (sender) => {
      const hit = nonces.get(sender)
      if (hit?.value === undefined) return undefined
      if (hit.head !== engine.head().number) committedNonce(sender).catch(() => undefined)
      return hit.value
    },
  })
  let gossipBatch: { raw: Hex; sender: Hex }[] = []
  let gossipTimer: NodeJS.Timeout | null = null
  const gossip = (raw: Hex, sender: Hex) => {
    gossipBatch.push({ raw, sender })
    gossipTimer ??= later(20, () => {
      gossipTimer = null
      const batch = gossipBatch.splice(0, gossipBatch.length)
      for (let i = 0; i < batch.length; i += 500) {
        const part = batch.slice(i, i + 500)
        p2p.broadcast({ t: 'tx', txs: part.map((x) => x.raw), senders: part.map((x) => x.sender) })
      }
    })
  }

  // ---- consensus -------------------------------------------------------------------------
  if (config.unsafe?.forgetSignState) log('sign-state: unsafe.forgetSignState: started without what it signed before')
  const signState = openSignState(config.dataDir, { log, ...(config.unsafe?.forgetSignState ? { forget: true } : {}) })
  const consensus: Consensus = createConsensus({
    signState,
    id: config.id,
    privateKey: config.privateKey,
    validators: config.validators,
    chainId: config.chainId,
    slotMs: config.slotMs,
    genesisMs: config.genesisTimestampS * 1_000,
    ...(config.unsafe?.voteForTwoProposals ? { voteForTwoProposals: true } : {}),
  })

  function dispatch(input: Parameters<Consensus['step']>[0]) {
    if (stopped) return
    apply(consensus.step(input, clock.nowMs()))
  }

  function apply(outputs: Output[]) {
    for (const o of outputs) {
      switch (o.kind) {
        case 'broadcast':
          p2p.broadcast(o.message, o.to)
          break
        case 'relay':
          // Not back to the peer it came from: that peer has it.
          p2p.relay(o.message, relayingFrom === undefined ? undefined : otherPeers(relayingFrom))
          break
        case 'schedule':
          later(o.delayMs, () => {
            debug(`timeout ${o.timeout.kind} ${o.timeout.height}/${o.timeout.round} (${o.delayMs} ms) in step ${consensus.state().step}`)
            dispatch({ kind: 'timeout', timeout: o.timeout })
          })
          break
        case 'build': {
          const requestedAtMs = clock.monotonicMs()
          enqueue(`build ${o.height}/${o.round}`, () => build(o.height, o.round, requestedAtMs))
          break
        }
        case 'validate': {
          const receivedAtMs = clock.monotonicMs()
          enqueue(`validate ${o.proposal.height}/${o.proposal.round}`, () => validate(o.proposal, o.valueId, receivedAtMs))
          break
        }
        case 'decide':
          enqueue(`commit ${o.height}`, () => commitDecided({ payload: o.payload, certificate: o.certificate }))
          break
        case 'evidence':
          log(`evidence: validator ${o.evidence.validator} signed two ${o.evidence.type}s at ${o.evidence.height}/${o.evidence.round}`)
          evidenceTotal++
          keep(evidence, o.evidence)
          break
        case 'reject':
          recordRejection(o.proposal, 'consensus', o.field, o.reason, clock.monotonicMs())
          break
      }
    }
  }

  /** `startedAtMs`: monotonic. `at` is the wall clock (a time); `latencyMs` a duration. */
  function recordRejection(p: Proposal, layer: Rejection['layer'], field: Rejection['field'], reason: string, startedAtMs: number, engineAnswer?: Rejection['engine']) {
    const at = clock.nowMs()
    const rejection: Rejection = { height: p.height, round: p.round, proposer: p.proposer, layer, reason, field, latencyMs: Math.round(clock.monotonicMs() - startedAtMs), at, ...(engineAnswer ? { engine: engineAnswer } : {}) }
    log(`rejected the proposal of ${p.proposer} at ${p.height}/${p.round}: ${layer}/${field}: ${reason} (${rejection.latencyMs} ms)`)
    rejectionsTotal++
    keep(rejections, rejection)
  }

  // ---- the execution queue ---------------------------------------------------------------
  let queue: Promise<void> = Promise.resolve()
  let queued = 0
  function enqueue(label: string, job: () => Promise<void>) {
    queued++
    queue = queue
      .then(() => (stopped ? undefined : job()))
      .catch((error) => log(`${label} failed: ${(error as Error).message}`))
      .finally(() => {
        queued--
      })
  }

  /**
   * How long a proposer of `round` may spend executing transactions into its block: half the
   * round's propose timeout, less what the build waited in the queue. Peers re-execute the
   * block at about the speed it was built, so it is checked within the timeout even on a slow
   * machine; a slow execution layer makes a smaller (at worst empty) block, never a late one.
   * Timeouts grow per round, and so does the budget.
   */
  const timeouts = defaultTimeouts(config.slotMs)
  const buildBudgetMs = (round: number, requestedAtMs: number) =>
    Math.max(0, Math.min(timeouts.maxMs, timeouts.proposeMs * timeouts.growth ** round) / 2 - (clock.monotonicMs() - requestedAtMs))

  /** What building or re-executing a block has lately taken (ms, smoothed): paces the propose timeout. */
  let executionMs = 0
  function observeExecution(ms: number) {
    executionMs = executionMs === 0 ? ms : 0.7 * executionMs + 0.3 * ms
    consensus.setExecutionMs(Math.round(executionMs))
  }

  async function build(height: number, round: number, requestedAtMs: number) {
    const s = consensus.state()
    const head = engine.head()
    if (s.height !== height || s.round !== round || head.number + 1 !== height) return
    // From the node's wall clock, skew included: Anvil mines at exactly this timestamp.
    const timestampS = Math.max(head.timestampS + timestampGapS, Math.floor(clock.nowMs() / 1_000))
    const byz = config.byzantine ?? {}
    if (byz.staleParent) {
      dispatch({ kind: 'built', height, round, payloads: [await staleParentPayload(timestampS)] })
      return
    }
    const txs = mempool.take(maxTxsPerBlock)
    const t0 = performance.now()
    const budgetMs = buildBudgetMs(round, requestedAtMs)
    const built = await engine.buildPayload({ parent: head.hash, timestampS, feeRecipient: myAddress, txs, budgetMs })
    observeExecution(performance.now() - t0)
    debug(`built ${height}/${round}: ${built.transactions.length} of ${txs.length} txs in ${Math.round(performance.now() - t0)} ms (budget ${Math.round(budgetMs)} ms, execution ~${Math.round(executionMs)} ms)`)
    for (const r of built.rejected) mempool.remove(keccak256(r.tx))
    const payloads = [stripBuilt(built)]
    if (byz.invalidTx) (payloads[0] as Payload).transactions.push(await (await import('../../chain/payload.js')).unexecutableTx(config.chainId, String(config.id)))
    if (byz.equivocate) {
      // A second, individually valid block for the same height and round: one second later.
      payloads.push(stripBuilt(await engine.buildPayload({ parent: head.hash, timestampS: timestampS + 1, feeRecipient: myAddress, txs, budgetMs })))
    }
    dispatch({ kind: 'built', height, round, payloads })
  }

  /** Byzantine: a block on top of the grandparent, i.e. a competitor of the committed head. */
  async function staleParentPayload(timestampS: number): Promise<Payload> {
    const head = engine.head()
    const grandparent = head.number >= 2 ? (chain[head.number - 2]?.payload.blockHash as Hex) : head.number === 1 ? await engine.blockHashAt(0) : null
    const fake = (label: string) => keccak256(stringToBytes(`forkchaos/stale/${config.id}/${head.number}/${label}`))
    return {
      number: head.number,
      parentHash: grandparent ?? fake('parent'),
      timestampS,
      feeRecipient: myAddress,
      transactions: [],
      blockHash: fake('block'),
      stateRoot: fake('state'),
      receiptsRoot: fake('receipts'),
    }
  }


  async function validate(p: Proposal, valueId: Hex, receivedAtMs: number) {
    const s = consensus.state()
    if (s.height !== p.height || consensus.validity(valueId) !== 'pending') return
    const head = engine.head()
    const payload = p.payload
    const nowMs = clock.nowMs()
    const refuse = (layer: Rejection['layer'], field: Rejection['field'], reason: string, engineAnswer?: Rejection['engine'], untimely?: true) => {
      recordRejection(p, layer, field, reason, receivedAtMs, engineAnswer)
      dispatch({ kind: 'validated', height: p.height, valueId, valid: false, ...(untimely ? { untimely: { round: p.round } } : {}) })
    }
    if (payload.parentHash !== head.hash) return refuse('consensus', 'parentHash', `parent ${payload.parentHash} is not the committed head ${head.hash} (${head.number})`)
    if (payload.number !== head.number + 1) return refuse('consensus', 'number', `number ${payload.number} is not ${head.number + 1}`)
    if (payload.timestampS < head.timestampS + timestampGapS)
      return refuse('consensus', 'timestamp', `timestamp ${payload.timestampS} is not after the parent's ${head.timestampS}`)
    const driftMs = payload.timestampS * 1_000 - nowMs
    // Timestamps are floored to seconds: up to 1 s behind the clock is not drift. A re-proposed
    // value (polRound ≥ 0) was accepted by a quorum earlier and may be older. Drift refuses this
    // proposal, not its value: a validator restarted while the others were locked sees their
    // round-0 proposal late (too old) and must still take the value when it is re-proposed
    // (it did not, and 7 validators stayed stalled after a burst kill).
    if (driftMs > config.maxDriftMs || (p.polRound === -1 && -driftMs > config.maxDriftMs + 1_000))
      return refuse('consensus', 'timestamp', `timestamp ${payload.timestampS} is ${driftMs} ms from the local clock (max ${config.maxDriftMs})`, undefined, true)
    let status: Awaited<ReturnType<AnvilEngine['newPayload']>> | undefined
    for (let attempt = 0; attempt < 3 && status === undefined; attempt++) {
      try {
        // The test build that skips the state root cannot check the block hash either: the hash
        // commits to the root, and a lying proposer recomputes it.
        const t0 = performance.now()
        status = await engine.newPayload(payload, config.unsafe?.skipStateRootCheck ? { ignore: ['stateRoot', 'blockHash'] } : {})
        observeExecution(performance.now() - t0)
      } catch (error) {
        executionErrors++
        log(`validate ${p.height}/${p.round}: the execution layer failed: ${(error as Error).message.split('\n')[0]}`)
        await sleep(50)
        if (stopped || consensus.state().height !== p.height) return
      }
    }
    if (status === undefined) {
      dispatch({ kind: 'validated', height: p.height, valueId, valid: null })
      return
    }
    // The test build that accepts invalid transactions takes a block whose only fault is that execution refused some.
    const refusedTxsOnly = config.unsafe?.acceptInvalidTx && status.status === 'INVALID' && status.field === 'transactions'
    // The same build on an Engine API client, which checks every field itself (nothing can be
    // ignored): its refusal for the state root alone is overruled.
    const elError = status.status === 'INVALID' ? (status.engine?.validationError ?? '') : ''
    const stateRootOnly = config.unsafe?.skipStateRootCheck && /state ?root/i.test(elError)
    if (stateRootOnly) log(`validate ${p.height}/${p.round}: unsafe.skipStateRootCheck overrules the execution client: ${elError.slice(0, 200)}`)
    if (status.status === 'INVALID' && !refusedTxsOnly && !stateRootOnly) {
      const e = status.engine
      return refuse('execution', status.field, status.reason, e ? { status: e.status, latestValidHash: e.latestValidHash, validationError: e.validationError } : undefined)
    }
    debug(`validated ${p.height}/${p.round}: ${payload.transactions.length} txs, ${Math.round(clock.monotonicMs() - receivedAtMs)} ms after it arrived`)
    dispatch({ kind: 'validated', height: p.height, valueId, valid: true })
  }

  /** Makes a certified block the head: re-executes it unless it is the pending one. */
  async function commitBlock(block: CommittedBlock): Promise<boolean> {
    const head = engine.head()
    const height = block.payload.number
    if (height !== head.number + 1 || block.payload.parentHash !== head.hash) return false
    let status: Awaited<ReturnType<AnvilEngine['newPayload']>>
    try {
      status = await engine.newPayload(block.payload, { ignore: ['stateRoot', 'receiptsRoot', ...(config.unsafe?.skipStateRootCheck ? (['blockHash'] as const) : [])] })
    } catch (error) {
      executionErrors++
      log(`commit ${height}: the execution layer failed: ${(error as Error).message.split('\n')[0]}`)
      return false
    }
    if (status.status === 'INVALID') {
      executionErrors++
      log(`commit ${height}: a certified block does not re-execute to the same block (${status.reason}); not committing`)
      return false
    }
    // The unsafe build commits what it executed, under the certified (possibly lying) payload.
    await engine.forkchoiceUpdated(config.unsafe?.skipStateRootCheck ? (engine.pendingHash() ?? block.payload.blockHash) : block.payload.blockHash)
    chain.push(block)
    persist(block)
    lastCommitAtMs = clock.nowMs()
    lastProgressMs = clock.monotonicMs()
    const slotLagMs = lastCommitAtMs - (config.genesisTimestampS * 1_000 + height * config.slotMs)
    log(`committed ${height} (round ${block.certificate.round}, ${block.payload.transactions.length} txs, ${slotLagMs} ms after its slot) ${block.payload.blockHash}`)
    mempool.removeCommitted(block.payload.transactions).catch((error) => log(`mempool: pruning failed: ${(error as Error).message}`))
    // A commit (of a synced block, too) starts the next height: consensus is running from here on.
    consensusStarted = true
    dispatch({ kind: 'committed', height, notBeforeMs: (block.payload.timestampS + timestampGapS) * 1_000 })
    broadcastStatus()
    return true
  }

  async function commitDecided(block: CommittedBlock) {
    const height = block.payload.number
    // Retry a failing execution layer for a few slots; after that, sync brings the block back.
    const deadline = clock.monotonicMs() + Math.max(2_000, 4 * config.slotMs)
    while (!stopped && engine.head().number + 1 === height) {
      if (await commitBlock(block)) return
      if (clock.monotonicMs() > deadline) {
        log(`commit ${height}: giving up; sync will fetch it again`)
        return
      }
      await sleep(100)
    }
  }

  function persist(block: CommittedBlock) {
    unflushed.push(block)
    flushStore()
  }

  function flushStore() {
    while (unflushed.length > 0) {
      try {
        store.append(unflushed[0] as CommittedBlock)
        unflushed.shift()
      } catch (error) {
        storeErrors++
        const code = (error as NodeJS.ErrnoException).code ?? 'error'
        log(`store: writing block ${unflushed[0]?.payload.number} failed (${code}: ${(error as Error).message}); not voting until it is written`)
        consensus.setMuted(true)
        storeRetry ??= later(1_000, () => {
          storeRetry = null
          flushStore()
        })
        return
      }
    }
    consensus.setMuted(false)
  }
  let storeRetry: NodeJS.Timeout | null = null

  // ---- network ---------------------------------------------------------------------------
  const sync: Sync = createSync({
    chainId: config.chainId,
    validators: config.validators,
    quorum,
    slotMs: config.slotMs,
    prng: prng.fork('sync'),
    head: () => engine.head(),
    blocks: (from, to) => chain.slice(Math.max(0, from - 1), Math.max(0, to)),
    send: (to, message) => p2p.send(to, message),
    commit: (block) =>
      new Promise<boolean>((resolve) => enqueue(`sync ${block.payload.number}`, async () => resolve(await commitBlock(block).catch(() => false)))),
    lastProgressMs: () => lastProgressMs,
    log,
  })

  // ---- start-up ---------------------------------------------------------------------------
  // Validators start seconds apart (each boots its Anvil and its process; more on a busy machine).
  // Round 0 of the first height used to start at once on each, with its own propose timeout, so
  // the first proposer's proposal went to peers not yet up (lost) and the peers' rounds timed out
  // one by one: the first commit came rounds later, with timeouts growing each round. So round 0
  // waits until every peer has been heard from (or `START_WAIT_SLOTS` slots), and a peer heard for
  // the first time gets this node's status and round at once instead of at the next resend. A
  // peer's hello counts: what it sent before (its status at start-up) went into a link proxy that
  // did not yet have this node's address and was lost, and its next status came up to half a slot later.
  let consensusStarted = false
  const heard = new Set<number>()
  function startConsensus() {
    if (consensusStarted || stopped) return
    consensusStarted = true
    log(`consensus: started at height ${engine.head().number + 1}, ${heard.size} of ${config.peers.length} peers heard`)
    apply(consensus.start(engine.head().number, clock.nowMs(), (engine.head().timestampS + timestampGapS) * 1_000))
  }
  let p2pReady = false
  /** Peers heard (a hello or a message) while p2p was starting: first contact once it is up. */
  const helloBeforeReady = new Set<number>()
  function firstContact(from: number) {
    if (!p2pReady) {
      helloBeforeReady.add(from)
      return
    }
    heard.add(from)
    p2p.send(from, statusMessage())
    for (const message of consensus.gossip()) p2p.send(from, message)
    if (heard.size >= config.peers.length) startConsensus()
  }

  /** The peer whose proposal or vote is being stepped (its relays skip that peer), else undefined. */
  let relayingFrom: number | undefined
  const peersBut = new Map(config.peers.map((p) => [p.id, config.peers.filter((q) => q.id !== p.id).map((q) => q.id)]))
  const otherPeers = (id: number) => peersBut.get(id)
  function onMessage(from: number, message: Message) {
    if (!heard.has(from)) firstContact(from)
    switch (message.t) {
      case 'proposal':
        relayingFrom = from
        try {
          dispatch({ kind: 'proposal', proposal: message.proposal })
        } finally {
          relayingFrom = undefined
        }
        return
      case 'vote':
        relayingFrom = from
        try {
          dispatch({ kind: 'vote', vote: message.vote })
        } finally {
          relayingFrom = undefined
        }
        return
      case 'tx':
        admitGossip(message.txs, message.senders)
        return
      case 'status':
        sync.onStatus(from, message.height)
        return
      case 'syncRequest':
        sync.onRequest(from, message.fromHeight, message.toHeight)
        return
      case 'syncResponse':
        sync.onResponse(from, message.blocks).catch((error) => log(`sync: ${(error as Error).message}`))
        return
      case 'hello':
        return
    }
  }

  // ---- admission: the way into the mempool --------------------------------------------------
  // Admitting a transaction is CPU work (a client's costs a signature recovery, 1.5 ms idle and
  // several times that on a busy machine). Taken as it came — a client's batch of 50 at once —
  // it held the event loop for 100–600 ms at a time, so every answer from the execution layer
  // and every vote waited behind it and a 150-transaction build took 3–9 s: under a flood the
  // chain stopped. So every admission, a client's or a peer's, waits in an inbox and is worked
  // in slices of at most `admitSliceMs`, each followed by a pause as long as the slice (this
  // node spends at most half its time admitting). Consensus messages, timers and execution
  // answers run between slices; what does not fit is refused at the door ("node busy"), and the
  // chain slows down instead of stopping.
  const admitSliceMs = 5
  /** Client submissions waiting: highest tip first, then arrival. At most `maxIngressPerS` (one second's worth). */
  const clientInbox: { raw: Hex; tipWei: bigint; done: (result: AddResult) => void }[] = []
  const maxClientWaiting = config.mempool.maxIngressPerS
  /** Gossip waiting, highest tip first (the tip costs a decode, ~0.1 ms: no signature recovery). */
  const gossipInbox = new TipQueue<{ raw: Hex; sender: Hex | undefined }>()
  let admitting = false
  let clientTurn = true

  function admitGossip(txs: readonly Hex[], senders: readonly Hex[] | undefined) {
    void loadTxCodec().then(() => {
      txs.forEach((raw, i) => {
        if (gossipInbox.length < config.mempool.maxTotal) gossipInbox.push({ raw, sender: senders?.[i] }, tipOf(raw))
      })
      startAdmitting()
    })
  }

  async function admitClient(raw: Hex): Promise<AddResult> {
    await loadTxCodec()
    const checked = mempool.ingress(raw)
    if (!checked.ok) return Promise.resolve({ ok: false, hash: null, reason: checked.reason })
    const busy = (): AddResult => ({
      ok: false,
      hash: null,
      reason: `node busy: ${clientInbox.length} submitted transactions are waiting for admission (limit ${maxClientWaiting}, maxIngressPerS) and the tip does not outbid them; retry later or pay more`,
    })
    if (clientInbox.length >= maxClientWaiting) {
      const last = clientInbox[clientInbox.length - 1] as (typeof clientInbox)[number]
      if (last.tipWei >= checked.tipWei) return Promise.resolve(busy())
      clientInbox.pop()
      last.done(busy())
    }
    return new Promise<AddResult>((done) => {
      let at = clientInbox.length
      while (at > 0 && (clientInbox[at - 1] as (typeof clientInbox)[number]).tipWei < checked.tipWei) at--
      clientInbox.splice(at, 0, { raw, tipWei: checked.tipWei, done })
      startAdmitting()
    })
  }

  function startAdmitting() {
    if (admitting || stopped) return
    admitting = true
    setImmediate(() => void admitSlice())
  }

  async function admitSlice() {
    const t0 = performance.now()
    while (!stopped && performance.now() - t0 < admitSliceMs) {
      // Clients and peers take turns, so neither can shut the other out.
      const fromClient = clientInbox.length > 0 && (clientTurn || gossipInbox.length === 0)
      clientTurn = !clientTurn
      if (fromClient) {
        const job = clientInbox.shift() as (typeof clientInbox)[number]
        const result = await mempool
          .add(job.raw, undefined, { ingressChecked: true })
          .catch((error): AddResult => ({ ok: false, hash: null, reason: `internal error: ${(error as Error).message.split('\n')[0]}` }))
        if (result.ok && result.isNew) gossip(job.raw.toLowerCase() as Hex, mempool.senderOf(result.hash) as Hex)
        job.done(result)
        continue
      }
      const next = gossipInbox.shift()
      if (!next) break
      await mempool.add(next.raw, next.sender).catch(() => undefined)
    }
    if (stopped) {
      for (const job of clientInbox.splice(0)) job.done({ ok: false, hash: null, reason: 'node stopping' })
      admitting = false
      return
    }
    if (clientInbox.length === 0 && gossipInbox.length === 0) {
      admitting = false
      return
    }
    later(Math.min(admitSliceMs, Math.ceil(performance.now() - t0)), () => void admitSlice())
  }

  const statusMessage = (): Message => ({ t: 'status', height: engine.head().number, headHash: engine.head().hash })
  // This node's status goes to every peer at each commit and, between commits, half a slot after
  // the last one: a status at least every half slot, as before, without the periodic one that
  // followed a commit's by less than that (an idle devnet sent three a slot, now two).
  const statusEveryMs = Math.max(100, Math.floor(config.slotMs / 2))
  let statusTimer: NodeJS.Timeout | null = null
  function broadcastStatus() {
    if (stopped) return
    p2p.broadcast(statusMessage())
    if (statusTimer) {
      clearTimeout(statusTimer)
      timers.delete(statusTimer)
    }
    statusTimer = later(statusEveryMs, broadcastStatus)
  }

  const p2p: P2p = await startP2p({
    id: config.id,
    chainId: config.chainId,
    ...(config.networkId ? { network: config.networkId } : {}),
    listen: config.p2pListen,
    peers: config.peers,
    prng: prng.fork('p2p'),
    monotonicMs: clock.monotonicMs,
    onMessage,
    onHello: (from) => {
      if (!heard.has(from)) firstContact(from)
    },
    log,
  })
  p2pReady = true
  for (const from of helloBeforeReady) if (!heard.has(from)) firstContact(from)

  const rpcServer: RpcServer = await startRpcServer({
    listen: config.rpcListen,
    log,
    view: {
      chainId: config.chainId,
      headNumber: () => engine.head().number,
      forward: (method, params) => reads.call(method, params),
      async submitTransaction(raw) {
        const result = await admitClient(raw)
        if (!result.ok) return { ok: false, reason: result.reason }
        return { ok: true, hash: result.hash }
      },
      status,
      block: (height) => {
        const b = chain[height - 1]
        if (height < 1 || !b) return null
        return {
          height,
          hash: b.payload.blockHash,
          parentHash: b.payload.parentHash,
          stateRoot: b.payload.stateRoot,
          timestampS: b.payload.timestampS,
          transactions: b.payload.transactions.length,
          valueId: valueIdOf(b.payload),
          proposer: consensus.proposerOf(height, b.certificate.round),
          // Who built it (its fee recipient): a later round's proposer may re-propose another's locked block.
          builder: config.validators.find((v) => v.address.toLowerCase() === b.payload.feeRecipient.toLowerCase())?.id ?? null,
          round: b.certificate.round,
          certificate: b.certificate,
        }
      },
      rejections: () => rejections,
      evidence: () => evidence,
      setClockOffset(offsetMs) {
        clock.setOffsetMs(offsetMs)
        log(`clock: the wall clock now runs ${offsetMs} ms ${offsetMs >= 0 ? 'ahead' : 'behind'}`)
        return { offsetMs: clock.offsetMs(), nowMs: clock.nowMs() }
      },
    },
  }).catch(async (error) => {
    await p2p.close()
    throw error
  })

  function status(): NodeStatus {
    const s = consensus.state()
    return {
      id: config.id,
      height: engine.head().number,
      headHash: engine.head().hash,
      round: s.round,
      step: s.step,
      peers: p2p.connectedPeers(),
      mempool: mempool.size,
      lastCommitAtMs,
      rejections: rejectionsTotal,
      storeErrors,
      evidence: evidenceTotal,
      executionErrors,
      muted: unflushed.length > 0,
      p2p: { dropped: p2p.stats.dropped, badFrames: p2p.stats.badFrames, reconnects: p2p.stats.reconnects },
      sync: { ...sync.stats },
      badSignatures: consensus.stats.badSignatures,
      clockOffsetMs: clock.offsetMs(),
    }
  }

  // ---- timers ----------------------------------------------------------------------------
  function later(delayMs: number, fn: () => void): NodeJS.Timeout {
    const timer = setTimeout(() => {
      timers.delete(timer)
      if (!stopped) fn()
    }, delayMs)
    timers.add(timer)
    return timer
  }
  function every(periodMs: number, fn: () => void) {
    const tick = () => {
      fn()
      later(periodMs, tick)
    }
    later(periodMs, tick)
  }
  // A round that has not moved for a while may be waiting for messages a fault swallowed:
  // send what this node knows of it again (peers drop duplicates, relay what is new to them).
  let lastRoundKey = ''
  every(Math.max(100, Math.floor(config.slotMs / 2)), () => {
    const s = consensus.state()
    const key = `${s.height}/${s.round}/${s.step}`
    const stuck = key === lastRoundKey && s.step !== 'waiting' && s.step !== 'decided'
    lastRoundKey = key
    if (!stuck) return
    const gossip = consensus.gossip()
    for (const message of gossip) p2p.broadcast(message)
    logStall(s, gossip)
  })
  // Why a height does not commit, in the log once per round after STALL_LOG_SLOTS slots without
  // a commit: what this node has of the round (votes by value), its lock, and who it hears.
  const stallLogged = new Set<string>()
  const startedAtMs = clock.nowMs()
  function logStall(s: ReturnType<typeof consensus.state>, gossip: Message[]) {
    const key = `${s.height}/${s.round}`
    if (stallLogged.has(key) || clock.nowMs() - Math.max(lastCommitAtMs, startedAtMs) < STALL_LOG_SLOTS * config.slotMs) return
    if (stallLogged.size >= 1_000) stallLogged.clear()
    stallLogged.add(key)
    const short = (v: Hex | null) => (v === null ? 'nil' : v.slice(0, 10))
    const tally = (type: 'prevote' | 'precommit') => {
      const by = new Map<string, number[]>()
      for (const m of gossip) if (m.t === 'vote' && m.vote.type === type && m.vote.round === s.round) by.set(short(m.vote.value), [...(by.get(short(m.vote.value)) ?? []), m.vote.validator])
      return by.size === 0 ? 'none' : [...by].map(([v, ids]) => `${v} from ${ids.sort((a, b) => a - b).join(',')}`).join('; ')
    }
    const proposals = gossip.filter((m) => m.t === 'proposal').map((m) => (m.t === 'proposal' ? `${m.proposal.proposer}:${short(m.proposal.payload.blockHash)}/pol ${m.proposal.polRound}` : ''))
    log(
      `stalled at ${key} (${s.step}, proposer ${consensus.proposerOf(s.height, s.round)}): proposals ${proposals.join(', ') || 'none'}; prevotes ${tally('prevote')}; precommits ${tally('precommit')}; ` +
        `locked ${s.lockedRound}/${short(s.lockedValue)}, valid ${s.validRound}/${short(s.validValue)}; heard ${[...heard].sort((a, b) => a - b).join(',') || 'nobody'}`,
    )
  }
  if (process.env.FORKCHAOS_NODE_DEBUG) {
    // Where a loaded validator's time goes: event-loop delay, CPU, queues, execution round trips.
    const loopDelay = monitorEventLoopDelay({ resolution: 10 })
    loopDelay.enable()
    let cpu = process.cpuUsage()
    let rpcSeen = { ...engine.rpc.stats }
    every(1_000, () => {
      const c = process.cpuUsage(cpu)
      cpu = process.cpuUsage()
      const r = engine.rpc.stats
      const calls = r.calls - rpcSeen.calls
      const meanMs = calls > 0 ? (r.totalMs - rpcSeen.totalMs) / calls : 0
      rpcSeen = { ...r }
      const s = consensus.state()
      debug(
        `load: loop p50 ${(loopDelay.percentile(50) / 1e6).toFixed(0)} ms max ${(loopDelay.max / 1e6).toFixed(0)} ms, cpu ${((c.user + c.system) / 1e4).toFixed(0)} %, ${s.height}/${s.round} ${s.step}, queue ${queued}, mempool ${mempool.size}, inbox ${clientInbox.length}/${gossipInbox.length}, exec ${calls} calls mean ${meanMs.toFixed(1)} ms max ${r.maxMs.toFixed(0)} ms in flight ${r.inFlight}, reads in flight ${reads.stats.inFlight}`,
      )
      r.maxMs = 0
      loopDelay.reset()
    })
  }
  every(Math.max(50, Math.floor(config.slotMs / 4)), () => {
    // A queue backed up behind a slow execution layer must not also start syncing.
    // The test build that does not resync after a corrupt store stays where its good prefix ended.
    if (queued < 4 && !(store.corruption && config.unsafe?.noResyncAfterCorruption)) sync.tick(clock.monotonicMs())
  })

  if (config.peers.length === 0) startConsensus()
  else later(START_WAIT_SLOTS * config.slotMs, startConsensus)
  broadcastStatus()
  log(`started: head ${engine.head().number}, p2p ${p2p.address}, rpc ${rpcServer.url}`)

  let stopping: Promise<void> | undefined
  return {
    id: config.id,
    rpc: rpcServer.url,
    p2p: p2p.address,
    status,
    stop: () =>
      (stopping ??= (async () => {
        stopped = true
        for (const t of timers) clearTimeout(t)
        timers.clear()
        await Promise.all([p2p.close(), rpcServer.close()])
        // Let an execution call in flight finish, but not forever.
        await Promise.race([queue, sleep(3_000)])
        flushStoreOnStop()
        store.close()
        engine.close()
        reads.close()
        log('stopped')
        await new Promise<void>((resolve) => logStream.end(resolve))
      })()),
  }

  function flushStoreOnStop() {
    for (const block of unflushed.splice(0)) {
      try {
        store.append(block)
      } catch (error) {
        log(`store: could not write block ${block.payload.number} on stop: ${(error as Error).message}`)
        break
      }
    }
  }
}

function stripBuilt(built: BuiltPayload): Payload {
  const { rejected: _rejected, ...payload } = built
  return { ...payload, transactions: [...payload.transactions] }
}

function keep<T>(list: T[], item: T) {
  list.push(item)
  if (list.length > maxKept) list.splice(0, list.length - maxKept)
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

