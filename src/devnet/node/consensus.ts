import {
  quorums,
  signProposal,
  signVote,
  type ValidatorSet,
  valueIdOf,
  verifyProposal,
  verifyVote,
} from './crypto.js'
import type { SignState } from './sign-state.js'
import type { Certificate, Evidence, Hex, Message, Payload, Proposal, RejectionField, Vote, VoteType } from './types.js'

/**
 * Tendermint consensus for one validator ("The latest gossip on BFT consensus", Buchman, Kwon,
 * Milosevic, 2018, Algorithm 1) as a pure, deterministic state machine: `step(input, nowMs)`
 * returns what to do — broadcast, schedule a timeout, build or validate a payload, commit —
 * and never touches a clock, a socket or the execution layer itself. Given the same inputs it
 * produces the same outputs, so every rule is unit-tested without a network.
 *
 * Differences from the paper, on purpose:
 * - `valid(v)` is asynchronous (re-execution): a proposal's validity is `pending` until a
 *   `validated` input arrives, and rules that need it wait for it.
 * - Round 0 of height h starts at the slot boundary `genesisMs + h·slotMs`, not at once.
 * - A propose timeout that fires while the round's proposal is still being re-executed is
 *   extended once by the same amount, rather than prevoting nil on a block not yet checked.
 * - After a decision the machine waits for `committed` (the execution layer made the block its
 *   head) before it starts the next height.
 * - The propose timeout is never shorter than three times the time the execution layer has lately
 *   taken to build or re-execute a block (`setExecutionMs`), so on a slow machine a round lasts
 *   long enough for its proposal to be built and checked: slots get longer, rounds still end in
 *   a decision. (It still grows per round and stops at `maxMs`.)
 */

export type ConsensusConfig = {
  id: number
  privateKey: Hex
  /** In proposer order: proposer(h, r) = validators[(h + r) % n]. */
  validators: ValidatorSet
  chainId: number
  slotMs: number
  /** Genesis time in ms (the genesis block's timestamp × 1000). */
  genesisMs: number
  /** Default: `defaultTimeouts(slotMs)`. */
  timeouts?: TimeoutConfig
  /** Test builds: prevote and precommit every valid proposal seen in a round, even a second one. */
  voteForTwoProposals?: boolean
  /** Heights above the current one whose messages are kept for later. Default 2. */
  futureHeights?: number
  /**
   * Asked before every signature (`sign-state.ts`: what this validator signed before a crash);
   * told the height of every valid peer message. Default: none (every signature allowed).
   */
  signState?: Pick<SignState, 'allow' | 'observe'>
}

export type TimeoutConfig = {
  proposeMs: number
  prevoteMs: number
  precommitMs: number
  /** Each round multiplies every timeout by this. */
  growth: number
  /** No timeout grows past this. */
  maxMs: number
}

/**
 * Derived from the slot so that a failed round 0 (a silent proposer: propose timeout, then nil
 * quorums and the precommit timeout) still lets round 1 commit within about one slot.
 */
export function defaultTimeouts(slotMs: number): TimeoutConfig {
  return {
    proposeMs: Math.round(0.4 * slotMs),
    prevoteMs: Math.round(0.15 * slotMs),
    precommitMs: Math.round(0.15 * slotMs),
    growth: 1.5,
    // Long enough for any local network; short enough that a healed 2–2 partition, with every
    // node many rounds in, resumes within a few slots.
    maxMs: 8 * slotMs,
  }
}

export type Step = 'waiting' | 'propose' | 'prevote' | 'precommit' | 'decided'

export type Timeout = { kind: 'slot' | 'propose' | 'prevote' | 'precommit'; height: number; round: number }

export type Input =
  | { kind: 'proposal'; proposal: Proposal }
  | { kind: 'vote'; vote: Vote }
  | { kind: 'timeout'; timeout: Timeout }
  /**
   * The outcome of a `validate` output. `valid: null`: the execution layer could not tell (try
   * again later). `untimely`: this proposal was refused for its timestamp against the local clock
   * (drift), which says nothing of the value itself: the round's proposal gets a nil prevote, and
   * the value is validated again if it is re-proposed (a quorum found it timely in its POL round).
   */
  | { kind: 'validated'; height: number; valueId: Hex; valid: boolean | null; untimely?: { round: number } }
  /** The outcome of a `build` output: one payload, or two for an equivocating proposer (test builds). */
  | { kind: 'built'; height: number; round: number; payloads: Payload[] }
  /** The execution layer's head is now block `height` (after a decision, or after sync). */
  /**
   * `notBeforeMs`: the earliest time a block on top of this one may carry (its timestamp plus the
   * minimum gap), so round 0 of the next height does not start before it: a chain behind its
   * slots catches up no faster than its timestamps may advance, instead of running them ahead
   * of the clock until peers refuse them as drift.
   */
  | { kind: 'committed'; height: number; notBeforeMs?: number }

