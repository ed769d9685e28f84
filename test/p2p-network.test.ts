import { afterEach, describe, expect, it } from 'vitest'
import { type P2p, startP2p } from '../src/devnet/node/p2p.js'
import type { Message } from '../src/devnet/node/types.js'
import { createPrng } from '../src/util/prng.js'

/**
 * Devnets on one machine share keys and chain id, and a port one devnet used can be bound by the
 * next. A validator left over from another devnet (a leaked process) that dials such a port must
 * be refused at hello: before `network` it was taken for a peer, its votes for another chain were
 * recorded as equivocation, and the new devnet stalled.
 */
const open: P2p[] = []
afterEach(async () => {
  await Promise.all(open.splice(0).map((p) => p.close()))
})

async function pair(receiverNetwork: string | undefined, senderNetwork: string | undefined) {
  const got: Message[] = []
  const lines: string[] = []
  const receiver = await startP2p({
    id: 0,
    chainId: 31337,
    ...(receiverNetwork ? { network: receiverNetwork } : {}),
    listen: '127.0.0.1:0',
    // It knows validator 1 (its own dial to it goes nowhere: only the inbound link matters here).
    peers: [{ id: 1, address: '127.0.0.1:9' }],
    prng: createPrng(1),
    onMessage: (_from, m) => got.push(m),
    log: (l) => lines.push(l),
  })
  open.push(receiver)
  const sender = await startP2p({
    id: 1,
    chainId: 31337,
    ...(senderNetwork ? { network: senderNetwork } : {}),
    listen: '127.0.0.1:0',
    peers: [{ id: 0, address: receiver.address }],
    prng: createPrng(2),
    onMessage: () => {},
    log: () => {},
  })
  open.push(sender)
  sender.send(0, { t: 'status', height: 7, headHash: `0x${'ab'.repeat(32)}` })
  const deadline = Date.now() + 3_000
  while (Date.now() < deadline && got.length === 0 && !lines.some((l) => l.includes('without a valid hello'))) await new Promise((r) => setTimeout(r, 20))
  return { got, lines }
}

describe('p2p hello', () => {
  it('a peer\'s hello is reported on its own, before (and without) any message', async () => {
    const hellos: number[] = []
    const got: Message[] = []
    const receiver = await startP2p({ id: 0, chainId: 31337, network: 'devnet-a', listen: '127.0.0.1:0', peers: [{ id: 1, address: '127.0.0.1:9' }], prng: createPrng(1), onMessage: (_from, m) => got.push(m), onHello: (from) => hellos.push(from), log: () => {} })
    open.push(receiver)
    const sender = await startP2p({ id: 1, chainId: 31337, network: 'devnet-a', listen: '127.0.0.1:0', peers: [{ id: 0, address: receiver.address }], prng: createPrng(2), onMessage: () => {}, log: () => {} })
    open.push(sender)
    const deadline = Date.now() + 3_000
    while (Date.now() < deadline && hellos.length === 0) await new Promise((r) => setTimeout(r, 20))
    expect(hellos).toEqual([1])
    expect(got).toEqual([])
  })
})

describe('p2p hello names the devnet', () => {
  it('a peer of the same devnet is heard', async () => {
    const { got } = await pair('devnet-a', 'devnet-a')
    expect(got).toEqual([{ t: 'status', height: 7, headHash: `0x${'ab'.repeat(32)}` }])
  })

  it('a validator of another devnet (same keys, same chain id) is refused at hello', async () => {
    const { got, lines } = await pair('devnet-a', 'devnet-b')
    expect(got).toEqual([])
    expect(lines.join('\n')).toContain('p2p: inbound connection without a valid hello ({"t":"hello","id":1,"chainId":31337,"network":"devnet-b"}')
  })

  it('a validator that names no devnet is refused by one that has a name', async () => {
    const { got, lines } = await pair('devnet-a', undefined)
    expect(got).toEqual([])
    expect(lines.some((l) => l.includes('without a valid hello'))).toBe(true)
  })
})
