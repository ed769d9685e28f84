import { type ChildProcess, spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as http from 'node:http'
import * as net from 'node:net'
import * as os from 'node:os'
import * as path from 'node:path'
import { bytesToHex, keccak256, parseEther, stringToBytes } from 'viem'
import { mnemonicToAccount, privateKeyToAccount } from 'viem/accounts'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { parseNodeConfig } from '../src/devnet/node/config.js'
import { type Consensus, createConsensus, defaultTimeouts, type Input, type Output } from '../src/devnet/node/consensus.js'
import { certificateSigners, isPinned, quorums, recoverSigner, sign, signedBy, signProposal, signVote, valueIdOf, voteDigest } from '../src/devnet/node/crypto.js'
import { createJwt, RethEngine } from '../src/devnet/node/engine-api.js'
import { AnvilEngine } from '../src/devnet/node/execution.js'
import { type NodeHandle, startNode } from '../src/devnet/node/node.js'
import { openStore } from '../src/devnet/node/store.js'
import type { CommittedBlock, Hex, Payload, Proposal, Vote } from '../src/devnet/node/types.js'
import { type AnvilInstance, startAnvil } from '../src/targets/anvil.js'
import { signalGroup } from '../src/targets/processes.js'
import { startRpcProxy } from '../src/proxy/jsonrpc/proxy.js'
import { createPrng } from '../src/util/prng.js'

// One validator node of a 4-validator devnet, against real Anvil processes and real TCP on
// 127.0.0.1. Consensus rules are unit-tested without a network first; then devnets of four.

const mnemonic = 'test test test test test test test test test test test junk'
/** Validator keys: HD accounts 10..13 of Anvil's mnemonic (not the funded dev accounts 0..9). */
const validatorAccounts = [0, 1, 2, 3].map((i) => mnemonicToAccount(mnemonic, { addressIndex: 10 + i }))
const validatorKeys = validatorAccounts.map((a) => bytesToHex(a.getHdKey().privateKey as Uint8Array))
const validators = validatorAccounts.map((a, id) => ({ id, address: a.address.toLowerCase() as Hex }))
/** Anvil's dev account 0. */
const devKey = '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80' as const
const chainId = 31337

const cleanups: (() => unknown)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

// ---- consensus, no network ------------------------------------------------------------------

const slotMs = 1_000
const genesisMs = 1_700_000_000_000

function fakePayload(height: number, tag: string): Payload {
  const word = (label: string) => keccak256(stringToBytes(`${tag}/${label}/${height}`))
  return {
    number: height,
    parentHash: word('parent'),
    timestampS: genesisMs / 1000 + height,
    feeRecipient: '0x000000000000000000000000000000000000beef',
    transactions: [],
    blockHash: word('block'),
    stateRoot: word('state'),
    receiptsRoot: word('receipts'),
  }
}

const proposal = (by: number, height: number, round: number, payload: Payload, polRound = -1): Proposal =>
  signProposal(chainId, validatorKeys[by] as Hex, { height, round, polRound, proposer: by, payload })
const vote = (by: number, type: Vote['type'], height: number, round: number, value: Hex | null): Vote =>
  signVote(chainId, validatorKeys[by] as Hex, { type, height, round, value, validator: by })

/** One validator's state machine with a manual clock. */
function machine(id: number, extra: { voteForTwoProposals?: boolean } = {}) {
  const c: Consensus = createConsensus({
    id,
    privateKey: validatorKeys[id] as Hex,
    validators,
    chainId,
    slotMs,
    genesisMs,
    ...extra,
  })
  let now = genesisMs + slotMs // height 1's slot has begun
  const log: Output[] = []
  const feed = (input: Input) => {
    const out = c.step(input, now)
    log.push(...out)
    return out
  }
  const start = () => {
    const out = c.start(0, now)
    log.push(...out)
    return out
  }
  const myVotes = (type: Vote['type']) =>
    log.flatMap((o) => (o.kind === 'broadcast' && o.message.t === 'vote' && o.message.vote.type === type ? [o.message.vote] : []))
  return { c, feed, start, log, myVotes, tick: (ms: number) => (now += ms) }
}

describe('consensus (pure state machine)', () => {
  it('sizes quorums as 2f+1 and round skips as f+1', () => {
    expect(quorums(4)).toEqual({ f: 1, quorum: 3, skip: 2 })
    expect(quorums(7)).toEqual({ f: 2, quorum: 5, skip: 3 })
    expect(quorums(1)).toEqual({ f: 0, quorum: 1, skip: 1 })
  })

  it('waits for the slot boundary before round 0', () => {
    const c = createConsensus({ id: 1, privateKey: validatorKeys[1] as Hex, validators, chainId, slotMs, genesisMs })
    // Validator 1 proposes (1, 0); 300 ms before the slot it only schedules the slot start.
    const out = c.start(0, genesisMs + slotMs - 300)
    expect(out).toEqual([{ kind: 'schedule', timeout: { kind: 'slot', height: 1, round: 0 }, delayMs: 300 }])
    const atSlot = c.step({ kind: 'timeout', timeout: { kind: 'slot', height: 1, round: 0 } }, genesisMs + slotMs)
    expect(atSlot.map((o) => o.kind)).toEqual(['build', 'schedule'])
  })

  it('does not start a height before the first timestamp a block on top of the head may carry', () => {
    // A chain behind its slots catches up no faster than its timestamps: round 0 of height 2
    // waits until the parent's timestamp + 1 s, though height 2's slot is long past.
    const c = createConsensus({ id: 2, privateKey: validatorKeys[2] as Hex, validators, chainId, slotMs, genesisMs })
    const now = genesisMs + 10 * slotMs
    c.start(0, now)
    const out = c.step({ kind: 'committed', height: 1, notBeforeMs: now + 700 }, now)
    expect(out).toEqual([{ kind: 'schedule', timeout: { kind: 'slot', height: 2, round: 0 }, delayMs: 700 }])
    // Without it (or once it has passed), round 0 starts at once: validator 2 proposes (2, 0).
    const c2 = createConsensus({ id: 2, privateKey: validatorKeys[2] as Hex, validators, chainId, slotMs, genesisMs })
    c2.start(0, now)
    expect(c2.step({ kind: 'committed', height: 1, notBeforeMs: now - 1 }, now).map((o) => o.kind)).toEqual(['build', 'schedule'])
  })

  it('paces the propose timeout by the execution layer: at least three times its recent build or re-execution time', () => {
    const proposeDelays = (c: Consensus, from: number) => {
      const out = c.start(0, from)
      return out.flatMap((o) => (o.kind === 'schedule' && o.timeout.kind === 'propose' ? [o.delayMs] : []))
    }
    const at = genesisMs + slotMs
    const { proposeMs, maxMs } = defaultTimeouts(slotMs)
    const idle = createConsensus({ id: 1, privateKey: validatorKeys[1] as Hex, validators, chainId, slotMs, genesisMs })
    idle.setExecutionMs(50)
    expect(proposeDelays(idle, at)).toEqual([proposeMs])
    const slow = createConsensus({ id: 1, privateKey: validatorKeys[1] as Hex, validators, chainId, slotMs, genesisMs })
    slow.setExecutionMs(900)
    expect(proposeDelays(slow, at)).toEqual([2_700])
    // …and never past the cap.
    const stuck = createConsensus({ id: 1, privateKey: validatorKeys[1] as Hex, validators, chainId, slotMs, genesisMs })
    stuck.setExecutionMs(100_000)
    expect(proposeDelays(stuck, at)).toEqual([maxMs])
  })

  it('commits with 2f+1 precommits and a certificate of valid signatures', () => {
    const m = machine(2)
    m.start()
    const v = fakePayload(1, 'a')
    const id = valueIdOf(v)
    const validate = m.feed({ kind: 'proposal', proposal: proposal(1, 1, 0, v) })
    expect(validate.find((o) => o.kind === 'validate')).toBeTruthy()
    // Nothing is voted for before the payload is known to be valid.
    expect(m.myVotes('prevote')).toEqual([])
    m.feed({ kind: 'validated', height: 1, valueId: id, valid: true })
    expect(m.myVotes('prevote').map((x) => x.value)).toEqual([id])
    m.feed({ kind: 'vote', vote: vote(0, 'prevote', 1, 0, id) })
    expect(m.myVotes('precommit')).toEqual([]) // 2 of 4 prevotes: no quorum yet
    m.feed({ kind: 'vote', vote: vote(1, 'prevote', 1, 0, id) })
    expect(m.myVotes('precommit').map((x) => x.value)).toEqual([id])
    expect(m.c.state()).toMatchObject({ lockedRound: 0, lockedValue: id, validRound: 0, validValue: id, step: 'precommit' })
    m.feed({ kind: 'vote', vote: vote(0, 'precommit', 1, 0, id) })
    const out = m.feed({ kind: 'vote', vote: vote(3, 'precommit', 1, 0, id) })
    const decide = out.find((o) => o.kind === 'decide')
    if (decide?.kind !== 'decide') throw new Error('no decision')
    expect(decide.certificate.votes.map((x) => x.validator)).toEqual([0, 2, 3])
    expect(certificateSigners(chainId, validators, 1, v, decide.certificate)).toBe(3)
    // A certificate for another payload, or with a forged signature, does not count.
    expect(certificateSigners(chainId, validators, 1, fakePayload(1, 'b'), decide.certificate)).toBe(0)
    const forged = { ...decide.certificate, votes: decide.certificate.votes.map((x, i) => (i === 0 ? { ...x, validator: 1 } : x)) }
    expect(certificateSigners(chainId, validators, 1, v, forged)).toBe(2)
  })

  it('checks a signature against the pinned public key exactly as recovery does: a flipped v, a high-s twin, another key or digest', () => {
    // secp256k1's group order: (r, n - s) with v flipped is the same signature to recovery.
    const n = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n
    const address = validators[1]?.address as Hex
    const tamper = (sig: Hex, how: string): Hex => {
      const b = Buffer.from(sig.slice(2), 'hex')
      const highS = () => b.set(Buffer.from((n - BigInt(`0x${b.subarray(32, 64).toString('hex')}`)).toString(16).padStart(64, '0'), 'hex'), 32)
      // v is 27 + the recovery bit: 27 ↔ 28.
      if (how === 'v flipped') b[64] = 55 - (b[64] as number)
      if (how === 'high-s twin') (highS(), (b[64] = 55 - (b[64] as number)))
      if (how === 'high-s, v kept') highS()
      if (how === 'r bit') b[7] = (b[7] as number) ^ 0x20
      if (how === 'v = 29') b[64] = 29
      return `0x${b.toString('hex')}`
    }
    const kinds = ['honest', 'v flipped', 'high-s twin', 'high-s, v kept', 'r bit', 'v = 29', 'another key', 'another digest']
    const answers: Record<string, [boolean, boolean][]> = {}
    const pinnedAt: boolean[] = []
    for (let i = 0; i < 24; i++) {
      pinnedAt.push(isPinned(address))
      const digest = keccak256(stringToBytes(`pinned/${i}`))
      for (const how of kinds) {
        const sig = how === 'another key' ? sign(digest, validatorKeys[2] as Hex) : tamper(sign(digest, validatorKeys[1] as Hex), how)
        const checked = how === 'another digest' ? keccak256(stringToBytes(`other/${i}`)) : digest
        ;(answers[how] ??= []).push([signedBy(checked, sig, address), recoverSigner(checked, sig) === address])
      }
    }
    for (const how of kinds) {
      // The first honest ones recovered, then pinned the key; the later ones were checked with the key.
      for (const [fast, recovery] of answers[how] ?? []) expect(fast, how).toBe(recovery)
      const expected = how === 'honest' || how === 'high-s twin'
      expect(answers[how]?.map(([fast]) => fast), how).toEqual(Array(24).fill(expected))
    }
    expect(pinnedAt.slice(-8)).toEqual(Array(8).fill(true))
  })

  it('prevotes nil on an invalid proposal and on a propose timeout, then moves to the next round', () => {
    const m = machine(2)
    m.start()
    const bad = fakePayload(1, 'bad')
    m.feed({ kind: 'proposal', proposal: proposal(1, 1, 0, bad) })
    m.feed({ kind: 'validated', height: 1, valueId: valueIdOf(bad), valid: false })
    expect(m.myVotes('prevote').map((x) => x.value)).toEqual([null])
    m.feed({ kind: 'vote', vote: vote(0, 'prevote', 1, 0, null) })
    m.feed({ kind: 'vote', vote: vote(3, 'prevote', 1, 0, null) })
    expect(m.myVotes('precommit').map((x) => x.value)).toEqual([null])
    m.feed({ kind: 'vote', vote: vote(0, 'precommit', 1, 0, null) })
    const out = m.feed({ kind: 'vote', vote: vote(3, 'precommit', 1, 0, null) })
    // 2f+1 precommits of any kind start the precommit timeout (0.15 slot in round 0).
    expect(out).toContainEqual({ kind: 'schedule', timeout: { kind: 'precommit', height: 1, round: 0 }, delayMs: 150 })
    m.feed({ kind: 'timeout', timeout: { kind: 'precommit', height: 1, round: 0 } })
    expect(m.c.state()).toMatchObject({ height: 1, round: 1, step: 'propose' })
    // Validator 2 proposes (1, 1) itself: it asks for a payload; its propose timeout grew by 50%.
    expect(m.log.filter((o) => o.kind === 'build')).toEqual([{ kind: 'build', height: 1, round: 1 }])
    expect(m.log).toContainEqual({ kind: 'schedule', timeout: { kind: 'propose', height: 1, round: 1 }, delayMs: 600 })
  })

  it('keeps its lock across rounds and re-proposes its valid value with a proof-of-lock round', () => {
    // Validator 3 locks v in round 0, but too few precommits arrive.
    const m = machine(3)
    m.start()
    const v = fakePayload(1, 'v')
    const w = fakePayload(1, 'w')
    const idV = valueIdOf(v)
    const idW = valueIdOf(w)
    m.feed({ kind: 'proposal', proposal: proposal(1, 1, 0, v) })
    m.feed({ kind: 'validated', height: 1, valueId: idV, valid: true })
    m.feed({ kind: 'vote', vote: vote(1, 'prevote', 1, 0, idV) })
    m.feed({ kind: 'vote', vote: vote(2, 'prevote', 1, 0, idV) })
    expect(m.c.state()).toMatchObject({ lockedValue: idV, lockedRound: 0 })
    m.feed({ kind: 'vote', vote: vote(0, 'precommit', 1, 0, null) })
    m.feed({ kind: 'vote', vote: vote(1, 'precommit', 1, 0, null) })
    m.feed({ kind: 'timeout', timeout: { kind: 'precommit', height: 1, round: 0 } })
    // Round 1: validator 2 proposes a fresh value w. Locked on v, validator 3 prevotes nil.
    m.feed({ kind: 'proposal', proposal: proposal(2, 1, 1, w) })
    m.feed({ kind: 'validated', height: 1, valueId: idW, valid: true })
    expect(m.myVotes('prevote').map((x) => [x.round, x.value])).toEqual([
      [0, idV],
      [1, null],
    ])
    for (const by of [0, 1, 2]) m.feed({ kind: 'vote', vote: vote(by, 'precommit', 1, 1, null) })
    m.feed({ kind: 'timeout', timeout: { kind: 'precommit', height: 1, round: 1 } })
    // Round 2 is validator 3's own: it re-proposes v with polRound 0, not a new payload.
    const proposals = m.log.flatMap((o) => (o.kind === 'broadcast' && o.message.t === 'proposal' ? [o.message.proposal] : []))
    expect(proposals.map((p) => [p.round, p.polRound, valueIdOf(p.payload)])).toEqual([[2, 0, idV]])
    expect(m.log.filter((o) => o.kind === 'build')).toEqual([])
    expect(m.myVotes('prevote').at(-1)).toMatchObject({ round: 2, value: idV })

    // A validator locked on w (round 1) accepts v again only with a later proof of lock.
    const k = machine(0)
    k.start()
    k.feed({ kind: 'vote', vote: vote(1, 'precommit', 1, 1, null) })
    k.feed({ kind: 'vote', vote: vote(2, 'precommit', 1, 1, null) }) // f+1 in round 1: skip to it
    expect(k.c.state().round).toBe(1)
    k.feed({ kind: 'proposal', proposal: proposal(2, 1, 1, w) })
    k.feed({ kind: 'validated', height: 1, valueId: idW, valid: true })
    for (const by of [1, 2]) k.feed({ kind: 'vote', vote: vote(by, 'prevote', 1, 1, idW) })
    expect(k.c.state()).toMatchObject({ lockedValue: idW, lockedRound: 1 })
    k.feed({ kind: 'vote', vote: vote(1, 'precommit', 1, 1, null) })
    k.feed({ kind: 'timeout', timeout: { kind: 'precommit', height: 1, round: 1 } })
    // Round 2: v re-proposed with polRound 0 < lockedRound 1 → nil, even with 2f+1 prevotes for v in round 0.
    for (const by of [1, 2, 3]) k.feed({ kind: 'vote', vote: vote(by, 'prevote', 1, 0, idV) })
    k.feed({ kind: 'proposal', proposal: proposal(3, 1, 2, v, 0) })
    k.feed({ kind: 'validated', height: 1, valueId: idV, valid: true })
    expect(k.myVotes('prevote').at(-1)).toMatchObject({ round: 2, value: null })
  })

  it('a proposal refused for its timestamp refuses that proposal, not its value: re-proposed with a proof of lock, the value gets its prevote', () => {
    // A validator restarted while the others were locked on v hears round 0's proposal late:
    // too old against its clock (untimely). Round 0 gets a nil prevote; round 1 re-proposes v
    // with polRound 0 and the round-0 polka, and it must prevote v (before, v stayed invalid
    // for the whole height, and 7 validators stalled after a burst kill).
    const m = machine(3)
    m.start()
    const v = fakePayload(1, 'v')
    const idV = valueIdOf(v)
    m.feed({ kind: 'proposal', proposal: proposal(1, 1, 0, v) })
    m.feed({ kind: 'validated', height: 1, valueId: idV, valid: false, untimely: { round: 0 } })
    expect(m.myVotes('prevote').map((x) => [x.round, x.value])).toEqual([[0, null]])
    for (const by of [0, 1, 2]) m.feed({ kind: 'vote', vote: vote(by, 'prevote', 1, 0, idV) })
    for (const by of [0, 1, 2]) m.feed({ kind: 'vote', vote: vote(by, 'precommit', 1, 0, null) })
    m.feed({ kind: 'timeout', timeout: { kind: 'precommit', height: 1, round: 0 } })
    expect(m.c.state().round).toBe(1)
    m.feed({ kind: 'proposal', proposal: proposal(2, 1, 1, v, 0) })
    // Validated again (a re-proposal of a quorum's value is not judged by its age).
    expect(m.log.filter((o) => o.kind === 'validate').length).toBe(2)
    m.feed({ kind: 'validated', height: 1, valueId: idV, valid: true })
    expect(m.myVotes('prevote').map((x) => [x.round, x.value])).toEqual([
      [0, null],
      [1, idV],
    ])
    // An execution refusal still is the value's: it is never validated again at this height.
    const k = machine(3)
    k.start()
    k.feed({ kind: 'proposal', proposal: proposal(1, 1, 0, v) })
    k.feed({ kind: 'validated', height: 1, valueId: idV, valid: false })
    for (const by of [0, 1, 2]) k.feed({ kind: 'vote', vote: vote(by, 'prevote', 1, 0, idV) })
    for (const by of [0, 1, 2]) k.feed({ kind: 'vote', vote: vote(by, 'precommit', 1, 0, null) })
    k.feed({ kind: 'timeout', timeout: { kind: 'precommit', height: 1, round: 0 } })
    k.feed({ kind: 'proposal', proposal: proposal(2, 1, 1, v, 0) })
    expect(k.log.filter((o) => o.kind === 'validate').length).toBe(1)
    expect(k.myVotes('prevote').map((x) => [x.round, x.value])).toEqual([
      [0, null],
      [1, null],
    ])
  })

  it('records equivocation evidence: two proposals, or two prevotes, for one height and round', () => {
    const m = machine(2)
    m.start()
    const a = proposal(1, 1, 0, fakePayload(1, 'a'))
    const b = proposal(1, 1, 0, fakePayload(1, 'b'))
    m.feed({ kind: 'proposal', proposal: a })
    const out = m.feed({ kind: 'proposal', proposal: b })
    expect(out).toContainEqual({ kind: 'evidence', evidence: { validator: 1, height: 1, round: 0, type: 'proposal', a, b } })
    const p1 = vote(0, 'prevote', 1, 0, valueIdOf(a.payload))
    const p2 = vote(0, 'prevote', 1, 0, null)
    m.feed({ kind: 'vote', vote: p1 })
    expect(m.feed({ kind: 'vote', vote: p2 })).toContainEqual({
      kind: 'evidence',
      evidence: { validator: 0, height: 1, round: 0, type: 'prevote', a: p1, b: p2 },
    })
    // The same vote again is not evidence; a forged one is dropped.
    expect(m.feed({ kind: 'vote', vote: p1 })).toEqual([])
    const forged = { ...vote(3, 'prevote', 1, 0, null), validator: 1 }
    expect(m.feed({ kind: 'vote', vote: forged })).toEqual([])
    expect(m.c.stats.badSignatures).toBe(1)
    // The conflicting vote again (a peer relaying it back), or a third value, is dropped unread:
    // neither relayed nor recorded again. Relayed on every arrival, one double vote went round the
    // peers for good and kept honest nodes busy verifying it.
    expect(m.feed({ kind: 'vote', vote: p2 })).toEqual([])
    expect(m.feed({ kind: 'vote', vote: vote(0, 'prevote', 1, 0, valueIdOf(b.payload)) })).toEqual([])
    expect(m.c.stats.conflictsDropped).toBe(2)
    expect(m.c.stats.badSignatures).toBe(1)
  })

  it('voteForTwoProposals: a broken validator signs two prevotes in one round', () => {
    const honest = machine(2)
    const broken = machine(2, { voteForTwoProposals: true })
    for (const m of [honest, broken]) {
      m.start()
      const a = fakePayload(1, 'a')
      const b = fakePayload(1, 'b')
      m.feed({ kind: 'proposal', proposal: proposal(1, 1, 0, a) })
      m.feed({ kind: 'validated', height: 1, valueId: valueIdOf(a), valid: true })
      m.feed({ kind: 'proposal', proposal: proposal(1, 1, 0, b) })
      m.feed({ kind: 'validated', height: 1, valueId: valueIdOf(b), valid: true })
    }
    expect(honest.myVotes('prevote')).toHaveLength(1)
    const two = broken.myVotes('prevote')
    expect(two.map((v) => v.round)).toEqual([0, 0])
    expect(new Set(two.map((v) => v.value)).size).toBe(2)
    // An honest peer that sees both records them as evidence against validator 2.
    const peer = machine(3)
    peer.start()
    for (const v of two) peer.feed({ kind: 'vote', vote: v })
    expect(peer.log.filter((o) => o.kind === 'evidence')).toHaveLength(1)
  })
})

// ---- execution: Anvil as an Engine-API-shaped engine ---------------------------------------

async function startDevAnvil(label: string, genesisS: number): Promise<AnvilInstance> {
  const anvil = await startAnvil({ label, extraArgs: ['--no-mining', '--timestamp', String(genesisS)] })
  cleanups.push(() => anvil.stop())
  return anvil
}

async function transfer(nonce: number, from: Hex = devKey) {
  return (await privateKeyToAccount(from).signTransaction({
    chainId,
    type: 'eip1559',
    nonce,
    to: '0x000000000000000000000000000000000000dEaD',
    value: parseEther('1'),
    gas: 21_000n,
    maxFeePerGas: 10n ** 10n,
    maxPriorityFeePerGas: 1n,
  })) as Hex
}

describe('execution (AnvilEngine over two real Anvils)', () => {
  it('re-executes a payload byte for byte, and rejects a flipped state root or an unexecutable tx', async () => {
    const genesisS = 1_700_000_000
    const [a, b] = await Promise.all([startDevAnvil('exec-a', genesisS), startDevAnvil('exec-b', genesisS)])
    const builder = await AnvilEngine.connect({ url: a.url })
    const checker = await AnvilEngine.connect({ url: b.url })
    cleanups.push(() => builder.close(), () => checker.close())
    expect(checker.head().hash).toBe(builder.head().hash)

    const txs = [await transfer(0), await transfer(1)]
    const built = await builder.buildPayload({ parent: builder.head().hash, timestampS: genesisS + 1, feeRecipient: validators[1]?.address as Hex, txs })
    const { rejected, ...payload } = built
    expect(rejected).toEqual([])
    expect(payload).toMatchObject({ number: 1, timestampS: genesisS + 1, transactions: txs.map((t) => t.toLowerCase()) })

    // A proposer whose stateRoot was flipped in transit (one bit): honest re-execution says where.
    const flipped = { ...payload, stateRoot: flipBit(payload.stateRoot) }
    const status = await checker.newPayload(flipped)
    expect(status).toMatchObject({ status: 'INVALID', field: 'stateRoot', mismatched: ['stateRoot'] })
    // INVALID leaves nothing behind: the head is unchanged and the honest payload still validates.
    expect(checker.head().number).toBe(0)
    expect(await checker.newPayload({ ...payload, transactions: [...payload.transactions, await transfer(0, broke)] })).toMatchObject({
      status: 'INVALID',
      field: 'transactions',
    })
    expect(await checker.newPayload({ ...payload, parentHash: flipBit(payload.parentHash) })).toMatchObject({ field: 'parentHash' })
    // unsafe.skipStateRootCheck: the flipped root alone is accepted.
    expect(await checker.newPayload(flipped, { ignore: ['stateRoot'] })).toEqual({ status: 'VALID' })
    expect(await checker.newPayload(payload)).toEqual({ status: 'VALID' })
    await checker.forkchoiceUpdated(payload.blockHash)
    await builder.forkchoiceUpdated(payload.blockHash)
    expect(checker.head()).toEqual({ number: 1, hash: payload.blockHash, timestampS: genesisS + 1 })
    expect(await b.rpc.request('eth_getTransactionCount', [privateKeyToAccount(devKey).address, 'latest'])).toBe('0x2')

    // Consensus on top: a validator that learns the flipped payload is invalid prevotes nil.
    const m = machine(2)
    m.start()
    const p = proposal(1, 1, 0, flipped)
    m.feed({ kind: 'proposal', proposal: p })
    m.feed({ kind: 'validated', height: 1, valueId: valueIdOf(flipped), valid: status.status === 'VALID' })
    expect(m.myVotes('prevote').map((v) => v.value)).toEqual([null])
  })
})

/** A key with no funds: its transactions cannot execute. */
const broke = keccak256(stringToBytes('forkchaos/test/broke'))

function flipBit(word: Hex): Hex {
  const last = Number.parseInt(word.slice(-1), 16) ^ 1
  return `${word.slice(0, -1)}${last.toString(16)}` as Hex
}

describe('engine API (RethEngine request shapes, local server)', () => {
  it('authenticates every call with a fresh HS256 JWT and speaks exchangeCapabilities → forkchoiceUpdatedV3 → getPayloadV3 → newPayloadV3', async () => {
    const secret = `0x${'ab'.repeat(32)}`
    const nowMs = 1_800_000_000_000
    const calls: { method: string; params: unknown[]; auth: string | undefined }[] = []
    const envelope = {
      parentHash: `0x${'11'.repeat(32)}`,
      feeRecipient: `0x${'22'.repeat(20)}`,
      stateRoot: `0x${'33'.repeat(32)}`,
      receiptsRoot: `0x${'44'.repeat(32)}`,
      logsBloom: `0x${'00'.repeat(256)}`,
      prevRandao: `0x${'00'.repeat(32)}`,
      blockNumber: '0x8',
      gasLimit: '0x1c9c380',
      gasUsed: '0x0',
      timestamp: '0x6553f108',
      extraData: '0x',
      baseFeePerGas: '0x7',
      blockHash: `0x${'55'.repeat(32)}`,
      transactions: [],
      withdrawals: [],
      blobGasUsed: '0x0',
      excessBlobGas: '0x0',
    }
    const server = http.createServer((req, res) => {
      let body = ''
      req.on('data', (c) => (body += c))
      req.on('end', () => {
        const call = JSON.parse(body)
        calls.push({ method: call.method, params: call.params, auth: req.headers.authorization })
        const answers: Record<string, unknown> = {
          eth_getBlockByNumber: { number: '0x7', hash: envelope.parentHash, timestamp: '0x6553f107' },
          engine_forkchoiceUpdatedV3: { payloadStatus: { status: 'VALID', latestValidHash: envelope.parentHash }, payloadId: call.params[1] ? '0x0000000000000001' : null },
          engine_getPayloadV3: { executionPayload: envelope, blockValue: '0x0', blobsBundle: { commitments: [], proofs: [], blobs: [] }, shouldOverrideBuilder: false },
          engine_newPayloadV3: { status: 'VALID', latestValidHash: envelope.blockHash, validationError: null },
        }
        res.end(JSON.stringify({ jsonrpc: '2.0', id: call.id, result: answers[call.method] ?? null }))
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())))
    const url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`

    const engine = await RethEngine.connect({ url, jwtSecretHex: secret, nowMs: () => nowMs })
    cleanups.push(() => engine.close())
    expect(engine.head()).toEqual({ number: 7, hash: envelope.parentHash, timestampS: 0x6553f107 })
    const built = await engine.buildPayload({ parent: envelope.parentHash as Hex, timestampS: 0x6553f108, feeRecipient: envelope.feeRecipient as Hex, txs: [] })
    expect(built).toMatchObject({ number: 8, blockHash: envelope.blockHash, stateRoot: envelope.stateRoot, rejected: [] })
    expect(await engine.newPayload(built)).toEqual({ status: 'VALID' })
    await engine.forkchoiceUpdated(built.blockHash)
    expect(engine.head().number).toBe(8)

    // A server without V4 (its exchangeCapabilities answers null) gets V3; the proposer
    // newPayloads its own block inside the build, before any forkchoiceUpdated to it.
    expect(calls.map((c) => c.method)).toEqual([
      'engine_exchangeCapabilities',
      'eth_getBlockByNumber',
      'engine_forkchoiceUpdatedV3',
      'engine_getPayloadV3',
      'engine_newPayloadV3',
      'engine_newPayloadV3',
      'engine_forkchoiceUpdatedV3',
    ])
    const state = { headBlockHash: envelope.parentHash, safeBlockHash: envelope.parentHash, finalizedBlockHash: envelope.parentHash }
    expect(calls[2]?.params).toEqual([
      state,
      { timestamp: '0x6553f108', prevRandao: `0x${'00'.repeat(32)}`, suggestedFeeRecipient: envelope.feeRecipient, withdrawals: [], parentBeaconBlockRoot: `0x${'00'.repeat(32)}` },
    ])
    expect(calls[3]?.params).toEqual(['0x0000000000000001'])
    expect(calls[4]?.params).toEqual([envelope, [], `0x${'00'.repeat(32)}`])
    expect(calls[5]?.params).toEqual([envelope, [], `0x${'00'.repeat(32)}`])
    expect(calls[6]?.params).toEqual([{ headBlockHash: envelope.blockHash, safeBlockHash: envelope.blockHash, finalizedBlockHash: envelope.blockHash }, null])
    // Every call: Bearer <HS256 JWT with iat = now>, signed with the secret's bytes.
    for (const c of calls) {
      const token = c.auth?.replace(/^Bearer /, '') ?? ''
      const [header, claims, signature] = token.split('.')
      expect(JSON.parse(Buffer.from(header ?? '', 'base64url').toString())).toEqual({ alg: 'HS256', typ: 'JWT' })
      expect(JSON.parse(Buffer.from(claims ?? '', 'base64url').toString())).toEqual({ iat: nowMs / 1000 })
      const expected = (await import('node:crypto'))
        .createHmac('sha256', Buffer.from('ab'.repeat(32), 'hex'))
        .update(`${header}.${claims}`)
        .digest('base64url')
      expect(signature).toBe(expected)
    }
    expect(createJwt(secret, 1)).toBe(createJwt(secret.slice(2), 1))
    expect(() => createJwt('0x1234', 1)).toThrowErrorMatchingInlineSnapshot(`
      [InputError: The Engine API JWT secret must be 32 bytes of hex.

      Length: 4]
    `)
  })
})

// ---- store ---------------------------------------------------------------------------------

describe('store (append-only, checksummed)', () => {
  const block = (h: number, parent: Hex): CommittedBlock => ({
    payload: { ...fakePayload(h, 's'), parentHash: parent },
    certificate: { round: 0, votes: [{ validator: 0, signature: `0x${'11'.repeat(65)}` }] },
  })
  const chainOf = (n: number) => {
    const out: CommittedBlock[] = []
    let parent = `0x${'00'.repeat(32)}` as Hex
    for (let h = 1; h <= n; h++) {
      const b = block(h, parent)
      out.push(b)
      parent = b.payload.blockHash
    }
    return out
  }

  it('keeps the good prefix of a corrupted file and moves the rest aside', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forkchaos-store-'))
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }))
    const blocks = chainOf(4)
    const store = openStore(dir)
    for (const b of blocks) store.append(b)
    store.close()
    expect(openStore(dir).blocks).toHaveLength(4)
    // Flip one character inside record 3.
    const file = path.join(dir, 'blocks.log')
    const lines = fs.readFileSync(file, 'utf8').split('\n')
    lines[2] = (lines[2] as string).replace('"number":3', '"number":5')
    fs.writeFileSync(file, lines.join('\n'))
    const reopened = openStore(dir)
    expect(reopened.blocks.map((b) => b.payload.number)).toEqual([1, 2])
    expect(reopened.corruption).toMatchObject({ atHeight: 3, reason: 'checksum mismatch' })
    expect(fs.existsSync(reopened.corruption?.movedTo as string)).toBe(true)
    // Appends continue after the good prefix.
    reopened.append(blocks[2] as CommittedBlock)
    reopened.close()
    expect(openStore(dir).blocks).toHaveLength(3)
  })

  it('a full disk (ENOSPC) throws and leaves the file as it was', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forkchaos-store-'))
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }))
    let full = false
    const store = openStore(dir, {
      write: (fd, data) => {
        if (!full) return void fs.writeSync(fd, data)
        // A short write, then the error: the torn half must not stay in the file.
        fs.writeSync(fd, data.subarray(0, 10))
        throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' })
      },
    })
    const blocks = chainOf(2)
    store.append(blocks[0] as CommittedBlock)
    full = true
    expect(() => store.append(blocks[1] as CommittedBlock)).toThrow(/ENOSPC/)
    full = false
    store.append(blocks[1] as CommittedBlock)
    store.close()
    const reopened = openStore(dir)
    expect(reopened.corruption).toBeNull()
    expect(reopened.blocks).toHaveLength(2)
  })
})

// ---- devnets of four validators over real TCP ----------------------------------------------

type NodeConfigJson = Record<string, unknown> & { id: number; dataDir: string; p2pListen: string }

/**
 * A free port below Linux's ephemeral range (32768+), so that no outbound connection of any
 * process takes it while a restarted node wants it back.
 */
const portPrng = createPrng(process.pid)
async function freePort(): Promise<number> {
  for (;;) {
    const port = portPrng.int(20_000, 32_000)
    const server = net.createServer()
    const ok = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false))
      server.listen(port, '127.0.0.1', () => resolve(true))
    })
    if (!ok) continue
    await new Promise<void>((resolve) => server.close(() => resolve()))
    return port
  }
}

async function call<T = unknown>(url: string, method: string, params: unknown[] = []): Promise<T> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
  })
  const body = (await res.json()) as { result?: T; error?: { code: number; message: string } }
  if (body.error) throw Object.assign(new Error(body.error.message), { code: body.error.code })
  return body.result as T
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs: number, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe().catch(() => undefined)
    if (value !== undefined && value !== false) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, everyMs))
  }
}

type FcBlock = {
  height: number
  hash: Hex
  parentHash: Hex
  stateRoot: Hex
  valueId: Hex
  proposer: number
  round: number
  certificate: { round: number; votes: { validator: number; signature: Hex }[] }
}

type Devnet = {
  genesisS: number
  anvils: AnvilInstance[]
  configs: NodeConfigJson[]
  /** RPC URL per node (changes when a node is restarted). */
  rpcs: string[]
  nodes: (NodeHandle | null)[]
  heights(): Promise<number[]>
  stop(): Promise<void>
}

async function startDevnet(options: {
  label: string
  slotMs: number
  extra?: Record<number, Record<string, unknown>>
  /** Puts something (a fault proxy) between a node and its Anvil: returns the URL the node uses. */
  executionUrl?: (id: number, anvil: AnvilInstance) => Promise<string>
}): Promise<Devnet> {
  const genesisS = Math.round(Date.now() / 1_000)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `forkchaos-${options.label}-`))
  const anvils = await Promise.all([0, 1, 2, 3].map((i) => startAnvil({ label: `${options.label}-${i}`, extraArgs: ['--no-mining', '--timestamp', String(genesisS)] })))
  const executionUrls = await Promise.all(anvils.map((a, i) => options.executionUrl?.(i, a) ?? a.url))
  const ports = await Promise.all([0, 1, 2, 3].map(() => freePort()))
  const configs = [0, 1, 2, 3].map(
    (i): NodeConfigJson => ({
      id: i,
      privateKey: validatorKeys[i],
      validators,
      p2pListen: `127.0.0.1:${ports[i]}`,
      peers: [0, 1, 2, 3].filter((j) => j !== i).map((j) => ({ id: j, address: `127.0.0.1:${ports[j]}` })),
      rpcListen: '127.0.0.1:0',
      executionUrl: executionUrls[i],
      dataDir: path.join(dir, `node${i}`),
      slotMs: options.slotMs,
      genesisTimestampS: genesisS,
      chainId,
      maxDriftMs: 5_000,
      mempool: { maxTotal: 20_000, maxPerSender: 256 },
      ...options.extra?.[i],
    }),
  )
  const nodes: (NodeHandle | null)[] = await Promise.all(configs.map((c) => startNode(parseNodeConfig(c))))
  const devnet: Devnet = {
    genesisS,
    anvils,
    configs,
    nodes,
    rpcs: nodes.map((n) => n?.rpc ?? ''),
    heights: () => Promise.all(devnet.rpcs.map(async (url) => Number(await call<Hex>(url, 'eth_blockNumber')))),
    async stop() {
      await Promise.all(devnet.nodes.map((n) => n?.stop()))
      await Promise.all(anvils.map((a) => a.stop()))
      // FORKCHAOS_KEEP_DEVNET=1 keeps the data dirs (node.log, blocks.log) for a look afterwards.
      if (process.env.FORKCHAOS_KEEP_DEVNET) console.info(`devnet kept in ${dir}`)
      else fs.rmSync(dir, { recursive: true, force: true })
    },
  }
  return devnet
}

/** Every node serves the same block at every height up to `upTo`, with a valid certificate. */
async function expectSameChain(urls: string[], upTo: number) {
  for (let h = 1; h <= upTo; h++) {
    const blocks = await Promise.all(urls.map((url) => call<FcBlock>(url, 'fc_block', [h])))
    const first = blocks[0] as FcBlock
    for (const b of blocks) expect(b.hash, `height ${h}`).toBe(first.hash)
    const signers = new Set<number>()
    for (const v of first.certificate.votes) {
      const digestSigner = validators.find((x) => x.id === v.validator)
      const vote: Vote = { type: 'precommit', height: h, round: first.certificate.round, value: first.valueId, validator: v.validator, signature: v.signature }
      if (digestSigner && signVoteCheck(vote)) signers.add(v.validator)
    }
    expect(signers.size, `valid distinct precommits at ${h}`).toBeGreaterThanOrEqual(3)
    // The certified hash is the execution layer's block at that height.
    const block = await call<{ hash: Hex; parentHash: Hex }>(urls[0] as string, 'eth_getBlockByNumber', [`0x${h.toString(16)}`, false])
    expect(block.hash).toBe(first.hash)
  }
}

function signVoteCheck(v: Vote): boolean {
  const payloadless = { type: v.type, height: v.height, round: v.round, value: v.value }
  return recoverSigner(voteDigest(chainId, payloadless), v.signature) === validators.find((x) => x.id === v.validator)?.address
}

describe('devnet: four honest validators (500 ms slots)', () => {
  let dn: Devnet
  let startedAtMs = 0
  beforeAll(async () => {
    startedAtMs = Date.now()
    dn = await startDevnet({ label: 'honest', slotMs: 500 })
  })
  afterAll(async () => {
    await dn?.stop()
  })

  it('commits a block per slot; every node has the same chain and valid certificates', async () => {
    const heights = await waitFor('5 commits on every node', async () => {
      const hs = await dn.heights()
      return Math.min(...hs) >= 5 && hs
    }, 30_000)
    // From a cold start (Anvils included) that takes about 4 s on an idle machine; speed is
    // bench/devnet.ts's to measure. A 6 s bound here failed at load 7 (6.8 s), so the bound only
    // says the chain got going, with room for a busy 2-core machine.
    expect(Date.now() - startedAtMs).toBeLessThan(40_000)
    await expectSameChain(dn.rpcs, Math.min(...heights))
    const status = await call<Record<string, unknown>>(dn.rpcs[0] as string, 'fc_status')
    expect(status).toMatchObject({ id: 0, peers: [1, 2, 3], rejections: 0, storeErrors: 0 })
  })

  it('includes a transaction sent to node 2; every node serves its receipt', async () => {
    expect(await call(dn.rpcs[2] as string, 'eth_chainId')).toBe(`0x${chainId.toString(16)}`)
    const account = privateKeyToAccount(devKey)
    const nonce = Number(await call<Hex>(dn.rpcs[2] as string, 'eth_getTransactionCount', [account.address, 'latest']))
    const raw = await transfer(nonce)
    const hash = await call<Hex>(dn.rpcs[2] as string, 'eth_sendRawTransaction', [raw])
    expect(hash).toBe(keccak256(raw))
    // A duplicate is fine (same hash); a stale nonce and garbage are refused with -32000.
    expect(await call(dn.rpcs[2] as string, 'eth_sendRawTransaction', [raw])).toBe(hash)
    await expect(call(dn.rpcs[2] as string, 'eth_sendRawTransaction', ['0x1234'])).rejects.toMatchObject({ code: -32000 })
    const receipts = await waitFor('the receipt on all nodes', async () => {
      const all = await Promise.all(dn.rpcs.map((url) => call<{ blockHash: Hex; status: Hex } | null>(url, 'eth_getTransactionReceipt', [hash])))
      return all.every((r) => r !== null) && (all as { blockHash: Hex; status: Hex }[])
    }, 5_000)
    expect(new Set(receipts.map((r) => r.blockHash)).size).toBe(1)
    expect(receipts[0]?.status).toBe('0x1')
    // Bad JSON-RPC gets JSON-RPC errors.
    const res = await fetch(dn.rpcs[1] as string, { method: 'POST', body: '{nope' })
    expect(await res.json()).toEqual({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'parse error: the body is not JSON' } })
    await expect(call(dn.rpcs[1] as string, 'eth_mine')).rejects.toMatchObject({ code: -32601 })
  })

  it('keeps committing without node 3; node 3 restarted as a process catches up by itself', async () => {
    await dn.nodes[3]?.stop()
    dn.nodes[3] = null
    const live = dn.rpcs.slice(0, 3)
    const liveHeights = () => Promise.all(live.map(async (url) => Number(await call<Hex>(url, 'eth_blockNumber'))))
    const stoppedAt = Math.max(...(await liveHeights()))
    await waitFor('4 more commits without node 3', async () => Math.min(...(await liveHeights())) >= stoppedAt + 4, 5_000)

    // Corrupt record 3 of its store: it keeps blocks 1-2, rolls its Anvil back, syncs the rest.
    const config = { ...(dn.configs[3] as NodeConfigJson) }
    const storeFile = path.join(config.dataDir, 'blocks.log')
    const records = fs.readFileSync(storeFile, 'utf8').split('\n')
    records[2] = `${'0'.repeat(64)}${(records[2] as string).slice(64)}`
    fs.writeFileSync(storeFile, records.join('\n'))
    // The same config and data dir, now through the process contract: READY line, SIGTERM → exit 0.
    const file = path.join(config.dataDir, '..', 'node3.json')
    fs.writeFileSync(file, JSON.stringify(config))
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/devnet/node/main.ts', file], {
      cwd: path.join(import.meta.dirname, '..'),
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const kill = () => child.pid !== undefined && signalGroup(child.pid, 'SIGKILL')
    cleanups.push(kill)
    const ready = await readyLine(child)
    expect(ready).toMatchObject({ id: 3, p2p: config.p2pListen })
    dn.rpcs[3] = ready.rpc
    const target = Math.max(...(await liveHeights()))
    const restartedAtMs = Date.now()
    await waitFor('node 3 to catch up', async () => Number(await call<Hex>(ready.rpc, 'eth_blockNumber')) >= target, 5_000)
    const catchUpMs = Date.now() - restartedAtMs
    await expectSameChain([dn.rpcs[0] as string, ready.rpc], target)
    const status = await call<{ sync: { blocksSynced: number } }>(ready.rpc, 'fc_status')
    // Everything above the corruption came from peers (consensus may have committed the last ones).
    expect(status.sync.blocksSynced).toBeGreaterThanOrEqual(target - 2 - 2)
    const log = fs.readFileSync(path.join(config.dataDir, 'node.log'), 'utf8')
    expect(log).toMatch(/store: corruption at height 3 \(checksum mismatch\); kept 2 blocks/)
    expect(log).toMatch(/replay: rolling Anvil back from \d+ to 2/)
    console.info(`node 3: ${target - stoppedAt} blocks behind at restart, caught up ${catchUpMs} ms after READY`)
    const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
    child.kill('SIGTERM')
    expect(await exit).toBe(0)
  })

  it('replays its store into a fresh Anvil; a full disk stops it from voting, without a crash, until it can write again', async () => {
    // A fresh Anvil (same flags): the node re-executes every stored block and checks the hashes.
    await dn.anvils[3]?.stop()
    const fresh = await startAnvil({ label: 'honest-3-fresh', extraArgs: ['--no-mining', '--timestamp', String(dn.genesisS)] })
    dn.anvils[3] = fresh
    const config = { ...(dn.configs[3] as NodeConfigJson), executionUrl: fresh.url }
    const stored = openStore(config.dataDir)
    const storedHeight = stored.blocks.length
    stored.close()
    let full = true
    const node = await startNode(config, {
      store: {
        write: (fd, data) => {
          if (full) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' })
          fs.writeSync(fd, data)
        },
      },
    })
    dn.nodes[3] = node
    dn.rpcs[3] = node.rpc
    const from = node.status().height
    expect(from).toBe(storedHeight)
    // node.log is written through a stream: on a busy machine the line lands a moment later.
    const replayLine = `replay: head ${storedHeight} (${storedHeight} blocks on disk, Anvil was at 0)`
    await waitFor('the replay line in node.log', async () => fs.readFileSync(path.join(config.dataDir, 'node.log'), 'utf8').includes(replayLine), 3_000)
    const muted = await waitFor('store errors', async () => node.status().storeErrors > 0 && node.status().height >= from + 3 && node.status(), 5_000)
    expect(muted.muted).toBe(true)
    // While muted its signature is on no certificate.
    const certified = await call<FcBlock>(dn.rpcs[0] as string, 'fc_block', [from + 3])
    expect(certified.certificate.votes.map((v) => v.validator)).not.toContain(3)
    full = false
    await waitFor('the store to catch up', async () => !node.status().muted, 3_000)
    const height = node.status().height
    await node.stop()
    dn.nodes[3] = null
    expect(openStore(dn.configs[3]?.dataDir as string).blocks.length).toBeGreaterThanOrEqual(height)
  })

  it('survives garbage on its p2p port and its RPC port', async () => {
    const [, port] = (dn.configs[0]?.p2pListen as string).split(':')
    const socket = net.connect(Number(port), '127.0.0.1')
    await new Promise((resolve) => socket.once('connect', resolve))
    socket.write('garbage\n{"t":"hello","id":1,"chainId":31337}\n{not json\n{"t":"vote","vote":{"type":"prevote"}}\n')
    socket.write(`${JSON.stringify({ t: 'vote', vote: { ...vote(3, 'prevote', 1_000_000, 0, null), validator: 2 } })}\n`)
    socket.write(`${JSON.stringify({ t: 'syncResponse', blocks: [{ payload: fakePayload(1, 'x'), certificate: { round: 0, votes: [] } }] })}\n`)
    socket.end()
    const before = Number(await call<Hex>(dn.rpcs[0] as string, 'eth_blockNumber'))
    await waitFor('more commits', async () => Number(await call<Hex>(dn.rpcs[0] as string, 'eth_blockNumber')) >= before + 2, 3_000)
    const status = await call<{ p2p: { badFrames: number } }>(dn.rpcs[0] as string, 'fc_status')
    expect(status.p2p.badFrames).toBeGreaterThanOrEqual(2)
    for (const body of ['[]', '{"jsonrpc":"2.0","id":1,"method":"fc_block","params":["x"]}', '{"id":2,"method":"eth_getBalance","params":[1]}', '"str"']) {
      const res = await fetch(dn.rpcs[0] as string, { method: 'POST', body })
      expect(((await res.json()) as { error: { code: number } }).error.code).toBeLessThan(-32000)
    }
  })
})

async function readyLine(child: ChildProcess): Promise<{ id: number; rpc: string; p2p: string }> {
  let out = ''
  let err = ''
  child.stderr?.on('data', (c: Buffer) => {
    err = (err + c.toString()).slice(-4_000)
  })
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no READY line within 15 s; stderr: ${err}`)), 15_000)
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString()
      const m = /^READY (\{.*\})$/m.exec(out)
      if (m) {
        clearTimeout(timer)
        resolve(JSON.parse(m[1] as string))
      }
    })
    child.once('exit', (code) => reject(new Error(`the node exited (${code}) before READY; stderr: ${err}`)))
  })
}