export type Output =
  /** Send to peers: all of them, or only `to`. */
  | { kind: 'broadcast'; message: Message; to?: number[] }
  /** A peer's message this node accepted as new: pass it on (gossip). */
  | { kind: 'relay'; message: Message }
  | { kind: 'schedule'; timeout: Timeout; delayMs: number }
  /** This node proposes: build a payload on top of the head. */
  | { kind: 'build'; height: number; round: number }
  /** Check a proposal (parent, number, timestamp, re-execution) and answer with `validated`. */
  | { kind: 'validate'; proposal: Proposal; valueId: Hex }
  /** The height is decided: make the payload the head, store it, then answer with `committed`. */
  | { kind: 'decide'; height: number; round: number; proposer: number; payload: Payload; certificate: Certificate }
  | { kind: 'evidence'; evidence: Evidence }
  /** A proposal refused before execution (wrong proposer, bad signature). */
  | { kind: 'reject'; proposal: Proposal; field: RejectionField; reason: string }

export type Validity = 'pending' | 'valid' | 'invalid'

export type ConsensusSnapshot = {
  height: number
  round: number
  step: Step
  lockedRound: number
  lockedValue: Hex | null
  validRound: number
  validValue: Hex | null
}

export type Consensus = {
  /** Feeds one input; returns the outputs, in order. */
  step(input: Input, nowMs: number): Output[]
  /** Starts height `head + 1` (call once, with the execution head; `notBeforeMs` as for `committed`). */
  start(head: number, nowMs: number, notBeforeMs?: number): Output[]
  state(): ConsensusSnapshot
  validity(valueId: Hex): Validity | undefined
  /** A muted validator signs nothing (its store cannot persist what it would vote for). */
  setMuted(muted: boolean): void
  /**
   * How long building or re-executing a block takes lately (ms): the floor of round 0's propose
   * timeout is three times this (the proposer's build, its trip to the peers, their re-execution).
   */
  setExecutionMs(ms: number): void
  /**
   * What this node knows of the current round, to send again: the round's proposal(s), the
   * prevotes that justify a re-proposed value, and every prevote and precommit of the round.
   * The p2p layer does not retransmit, so a message lost to a partition or a lossy link is only
   * ever delivered by this; without it a healed 2–2 partition would wait forever for prevotes
   * that were sent into the void.
   */
  gossip(): Message[]
  /** Messages refused for a bad signature or from a validator outside the set. */
  readonly stats: { badSignatures: number; stale: number; conflictsDropped: number }
  proposerOf(height: number, round: number): number
}

