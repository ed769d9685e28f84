import * as net from 'node:net'
import { InfraError } from '../../errors.js'
import type { Prng } from '../../util/prng.js'
import { splitHostPort } from './config.js'
import { decodeFrame, frameLimits } from './messages.js'
import type { Message } from './types.js'

/**
 * The p2p layer: TCP links carrying newline-delimited JSON, one message per line (so a lossy
 * proxy drops whole messages, never half of one). Each node dials one outbound connection per
 * peer and only ever writes on those; connections accepted on its own port are only read. A
 * per-direction fault proxy in front of a peer therefore controls exactly one direction of
 * one link. A dropped link is redialled with exponential backoff and jitter drawn from a PRNG
 * seeded by the node id, so reconnect timing replays.
 */
export type P2pOptions = {
  id: number
  chainId: number
  /** The devnet's id (config `networkId`): an inbound hello naming another is refused. */
  network?: string
  /** `host:port` to accept peers on (`127.0.0.1:0`: a free port). */
  listen: string
  /** What to dial for each other validator. */
  peers: readonly { id: number; address: string }[]
  prng: Prng
  /** Every decoded frame from an inbound link after its hello. Exceptions are caught and logged. */
  onMessage: (from: number, message: Message) => void
  /**
   * A peer's hello on an inbound link: its link to this node works now. It comes before any of
   * its messages, which may not follow for a while: what the peer sent into a link proxy before
   * the proxy had this node's address never arrives.
   */
  onHello?: (from: number) => void
  log: (line: string) => void
  /** Frames queued per peer while its link is down or slow; the oldest are dropped beyond it. Default 4,096. */
  maxQueueFrames?: number
  /** Bytes queued per peer, likewise. Default 32 MiB. */
  maxQueueBytes?: number
  /** First redial delay. Default 50 ms. */
  minBackoffMs?: number
  /** Largest redial delay. Default 2 s. */
  maxBackoffMs?: number
  /** A dial that does not connect within this is abandoned. Default 2 s. */
  connectTimeoutMs?: number
  /** The monotonic clock link lifetimes are measured on (clock.ts). Default `performance.now`. */
  monotonicMs?: () => number
  /** The longest a relayed message waits for a write to share (`relay`). Default 20 ms. */
  relayDelayMs?: number
}

export type P2p = {
  /** The bound `host:port`. */
  readonly address: string
  /** Queues `message` for one peer. */
  send(to: number, message: Message): void
  /** Queues `message` for every peer (or `only` those). */
  broadcast(message: Message, only?: readonly number[]): void
  /**
   * Like `broadcast`, for a message passed on from another peer: it leaves with the link's next
   * write, at most `relayDelayMs` later, so relays of several messages (and this node's own
   * message that follows) share one write instead of one write, one proxy hop and one read each.
   */
  relay(message: Message, only?: readonly number[]): void
  /** Peers whose outbound link is connected. */
  connectedPeers(): number[]
  readonly stats: P2pStats
  close(): Promise<void>
}

export type P2pStats = {
  /** Frames dropped from full send queues. */
  dropped: number
  /** Inbound lines that were not a valid frame. */
  badFrames: number
  sentFrames: number
  receivedFrames: number
  reconnects: number
}

type Link = {
  id: number
  address: string
  socket: net.Socket | null
  connected: boolean
  writable: boolean
  queue: string[]
  queueBytes: number
  attempts: number
  connectedAtMs: number
  timer: NodeJS.Timeout | null
}