describe('devnet: lying proposers (500 ms slots)', () => {
  /** Node 1's Anvil answers through a JSON-RPC proxy that flips the last bit of every block's `stateRoot`. */
  const flipStateRoots = async (id: number, anvil: AnvilInstance) => {
    if (id !== 1) return anvil.url
    const proxy = await startRpcProxy({ upstream: anvil.url, prng: createPrng(7) })
    cleanups.push(() => proxy.close())
    proxy.addRule({
      match: { methods: ['eth_getBlockByNumber'] },
      action: { type: 'rewrite', path: 'stateRoot', with: (v) => (typeof v === 'string' ? flipBit(v as Hex) : v) },
    })
    return proxy.url
  }

  it('a proposer whose execution layer lies about the state root is rejected; with two unsafe validators the lie is certified', async () => {
    for (const unsafe of [false, true]) {
      const dn = await startDevnet({
        label: unsafe ? 'flip-unsafe' : 'flip',
        slotMs: 500,
        executionUrl: flipStateRoots,
        ...(unsafe ? { extra: { 2: { unsafe: { skipStateRootCheck: true } }, 3: { unsafe: { skipStateRootCheck: true } } } } : {}),
      })
      cleanups.push(() => dn.stop())
      // Node 1 proposes height 1 in round 0: its payload carries the flipped root it was told.
      type Rejection = { proposer: number; layer: string; field: string; height: number; round: number }
      const rejection = await waitFor('node 0 to reject node 1', async () => {
        const list = await call<Rejection[]>(dn.rpcs[0] as string, 'fc_rejections')
        return list.find((r) => r.proposer === 1)
      }, 5_000)
      expect(rejection).toMatchObject({ layer: 'execution', field: 'stateRoot' })
      await waitFor('height 2 everywhere', async () => Math.min(...(await dn.heights())) >= 2, 5_000)
      const certified = await call<FcBlock>(dn.rpcs[0] as string, 'fc_block', [rejection.height])
      const executed = await dn.anvils[0]?.rpc.request<{ stateRoot: Hex }>('eth_getBlockByNumber', [`0x${rejection.height.toString(16)}`, false])
      if (unsafe) {
        // Node 1 and the two broken validators make a quorum: the certified root is the lie.
        expect(certified).toMatchObject({ proposer: 1, round: rejection.round })
        expect(certified.stateRoot).toBe(flipBit(executed?.stateRoot as Hex))
      } else {
        expect(certified.round).toBeGreaterThan(rejection.round)
        expect(certified.stateRoot).toBe(executed?.stateRoot)
      }
      await dn.stop()
    }
  })

  it('rejects a stale-parent block, an unexecutable tx and an equivocation; the chain still commits', async () => {
    const dn = await startDevnet({
      label: 'byzantine',
      slotMs: 500,
      extra: { 0: { byzantine: { staleParent: true } }, 1: { byzantine: { invalidTx: true } }, 2: { byzantine: { equivocate: true } } },
    })
    cleanups.push(() => dn.stop())
    const honest = dn.rpcs[3] as string
    type Rejection = { height: number; round: number; proposer: number; layer: string; field: string; reason: string; latencyMs: number; at: number }
    const rejections = await waitFor('rejections of both liars on node 3', async () => {
      const list = await call<Rejection[]>(honest, 'fc_rejections')
      return list.some((r) => r.proposer === 0) && list.some((r) => r.proposer === 1) && list
    }, 8_000)
    const stale = rejections.find((r) => r.proposer === 0) as Rejection
    expect(stale).toMatchObject({ layer: 'consensus', field: 'parentHash' })
    const invalid = rejections.find((r) => r.proposer === 1) as Rejection
    expect(invalid).toMatchObject({ layer: 'execution', field: 'transactions' })
    expect(invalid.reason).toMatch(/Insufficient funds/i)
    // Latency is measured and bounded loosely (a busy 2-core machine took 1,079 ms once); the
    // within-one-slot claim is the drills' `rejects` check, and its speed is in bench/.
    for (const r of [stale, invalid]) {
      expect(r.latencyMs).toBeGreaterThanOrEqual(0)
      expect(r.latencyMs).toBeLessThan(5_000)
    }
    // The heights those proposals were for still committed, in a later round, on every node.
    const target = Math.max(stale.height, invalid.height)
    await waitFor('the rejected heights to commit', async () => Math.min(...(await dn.heights())) >= target, 8_000)
    const block = await call<FcBlock>(honest, 'fc_block', [stale.height])
    expect(block.round).toBeGreaterThan(stale.round)
    await expectSameChain(dn.rpcs, target)
    // Node 2 sent two proposals for one height and round: recorded as evidence, both signed.
    const evidence = await waitFor('equivocation evidence', async () => {
      const all = (await Promise.all(dn.rpcs.map((url) => call<{ validator: number; type: string; a: Proposal; b: Proposal }[]>(url, 'fc_evidence')))).flat()
      return all.find((e) => e.validator === 2 && e.type === 'proposal')
    }, 8_000)
    expect(evidence.a.height).toBe(evidence.b.height)
    expect(valueIdOf(evidence.a.payload)).not.toBe(valueIdOf(evidence.b.payload))
    console.info(`rejection latency: stale parent ${stale.latencyMs} ms, invalid tx ${invalid.latencyMs} ms`)
  })
})