export function createConsensus(config: ConsensusConfig): Consensus {
  const n = config.validators.length
  const { quorum, skip } = quorums(n)
  const timeouts = config.timeouts ?? defaultTimeouts(config.slotMs)
  const futureHeights = config.futureHeights ?? 2
  const stats = { badSignatures: 0, stale: 0, conflictsDropped: 0 }

  let height = 0
  let round = 0
  let step: Step = 'waiting'
  let lockedRound = -1
  let lockedValue: Hex | null = null
  let validRound = -1
  let validValue: Hex | null = null
  let muted = false
  let executionMs = 0
  /** What this node prevoted in the current round (voteForTwoProposals votes for the others too). */
  let myPrevote: Hex | null | undefined
  const extraVoted = new Set<string>()
  /** Rounds of this height whose proposal was refused for its timestamp (see `untimely` on `validated`). */
  const untimely = new Set<number>()

  /** `${h}/${r}` → proposals from the rightful proposer with valid signatures, first seen first. */
  const proposals = new Map<string, Proposal[]>()
  /** `${h}/${r}/${type}` → validator → its first vote. */
  const votes = new Map<string, Map<number, Vote>>()
  const validity = new Map<Hex, Validity>()
  const payloads = new Map<Hex, Payload>()
  /** Rules that fire once per (height, round). */
  const fired = new Set<string>()
  const evidenceSeen = new Set<string>()
  const rejectedSeen = new Set<string>()

  let out: Output[] = []
  let now = 0

  const proposerOf = (h: number, r: number) => (config.validators[(h + r) % n] as { id: number }).id
  const slotStartMs = (h: number) => config.genesisMs + h * config.slotMs
  const delay = (base: number, r: number) => Math.min(timeouts.maxMs, Math.round(base * timeouts.growth ** r))
  const proposeDelay = (r: number) => delay(Math.max(timeouts.proposeMs, 3 * executionMs), r)
  const once = (rule: string) => {
    const key = `${rule}/${height}/${round}`
    if (fired.has(key)) return false
    fired.add(key)
    return true
  }
  const schedule = (kind: Timeout['kind'], delayMs: number) =>
    out.push({ kind: 'schedule', timeout: { kind, height, round }, delayMs: Math.max(0, delayMs) })

  const votesAt = (h: number, r: number, type: VoteType) => {
    const key = `${h}/${r}/${type}`
    let m = votes.get(key)
    if (!m) votes.set(key, (m = new Map()))
    return m
  }
  const count = (h: number, r: number, type: VoteType, value: Hex | null | undefined) => {
    const m = votes.get(`${h}/${r}/${type}`)
    if (!m) return 0
    if (value === undefined) return m.size
    let c = 0
    for (const v of m.values()) if (v.value === value) c++
    return c
  }

  /** `unguarded`: test builds' extra votes (voteForTwoProposals), which are double votes on purpose. */
  function castVote(type: VoteType, value: Hex | null, unguarded = false) {
    if (muted) return
    if (!unguarded && config.signState && !config.signState.allow(type, height, round, value)) return
    const vote = signVote(config.chainId, config.privateKey, { type, height, round, value, validator: config.id })
    const mine = votesAt(height, round, type)
    if (!mine.has(config.id)) mine.set(config.id, vote)
    out.push({ kind: 'broadcast', message: { t: 'vote', vote } })
  }

  function prevote(value: Hex | null) {
    myPrevote = value
    castVote('prevote', value)
    step = 'prevote'
  }

  function precommit(value: Hex | null) {
    castVote('precommit', value)
    step = 'precommit'
  }

  function startRound(r: number) {
    round = r
    step = 'propose'
    myPrevote = undefined
    if (proposerOf(height, r) === config.id && !muted) {
      const payload = validValue === null ? undefined : payloads.get(validValue)
      if (payload) propose([payload], validRound)
      else out.push({ kind: 'build', height, round })
    }
    // The proposer schedules it too: if its build fails, the round still moves on.
    schedule('propose', proposeDelay(r))
  }

  function propose(list: Payload[], polRound: number) {
    const others = config.validators.map((v) => v.id).filter((id) => id !== config.id)
    const half = Math.floor(others.length / 2)
    // The second payload of an equivocating proposer (test builds) is a double proposal on purpose.
    const first = list[0]
    if (first && config.signState && !config.signState.allow('proposal', height, round, valueIdOf(first))) return
    list.forEach((payload, i) => {
      const proposal = signProposal(config.chainId, config.privateKey, {
        height,
        round,
        polRound,
        proposer: config.id,
        payload,
      })
      const id = valueIdOf(payload)
      payloads.set(id, payload)
      validity.set(id, 'valid')
      if (i === 0) storeProposal(proposal)
      // An equivocating proposer (two payloads) sends one to half the peers, one to the rest.
      if (list.length === 1) out.push({ kind: 'broadcast', message: { t: 'proposal', proposal } })
      else out.push({ kind: 'broadcast', message: { t: 'proposal', proposal }, to: i === 0 ? others.slice(0, half) : others.slice(half) })
    })
  }

  function storeProposal(p: Proposal): 'new' | 'duplicate' {
    const key = `${p.height}/${p.round}`
    let list = proposals.get(key)
    if (!list) proposals.set(key, (list = []))
    const id = valueIdOf(p.payload)
    if (list.some((q) => valueIdOf(q.payload) === id && q.polRound === p.polRound)) return 'duplicate'
    const first = list[0]
    if (first) {
      const evKey = `proposal/${p.proposer}/${p.height}/${p.round}`
      if (!evidenceSeen.has(evKey)) {
        evidenceSeen.add(evKey)
        out.push({
          kind: 'evidence',
          evidence: { validator: p.proposer, height: p.height, round: p.round, type: 'proposal', a: first, b: p },
        })
      }
      // Keep a second value (a quorum may form on it); more are noise.
      if (list.length >= 2) return 'duplicate'
    }
    list.push(p)
    payloads.set(id, p.payload)
    return 'new'
  }

  function requestValidation(p: Proposal) {
    const id = valueIdOf(p.payload)
    if (validity.has(id)) return
    validity.set(id, 'pending')
    out.push({ kind: 'validate', proposal: p, valueId: id })
  }

  function onProposal(p: Proposal) {
    if (p.height < height || p.height > height + futureHeights) {
      stats.stale++
      return
    }
    const expected = proposerOf(p.height, p.round)
    if (p.proposer !== expected) {
      reject(p, 'proposer', `signed by validator ${p.proposer}, but the proposer of (${p.height}, ${p.round}) is ${expected}`)
      return
    }
    if (!verifyProposal(config.chainId, config.validators, p)) {
      stats.badSignatures++
      reject(p, 'signature', `the signature does not recover to validator ${p.proposer}'s address`)
      return
    }
    config.signState?.observe(p.height)
    if (storeProposal(p) === 'duplicate') return
    out.push({ kind: 'relay', message: { t: 'proposal', proposal: p } })
    if (p.height === height && step !== 'decided') requestValidation(p)
  }

  function reject(p: Proposal, field: RejectionField, reason: string) {
    if (p.height !== height) return
    const key = `${p.height}/${p.round}/${p.proposer}/${field}`
    if (rejectedSeen.has(key)) return
    rejectedSeen.add(key)
    out.push({ kind: 'reject', proposal: p, field, reason })
  }

  function onVote(v: Vote) {
    if (v.height < height || v.height > height + futureHeights) {
      stats.stale++
      return
    }
    const m = votesAt(v.height, v.round, v.type)
    const existing = m.get(v.validator)
    if (existing && existing.value === v.value) return
    // A conflicting vote stays out of the tally (the first one counts). Once one is verified,
    // recorded and relayed, later ones of that validator, type, height and round are dropped
    // unread: re-verified and relayed on every arrival, a double vote circulated among the peers
    // for good and kept every honest node's loop busy on signature recoveries.
    const evidenceKey = `${v.type}/${v.validator}/${v.height}/${v.round}`
    if (existing && evidenceSeen.has(evidenceKey)) {
      stats.conflictsDropped++
      return
    }
    if (!verifyVote(config.chainId, config.validators, v)) {
      stats.badSignatures++
      return
    }
    config.signState?.observe(v.height)
    out.push({ kind: 'relay', message: { t: 'vote', vote: v } })
    if (existing) {
      evidenceSeen.add(evidenceKey)
      out.push({
        kind: 'evidence',
        evidence: { validator: v.validator, height: v.height, round: v.round, type: v.type, a: existing, b: v },
      })
      return
    }
    m.set(v.validator, v)
  }

  function onTimeout(t: Timeout) {
    if (t.height !== height) return
    switch (t.kind) {
      case 'slot':
        if (step === 'waiting') startRound(0)
        return
      case 'propose': {
        if (t.round !== round || step !== 'propose') return
        // The proposal is here but its re-execution has not finished (a large block on a busy
        // machine): give it one more propose timeout instead of voting nil on a block we never
        // looked at. Once only, so a proposer cannot stall a round with slow blocks.
        const p = proposals.get(`${height}/${round}`)?.[0]
        if (p && validity.get(valueIdOf(p.payload)) === 'pending' && once('propose-extension')) {
          schedule('propose', proposeDelay(round))
          return
        }
        prevote(null)
        return
      }
      case 'prevote':
        if (t.round === round && step === 'prevote') precommit(null)
        return
      case 'precommit':
        if (t.round === round && step !== 'decided' && step !== 'waiting') startRound(round + 1)
        return
    }
  }

  function enterHeight(h: number, notBeforeMs = 0) {
    height = h
    round = 0
    step = 'waiting'
    lockedRound = -1
    lockedValue = null
    validRound = -1
    validValue = null
    myPrevote = undefined
    extraVoted.clear()
    untimely.clear()
    for (const key of proposals.keys()) if (Number(key.split('/')[0]) < h) proposals.delete(key)
    for (const key of votes.keys()) if (Number(key.split('/')[0]) < h) votes.delete(key)
    const live = new Set<Hex>()
    for (const list of proposals.values()) for (const p of list) live.add(valueIdOf(p.payload))
    for (const id of [...payloads.keys()]) if (!live.has(id)) payloads.delete(id)
    for (const id of [...validity.keys()]) if (!live.has(id)) validity.delete(id)
    for (const key of fired) if (Number(key.split('/')[1]) < h) fired.delete(key)
    rejectedSeen.clear()
    if (evidenceSeen.size > 10_000) evidenceSeen.clear()
    // Proposals that arrived early can be checked now that their parent is the head.
    for (const [key, list] of proposals) if (Number(key.split('/')[0]) === h) for (const p of list) requestValidation(p)
    const waitMs = Math.max(slotStartMs(h), notBeforeMs) - now
    if (waitMs <= 0) startRound(0)
    else out.push({ kind: 'schedule', timeout: { kind: 'slot', height: h, round: 0 }, delayMs: waitMs })
  }

  // ---- the upon-rules, evaluated after every input until none fires -------------------------

  /** Line 49: a proposal and 2f+1 precommits for it in any round decide the height. */
  function ruleDecide(): boolean {
    if (step === 'decided') return false
    for (const [key, list] of proposals) {
      const [h, r] = key.split('/').map(Number) as [number, number]
      if (h !== height) continue
      for (const p of list) {
        const id = valueIdOf(p.payload)
        if (validity.get(id) !== 'valid' || count(h, r, 'precommit', id) < quorum) continue
        const signed = [...votesAt(h, r, 'precommit').values()].filter((v) => v.value === id)
        signed.sort((a, b) => a.validator - b.validator)
        step = 'decided'
        out.push({
          kind: 'decide',
          height: h,
          round: r,
          proposer: p.proposer,
          payload: p.payload,
          certificate: { round: r, votes: signed.map((v) => ({ validator: v.validator, signature: v.signature })) },
        })
        return true
      }
    }
    return false
  }

  /** Line 55: f+1 validators already in a higher round of this height: join them. */
  function ruleRoundSkip(): boolean {
    if (step === 'decided') return false
    const senders = new Map<number, Set<number>>()
    const add = (r: number, validator: number) => {
      if (r <= round) return
      let s = senders.get(r)
      if (!s) senders.set(r, (s = new Set()))
      s.add(validator)
    }
    for (const [key, list] of proposals) {
      const [h, r] = key.split('/').map(Number) as [number, number]
      if (h === height) for (const p of list) add(r, p.proposer)
    }
    for (const [key, m] of votes) {
      const [h, r] = key.split('/').map(Number) as [number, number]
      if (h === height) for (const v of m.keys()) add(r, v)
    }
    let best = -1
    for (const [r, s] of senders) if (s.size >= skip && r > best) best = r
    if (best < 0) return false
    startRound(best)
    return true
  }

  /** Lines 22 and 28: prevote on the round's proposal once its validity is known. */
  function ruleProposal(): boolean {
    if (step !== 'propose') return false
    const p = proposals.get(`${height}/${round}`)?.[0]
    if (!p) return false
    const id = valueIdOf(p.payload)
    if (p.polRound === -1 && untimely.has(round)) {
      prevote(null)
      return true
    }
    const v = validity.get(id)
    if (v === undefined || v === 'pending') return false
    const ok = v === 'valid'
    if (p.polRound === -1) {
      prevote(ok && (lockedRound === -1 || lockedValue === id) ? id : null)
      return true
    }
    if (p.polRound < round && count(height, p.polRound, 'prevote', id) >= quorum) {
      prevote(ok && (lockedRound <= p.polRound || lockedValue === id) ? id : null)
      return true
    }
    return false
  }

  /** Line 34: any 2f+1 prevotes: start the prevote timeout. */
  function rulePrevoteTimeout(): boolean {
    if (step !== 'prevote' || count(height, round, 'prevote', undefined) < quorum || !once('prevote-timeout')) return false
    schedule('prevote', delay(timeouts.prevoteMs, round))
    return true
  }

  /** Line 36: a valid proposal with 2f+1 prevotes: lock on it and precommit it. */
  function ruleLock(): boolean {
    if (step !== 'prevote' && step !== 'precommit') return false
    for (const p of proposals.get(`${height}/${round}`) ?? []) {
      const id = valueIdOf(p.payload)
      if (validity.get(id) !== 'valid' || count(height, round, 'prevote', id) < quorum) continue
      if (!once('lock')) return false
      if (step === 'prevote') {
        lockedValue = id
        lockedRound = round
        precommit(id)
      }
      validValue = id
      validRound = round
      return true
    }
    return false
  }

  /** Line 44: 2f+1 nil prevotes: precommit nil. */
  function ruleNilPrecommit(): boolean {
    if (step !== 'prevote' || count(height, round, 'prevote', null) < quorum) return false
    precommit(null)
    return true
  }

  /** Line 47: any 2f+1 precommits: start the precommit timeout. */
  function rulePrecommitTimeout(): boolean {
    if (step === 'waiting' || step === 'decided') return false
    if (count(height, round, 'precommit', undefined) < quorum || !once('precommit-timeout')) return false
    schedule('precommit', delay(timeouts.precommitMs, round))
    return true
  }

  /** Test builds only: also vote for every other valid proposal of the round. */
  function ruleVoteForTwo(): boolean {
    if (!config.voteForTwoProposals || step === 'propose' || step === 'waiting' || step === 'decided') return false
    for (const p of proposals.get(`${height}/${round}`) ?? []) {
      const id = valueIdOf(p.payload)
      const key = `${height}/${round}/${id}`
      if (id === myPrevote || validity.get(id) !== 'valid' || extraVoted.has(key)) continue
      extraVoted.add(key)
      const keepStep = step
      castVote('prevote', id, true)
      castVote('precommit', id, true)
      step = keepStep
      return true
    }
    return false
  }

  const rules = [ruleDecide, ruleRoundSkip, ruleProposal, rulePrevoteTimeout, ruleLock, ruleNilPrecommit, rulePrecommitTimeout, ruleVoteForTwo]

  function evaluate() {
    for (let i = 0; i < 64; i++) {
      let any = false
      for (const rule of rules) {
        if (rule()) {
          any = true
          if (step === 'decided') return
          break
        }
      }
      if (!any) return
    }
  }

  function run(fn: () => void, nowMs: number): Output[] {
    now = nowMs
    out = []
    fn()
    if (step !== 'waiting') evaluate()
    else ruleDecide()
    return out
  }

  return {
    stats,
    proposerOf,
    start(head, nowMs, notBeforeMs) {
      return run(() => enterHeight(head + 1, notBeforeMs), nowMs)
    },
    step(input, nowMs) {
      return run(() => {
        switch (input.kind) {
          case 'proposal':
            onProposal(input.proposal)
            return
          case 'vote':
            onVote(input.vote)
            return
          case 'timeout':
            onTimeout(input.timeout)
            return
          case 'validated':
            if (input.height !== height || validity.get(input.valueId) !== 'pending') return
            if (input.untimely) {
              untimely.add(input.untimely.round)
              validity.delete(input.valueId)
            } else if (input.valid === null) validity.delete(input.valueId)
            else validity.set(input.valueId, input.valid ? 'valid' : 'invalid')
            return
          case 'built':
            if (input.height === height && input.round === round && step === 'propose' && input.payloads.length > 0)
              propose(input.payloads, -1)
            return
          case 'committed':
            if (input.height >= height) enterHeight(input.height + 1, input.notBeforeMs)
            return
        }
      }, nowMs)
    },
    state: () => ({ height, round, step, lockedRound, lockedValue, validRound, validValue }),
    gossip() {
      const out: Message[] = []
      const list = proposals.get(`${height}/${round}`) ?? []
      for (const p of list) {
        out.push({ t: 'proposal', proposal: p })
        if (p.polRound >= 0)
          for (const v of votes.get(`${height}/${p.polRound}/prevote`)?.values() ?? []) out.push({ t: 'vote', vote: v })
      }
      for (const type of ['prevote', 'precommit'] as const)
        for (const v of votes.get(`${height}/${round}/${type}`)?.values() ?? []) out.push({ t: 'vote', vote: v })
      return out
    },
    validity: (id) => validity.get(id),
    setMuted(m) {
      muted = m
    },
    setExecutionMs(ms) {
      executionMs = Number.isFinite(ms) && ms > 0 ? ms : 0
    },
  }
}
