import { createHash } from 'node:crypto'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { bytesToHex, keccak256, stringToBytes } from 'viem'
import { mnemonicToAccount } from 'viem/accounts'
import { afterEach, describe, expect, it } from 'vitest'
import { createConsensus, type Output } from '../src/devnet/node/consensus.js'
import { signProposal, valueIdOf } from '../src/devnet/node/crypto.js'
import { openSignState, readState, signStateFileName } from '../src/devnet/node/sign-state.js'
import type { Hex, Payload } from '../src/devnet/node/types.js'

// The validator's sign state (src/devnet/node/sign-state.ts) on a real directory: the rules, a
// file that is torn or has flipped bytes, a disk that refuses the write (/dev/full: ENOSPC), and
// a consensus machine that "crashes" (a new machine on the same data dir) between two proposals.

const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true })
})
const tmpDir = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'forkchaos-sign-state-'))
  dirs.push(d)
  return d
}
const X = `0x${'aa'.repeat(32)}` as Hex
const Y = `0x${'bb'.repeat(32)}` as Hex

describe('sign state rules', () => {
  it('identical → allowed again; conflicting at the same or a lower (height, round) → refused, logged once; higher → persisted, allowed', () => {
    const dir = tmpDir()
    const lines: string[] = []
    const s = openSignState(dir, { log: (l) => lines.push(l) })
    expect(s.allow('prevote', 5, 1, X)).toBe(true)
    expect(s.allow('prevote', 5, 1, X)).toBe(true)
    expect(s.allow('prevote', 5, 1, Y)).toBe(false)
    expect(s.allow('prevote', 5, 1, null)).toBe(false)
    expect(s.allow('prevote', 5, 1, Y)).toBe(false)
    expect(s.allow('prevote', 5, 0, X)).toBe(false)
    expect(s.allow('prevote', 4, 9, X)).toBe(false)
    // Kinds are independent: a precommit at 5/1 is not a second prevote.
    expect(s.allow('precommit', 5, 1, null)).toBe(true)
    expect(s.allow('prevote', 5, 2, null)).toBe(true)
    expect(s.allow('prevote', 6, 0, Y)).toBe(true)
    expect(lines).toEqual([
      `sign-state: not signing a prevote at 5/1: already signed ${X} there (now ${Y})`,
      `sign-state: not signing a prevote at 5/1: already signed ${X} there (now nil)`,
      'sign-state: not signing a prevote at 5/0: already signed a prevote at 5/1, a later one',
      'sign-state: not signing a prevote at 4/9: already signed a prevote at 5/1, a later one',
    ])
    // What was allowed is on disk, and a restart (a new open) knows it.
    const again = openSignState(dir)
    expect(again.last).toEqual({ proposal: null, prevote: { height: 6, round: 0, value: Y }, precommit: { height: 5, round: 1, value: null } })
    expect(again.allow('prevote', 6, 0, X)).toBe(false)
    expect(again.allow('prevote', 6, 0, Y)).toBe(true)
    expect(again.allow('precommit', 5, 1, X)).toBe(false)
    // No temp file is left behind.
    expect(fs.readdirSync(dir)).toEqual([signStateFileName])
  })

  it('overwrites the file in place: a shorter state (a value, then nil) leaves no tail of the longer one', () => {
    const dir = tmpDir()
    const s = openSignState(dir)
    expect(s.allow('precommit', 10, 0, X)).toBe(true)
    const file = path.join(dir, signStateFileName)
    const { ino } = fs.statSync(file)
    expect(s.allow('precommit', 11, 0, null)).toBe(true)
    expect(fs.statSync(file).ino).toBe(ino)
    expect(openSignState(dir).unknown).toBe(null)
    expect(openSignState(dir).last.precommit).toEqual({ height: 11, round: 0, value: null })
  })

  it('forget (unsafe.forgetSignState) starts empty: the conflicting vote is allowed', () => {
    const dir = tmpDir()
    expect(openSignState(dir).allow('prevote', 3, 0, X)).toBe(true)
    expect(openSignState(dir).allow('prevote', 3, 0, Y)).toBe(false)
    expect(openSignState(dir, { forget: true }).allow('prevote', 3, 0, Y)).toBe(true)
  })

  it('a torn or byte-flipped file: unknown, signs nothing until a peer is heard, then sits out up to the height heard', () => {
    for (const damage of ['torn', 'flipped', 'empty'] as const) {
      const dir = tmpDir()
      openSignState(dir).allow('prevote', 7, 2, X)
      const file = path.join(dir, signStateFileName)
      const data = fs.readFileSync(file)
      if (damage === 'torn') fs.writeFileSync(file, data.subarray(0, data.length - 10))
      else if (damage === 'empty') fs.writeFileSync(file, '')
      else {
        const at = data.indexOf('"height":7') + 9
        data[at] = '8'.charCodeAt(0)
        fs.writeFileSync(file, data)
      }
      const lines: string[] = []
      const s = openSignState(dir, { log: (l) => lines.push(l) })
      const reason = { torn: 'the file is torn or malformed', flipped: 'checksum mismatch', empty: 'the file is empty' }[damage]
      expect(s.unknown).toEqual({ reason, floorHeight: null })
      expect(lines[0]).toBe(`sign-state: ${file} is unreadable (${reason}); signing nothing up to the height the peers are at`)
      expect(s.allow('prevote', 7, 2, Y)).toBe(false)
      expect(s.allow('prevote', 9, 0, Y)).toBe(false) // no peer heard yet
      s.observe(7)
      expect(s.allow('prevote', 5, 0, Y)).toBe(false) // still behind: the floor may still rise
      s.observe(8)
      expect(s.allow('prevote', 8, 0, Y)).toBe(false) // at the floor: frozen at 8, refused
      s.observe(9)
      expect(s.unknown?.floorHeight).toBe(8)
      expect(s.allow('prevote', 8, 3, Y)).toBe(false)
      expect(s.allow('prevote', 9, 0, Y)).toBe(true)
      expect(s.unknown).toBe(null)
      expect(openSignState(dir).last.prevote).toEqual({ height: 9, round: 0, value: Y })
      expect(lines).toContain('sign-state: not signing a prevote at 8/0: the state file was unreadable: waiting for a height above 8, the highest heard from peers')
    }
  })

  it('readState pins what a bad file is', () => {
    expect(readState(Buffer.from('{"sha256":"00","state":{}}\n'))).toBe('the file is torn or malformed')
    const json = JSON.stringify({ proposal: null, prevote: { height: 1.5, round: 0, value: null }, precommit: null })
    const sum = (t: string) => createHash('sha256').update(t).digest('hex')
    expect(readState(Buffer.from(`{"sha256":"${sum(json)}","state":${json}}\n`))).toBe('the prevote entry is malformed')
  })

  it('a disk that refuses the write (ENOSPC from /dev/full) means "do not sign", and nothing changes', () => {
    const dir = tmpDir()
    const lines: string[] = []
    const s = openSignState(dir, { log: (l) => lines.push(l) })
    expect(s.allow('prevote', 2, 0, X)).toBe(true)
    // The disk-full fault moves a validator's files aside and links each to /dev/full (the file is overwritten in place).
    const file = path.join(dir, signStateFileName)
    fs.renameSync(file, `${file}.aside`)
    fs.symlinkSync('/dev/full', file)
    expect(s.allow('prevote', 3, 0, X)).toBe(false)
    expect(s.allow('precommit', 2, 0, X)).toBe(false)
    expect(lines[0]).toMatch(/^sign-state: not signing a prevote at 3\/0: writing sign-state\.json failed \(ENOSPC: /)
    expect(s.last.prevote).toEqual({ height: 2, round: 0, value: X })
    // The disk is back (the fault's revert): what was persisted is still there, and it signs again.
    fs.rmSync(file)
    fs.renameSync(`${file}.aside`, file)
    expect(openSignState(dir).last.prevote).toEqual({ height: 2, round: 0, value: X })
    expect(s.allow('prevote', 3, 0, X)).toBe(true)
    expect(openSignState(dir).last.prevote).toEqual({ height: 3, round: 0, value: X })
    // A first write (no file yet) that hits a full disk: the temp file it is created as.
    const fresh = openSignState(tmpDir())
    const dir2 = dirs[dirs.length - 1] as string
    fs.symlinkSync('/dev/full', path.join(dir2, `${signStateFileName}.tmp`))
    expect(fresh.allow('prevote', 1, 0, X)).toBe(false)
    expect(fs.existsSync(path.join(dir2, signStateFileName))).toBe(false)
  })
})

describe('consensus asks the sign state', () => {
  const mnemonic = 'test test test test test test test test test test test junk'
  const accounts = [0, 1, 2, 3].map((i) => mnemonicToAccount(mnemonic, { addressIndex: 10 + i }))
  const keys = accounts.map((a) => bytesToHex(a.getHdKey().privateKey as Uint8Array))
  const validators = accounts.map((a, id) => ({ id, address: a.address.toLowerCase() as Hex }))
  const chainId = 31337
  const slotMs = 1_000
  const genesisMs = 1_700_000_000_000
  const payload = (tag: string): Payload => {
    const word = (label: string) => keccak256(stringToBytes(`${tag}/${label}`))
    return { number: 1, parentHash: word('p'), timestampS: genesisMs / 1000 + 1, feeRecipient: '0x000000000000000000000000000000000000beef', transactions: [], blockHash: word('b'), stateRoot: word('s'), receiptsRoot: word('r') }
  }
  /** Validator 0 at height 1 (proposer: validator 1) receives `tag`'s proposal and prevotes; returns its prevotes. */
  const life = (dir: string, tag: string, forget = false) => {
    const c = createConsensus({ id: 0, privateKey: keys[0] as Hex, validators, chainId, slotMs, genesisMs, signState: openSignState(dir, forget ? { forget } : {}) })
    const now = genesisMs + slotMs
    const out: Output[] = [...c.start(0, now)]
    const p = signProposal(chainId, keys[1] as Hex, { height: 1, round: 0, polRound: -1, proposer: 1, payload: payload(tag) })
    out.push(...c.step({ kind: 'proposal', proposal: p }, now))
    out.push(...c.step({ kind: 'validated', height: 1, valueId: valueIdOf(p.payload), valid: true }, now))
    return out.flatMap((o) => (o.kind === 'broadcast' && o.message.t === 'vote' ? [o.message.vote.value] : []))
  }

  it('after a crash, a second, different proposal at the same round gets no prevote; the same one gets the same prevote; forgetSignState double-signs', () => {
    const dir = tmpDir()
    expect(life(dir, 'A')).toEqual([valueIdOf(payload('A'))])
    expect(life(dir, 'B')).toEqual([])
    expect(life(dir, 'A')).toEqual([valueIdOf(payload('A'))])
    expect(life(dir, 'B', true)).toEqual([valueIdOf(payload('B'))])
  })
})