export async function startP2p(options: P2pOptions): Promise<P2p> {
  const monotonicMs = options.monotonicMs ?? (() => performance.now())
  const maxQueueFrames = options.maxQueueFrames ?? 4_096
  const maxQueueBytes = options.maxQueueBytes ?? 32 * 1024 * 1024
  const minBackoffMs = options.minBackoffMs ?? 50
  const maxBackoffMs = options.maxBackoffMs ?? 2_000
  const connectTimeoutMs = options.connectTimeoutMs ?? 2_000
  const relayDelayMs = options.relayDelayMs ?? 20
  let relayTimer: NodeJS.Timeout | null = null
  const stats: P2pStats = { dropped: 0, badFrames: 0, sentFrames: 0, receivedFrames: 0, reconnects: 0 }
  const peerIds = new Set(options.peers.map((p) => p.id))
  let closed = false

  // ---- inbound: read only ----------------------------------------------------------------
  const inbound = new Set<net.Socket>()
  /** A peer said hello: it is up, so a link to it waiting out its backoff dials now (set once the links exist). */
  let peerIsUp: (id: number) => void = () => undefined
  const server = net.createServer((socket) => {
    inbound.add(socket)
    socket.setNoDelay(true)
    let from: number | null = null
    let pending = ''
    socket.on('data', (chunk: Buffer) => {
      pending += chunk.toString('utf8')
      let cut = pending.indexOf('\n')
      while (cut >= 0) {
        const line = pending.slice(0, cut)
        pending = pending.slice(cut + 1)
        if (line.length > 0) handleLine(line)
        if (socket.destroyed) return
        cut = pending.indexOf('\n')
      }
      if (pending.length > frameLimits.maxLineBytes) {
        options.log(`p2p: inbound line over ${frameLimits.maxLineBytes} bytes from ${from ?? 'unknown'}; closing`)
        socket.destroy()
      }
    })
    const handleLine = (line: string) => {
      const decoded = decodeFrame(line)
      if (!decoded.ok) {
        stats.badFrames++
        return
      }
      const message = decoded.message
      if (from === null) {
        if (message.t !== 'hello' || !peerIds.has(message.id) || message.chainId !== options.chainId || message.network !== options.network) {
          stats.badFrames++
          options.log(`p2p: inbound connection without a valid hello (${JSON.stringify(message).slice(0, 80)}); closing`)
          socket.destroy()
          return
        }
        from = message.id
        peerIsUp(from)
        try {
          options.onHello?.(from)
        } catch (error) {
          options.log(`p2p: handling the hello of ${from} failed: ${(error as Error).stack ?? error}`)
        }
        return
      }
      if (message.t === 'hello') return
      stats.receivedFrames++
      try {
        options.onMessage(from, message)
      } catch (error) {
        options.log(`p2p: handling a ${message.t} from ${from} failed: ${(error as Error).stack ?? error}`)
      }
    }
    socket.on('error', () => undefined)
    socket.on('close', () => inbound.delete(socket))
  })
  const { host, port } = splitHostPort(options.listen)
  // A node restarted on its old port may find it briefly taken (an outbound socket of any
  // process can get it as its ephemeral port): retry for a while before giving up.
  for (let attempt = 0; ; attempt++) {
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(port, host, () => {
          server.off('error', reject)
          resolve()
        })
      })
      break
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      if (code !== 'EADDRINUSE' || port === 0 || attempt >= 30) throw listenError(options.listen, error)
      if (attempt === 0) options.log(`p2p: ${options.listen} is in use; retrying for 3 s`)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
  server.on('error', (error) => options.log(`p2p: server error: ${error.message}`))
  const bound = server.address() as net.AddressInfo

  // ---- outbound: write only --------------------------------------------------------------
  const links = new Map<number, Link>()
  for (const peer of options.peers) {
    const link: Link = {
      id: peer.id,
      address: peer.address,
      socket: null,
      connected: false,
      writable: false,
      queue: [],
      queueBytes: 0,
      attempts: 0,
      connectedAtMs: 0,
      timer: null,
    }
    links.set(peer.id, link)
    dial(link)
  }

  // A link that failed while its peer was down (at start-up, a peer's proxy with no upstream yet)
  // backs off up to maxBackoffMs; the peer's own hello says it is up, so try again at once
  // instead of leaving it unreachable for up to 2 s after it started.
  peerIsUp = (id) => {
    const link = links.get(id)
    if (!link || closed || link.socket || !link.timer) return
    clearTimeout(link.timer)
    link.timer = null
    link.attempts = 0
    dial(link)
  }

  function dial(link: Link) {
    if (closed) return
    const { host: h, port: p } = splitHostPort(link.address)
    const socket = net.connect({ host: h, port: p })
    link.socket = socket
    socket.setNoDelay(true)
    socket.setTimeout(connectTimeoutMs, () => socket.destroy())
    socket.on('connect', () => {
      socket.setTimeout(0)
      link.connected = true
      link.writable = true
      link.connectedAtMs = monotonicMs()
      socket.write(`${JSON.stringify({ t: 'hello', id: options.id, chainId: options.chainId, ...(options.network ? { network: options.network } : {}) })}\n`)
      flush(link)
    })
    socket.on('drain', () => {
      link.writable = true
      flush(link)
    })
    // Nothing is expected back on an outbound link; read and discard so the socket never stalls.
    socket.on('data', () => undefined)
    socket.on('error', () => undefined)
    socket.on('close', () => {
      if (link.socket !== socket) return
      link.socket = null
      link.connected = false
      link.writable = false
      if (closed) return
      // A link that lived a while starts over; one that dies at once (a proxy with no upstream) backs off.
      if (link.connectedAtMs > 0 && monotonicMs() - link.connectedAtMs > 1_000) link.attempts = 0
      link.connectedAtMs = 0
      const base = Math.min(maxBackoffMs, minBackoffMs * 2 ** link.attempts)
      link.attempts = Math.min(link.attempts + 1, 30)
      const delayMs = Math.round(base * (0.5 + options.prng.next()))
      stats.reconnects++
      link.timer = setTimeout(() => {
        link.timer = null
        dial(link)
      }, delayMs)
    })
  }

  function flush(link: Link) {
    const socket = link.socket
    if (!socket || !link.connected) return
    // Lines queued in one tick (a vote and the relay that completed its quorum…) leave in one
    // write: fewer syscalls here and fewer chunks for a link proxy. Still whole lines.
    if (link.queue.length > 0 && socket.writableCorked === 0) {
      socket.cork()
      process.nextTick(() => socket.uncork())
    }
    while (link.writable && link.queue.length > 0) {
      const line = link.queue.shift() as string
      link.queueBytes -= line.length
      stats.sentFrames++
      if (!socket.write(line)) link.writable = false
    }
  }

  function enqueue(link: Link, line: string, now = true) {
    link.queue.push(line)
    link.queueBytes += line.length
    while (link.queue.length > maxQueueFrames || (link.queueBytes > maxQueueBytes && link.queue.length > 1)) {
      const dropped = link.queue.shift() as string
      link.queueBytes -= dropped.length
      stats.dropped++
    }
    if (now) flush(link)
    else
      relayTimer ??= setTimeout(() => {
        relayTimer = null
        for (const l of links.values()) flush(l)
      }, relayDelayMs)
  }

  return {
    address: `${bound.address}:${bound.port}`,
    stats,
    send(to, message) {
      const link = links.get(to)
      if (link && !closed) enqueue(link, `${JSON.stringify(message)}\n`)
    },
    broadcast(message, only) {
      if (closed) return
      const line = `${JSON.stringify(message)}\n`
      for (const link of links.values()) if (!only || only.includes(link.id)) enqueue(link, line)
    },
    relay(message, only) {
      if (closed) return
      const line = `${JSON.stringify(message)}\n`
      for (const link of links.values()) if (!only || only.includes(link.id)) enqueue(link, line, false)
    },
    connectedPeers: () => [...links.values()].filter((l) => l.connected).map((l) => l.id),
    async close() {
      if (closed) return
      closed = true
      if (relayTimer) clearTimeout(relayTimer)
      for (const link of links.values()) {
        if (link.timer) clearTimeout(link.timer)
        // Let what is already written go out, then close.
        link.socket?.end()
        link.socket?.destroySoon()
      }
      for (const s of inbound) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      for (const link of links.values()) link.socket?.destroy()
    },
  }
}

function listenError(address: string, cause: unknown) {
  const code = (cause as NodeJS.ErrnoException).code ?? 'error'
  return new InfraError(`The p2p port could not be bound (${code}).`, {
    context: { Listen: address },
    hint: code === 'EADDRINUSE' ? 'Another process holds the port: pick another, or port 0 for a free one.' : 'Check p2pListen.',
    cause,
  })
}
