import * as net from 'node:net'
import { InfraError, InputError } from '../../errors.js'
import type { Prng } from '../../util/prng.js'
import { getToxicDefinition, toxicTable } from '../toxics/registry.js'
import { parseName, parseToxic, parseToxicUpdate, show, type Stage, type StageIo, type Stream, type Toxic } from '../toxics/toxic.js'

/**
 * A TCP fault proxy after toxiproxy's model. Each client connection gets an upstream
 * connection and two links — `upstream` (client → server) and `downstream` (server → client) —
 * each a chain of toxic stages in the order the toxics were added.
 *
 * Toxics are live, as in toxiproxy: adding one appends a stage to the chain of every open
 * connection, so it acts on the next bytes; updating one changes it in place (or replaces its
 * stage); removing one first hands on whatever it held, then takes it out of the chain.
 *
 * Toxicity is decided per connection and toxic when the stage is set up (at accept, at add,
 * and again at update, as toxiproxy re-rolls when it restarts a toxic), drawing from this
 * proxy's seeded PRNG (`prng.fork(name)`, then one fork per connection in accept order).
 */

/** Options of `createTcpProxy`. Limits have defaults and are validated at construction. */
export type TcpProxyOptions = {
  name: string
  /** `host:port` to listen on; port 0 picks a free port. `listen` then reads the bound address. */
  listen: string
  /** `host:port` to connect each client to. */
  upstream: string
  /** Bind on creation. Default true. */
  enabled?: boolean
  /** The proxy forks its own stream with `prng.fork(name)`. */
  prng: Prng
  /** Open client connections at most; more are refused. Default 1024. */
  maxConnections?: number
  /** Toxics on this proxy at most. Default 64. */
  maxToxics?: number
  /** Bytes toxics may hold per connection and direction before the source is paused. Default 1 MiB. */
  maxBufferedBytes?: number
  /** Called after a toxic left this proxy by `removeToxic` or `resetToxics`, whoever called it. */
  onToxicRemoved?: (proxy: string, toxic: Toxic) => void
  /** Called after a toxic was added to this proxy by `addToxic`, whoever called it. */
  onToxicAdded?: (proxy: string, toxic: Toxic) => void
}

/** Changes for `TcpProxy.update`; absent fields keep their value. */
export type ProxyUpdate = { listen?: string; upstream?: string; enabled?: boolean }

/** Counters of one proxy since creation (`connections` is the current count). */
export type ProxyStats = {
  /** Client connections open now. */
  connections: number
  /** Client connections accepted since creation. */
  connectionsTotal: number
  /** Bytes delivered to upstream servers (client → server), after toxics. */
  bytesUp: number
  /** Bytes delivered to clients (server → client), after toxics. */
  bytesDown: number
}

/** A proxy as toxiproxy's API shows it. */
export type ProxyJson = { name: string; listen: string; upstream: string; enabled: boolean; toxics: Toxic[] }

/** A TCP fault proxy: plain data (name, addresses, toxics) plus lifecycle and toxic operations. */
export type TcpProxy = {
  readonly name: string
  /** The listen address; after a bind, the bound `host:port`. */
  readonly listen: string
  readonly upstream: string
  /** Whether the proxy is listening. */
  readonly enabled: boolean
  /** Toxics as data, upstream ones first, each stream in the order added (as toxiproxy lists them). */
  readonly toxics: Toxic[]
  /** Binds the listen address. No-op when enabled. */
  start(): Promise<void>
  /** Closes the listener and every open connection. No-op when disabled. */
  stop(): Promise<void>
  setEnabled(enabled: boolean): Promise<void>
  /** As toxiproxy: a new listen or upstream restarts the listener (closing connections); `enabled` then applies. */
  update(changes: ProxyUpdate): Promise<void>
  /** Validates a toxic spec (`{ name?, type, stream?, toxicity?, attributes? }`) and adds it. */
  addToxic(spec: unknown): Toxic
  /** Merges `{ attributes?, toxicity? }` into a toxic. */
  updateToxic(name: string, changes: unknown): Toxic
  removeToxic(name: string): void
  resetToxics(): void
  stats(): ProxyStats
  toJSON(): ProxyJson
}

const DEFAULT_MAX_CONNECTIONS = 1024
const DEFAULT_MAX_TOXICS = 64
const DEFAULT_MAX_BUFFERED_BYTES = 1_048_576
/** How long a closing socket may take to flush before it is destroyed anyway. */
const CLOSE_FLUSH_MS = 5_000
/** Bytes a socket's first reads take at most (libuv's own read size)… */
const READ_BYTES = 65_536
/** …and after reads that filled the buffer (more was waiting), up to this. */
const READ_BYTES_MAX = 262_144

/**
 * A socket's `onread`: reads go into one buffer, read into again for as long as each chunk the
 * link takes was written whole before `receive` returned; after a chunk something may still
 * hold (a toxic's stage, the destination's write queue), the next read gets a fresh buffer.
 * A fresh buffer per read is what Node does by default; reusing one spares the allocation and
 * its garbage, about a third of the proxy's CPU per byte (README, TCP rows). A read that fills
 * the buffer doubles the size of the next one (a bulk flow: fewer, larger reads and writes), up
 * to `READ_BYTES_MAX`.
 */
function reader(link: () => { receive(chunk: Buffer): boolean }) {
  let size = READ_BYTES
  let buffer = Buffer.allocUnsafe(size)
  let reusable = true
  return {
    buffer: () => {
      if (!reusable) {
        buffer = Buffer.allocUnsafe(size)
        reusable = true
      }
      return buffer
    },
    callback: (bytes: number, into: Uint8Array) => {
      reusable = link().receive(Buffer.from(into.buffer, into.byteOffset, bytes))
      if (bytes === into.byteLength && size < READ_BYTES_MAX) {
        size *= 2
        reusable = false
      }
      return true
    },
  }
}

/**
 * The accepted socket's handle in a socket that reads with `onread` (which `net.Server` does
 * not offer); the accepted socket is left without a handle, to be destroyed when the new one
 * closes (the server counts it). Falls back to the accepted socket itself if its handle is not
 * where Node 20 keeps it.
 */
function adoptWithReader(accepted: net.Socket, onread: ReturnType<typeof reader>): net.Socket {
  const husk = accepted as unknown as { _handle?: object | null }
  if (!husk._handle || accepted.destroyed) return accepted
  const socket = new net.Socket({ handle: husk._handle, allowHalfOpen: true, pauseOnCreate: true, onread } as net.SocketConstructorOpts)
  husk._handle = null
  return socket
}

/**
 * Creates a proxy and, unless `enabled` is false, binds it (so `listen` already reads the
 * bound address). Throws `AddressError` for a malformed address, `ListenError` if the bind fails.
 */
export async function createTcpProxy(options: TcpProxyOptions): Promise<TcpProxy> {
  const name = parseName(options.name, 'name')
  const maxConnections = positiveInt(options.maxConnections ?? DEFAULT_MAX_CONNECTIONS, 'maxConnections')
  const maxToxics = positiveInt(options.maxToxics ?? DEFAULT_MAX_TOXICS, 'maxToxics')
  const maxBufferedBytes = positiveInt(options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES, 'maxBufferedBytes')
  let listen = options.listen
  let listenAddress = parseAddress(listen, 'listen')
  let upstream = options.upstream
  let upstreamAddress = parseAddress(upstream, 'upstream')
  const rng = options.prng.fork(name)

  let server: net.Server | undefined
  const toxics: Toxic[] = []
  const connections = new Set<Connection>()
  const counters = { connectionsTotal: 0, bytesUp: 0, bytesDown: 0 }
  let queue: Promise<unknown> = Promise.resolve()
  // Start/stop/update run one at a time, in call order.
  const serial = <T>(task: () => Promise<T>): Promise<T> => {
    const run = queue.then(task, task)
    queue = run.catch(() => undefined)
    return run
  }

  const startNow = async () => {
    if (server) return
    const s = net.createServer({ allowHalfOpen: true, pauseOnConnect: true })
    s.maxConnections = maxConnections
    s.on('connection', (socket) => openConnection(socket))
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject)
      s.listen({ port: listenAddress.port, ...(listenAddress.host ? { host: listenAddress.host } : {}) }, () => {
        s.off('error', reject)
        resolve()
      })
    }).catch((error: NodeJS.ErrnoException) => {
      s.close()
      throw new ListenError(name, listen, error)
    })
    s.on('error', () => undefined)
    const bound = s.address() as net.AddressInfo
    listen = formatAddress(listenAddress.host === '' ? '' : bound.address, bound.port)
    listenAddress = { host: listenAddress.host === '' ? '' : bound.address, port: bound.port }
    server = s
  }

  const stopNow = async () => {
    const s = server
    if (!s) return
    server = undefined
    const closed = new Promise<void>((resolve) => s.close(() => resolve()))
    for (const connection of [...connections]) connection.destroy()
    await closed
  }

  type Link = {
    /**
     * Takes a chunk read from the source. True when the chunk was written whole to the
     * destination before this returned (no toxic on the link, nothing queued before it), so the
     * memory it views may be read into again; false when something may still hold it.
     */
    receive(chunk: Buffer): boolean
    outputDone(): boolean
    add(toxic: Toxic): void
    update(toxic: Toxic): void
    remove(name: string): void
    /** Stops the link: stages dropped, nothing more reaches the destination. */
    stop(): void
  }
  type Connection = {
    rng: Prng
    links: Record<Stream, Link>
    /** A toxic closed the connection: end both sockets, destroy them once flushed. */
    close(): void
    /** A toxic reset the connection: RST both sockets. */
    reset(): void
    destroy(): void
    settle(): void
  }
  type Slot = { toxic: Toxic; active: boolean; stage: Stage; io: StageIo; live: boolean }

  const createLink = (connection: Connection, stream: Stream, source: net.Socket, dest: net.Socket): Link => {
    const slots: Slot[] = []
    let paused = false
    let done = false
    let closing = false

    const held = () => {
      let bytes = 0
      for (const slot of slots) bytes += slot.stage.buffered?.() ?? 0
      return bytes
    }
    // Back-pressure: pause the source while the destination or the toxics hold too much.
    const checkFlow = () => {
      const full = !done && (dest.writableNeedDrain || (slots.length > 0 && held() > maxBufferedBytes))
      if (full && !paused) {
        paused = true
        source.pause()
      } else if (!full && paused) {
        paused = false
        if (!source.destroyed) source.resume()
      }
    }
    const deliver = (index: number, chunk: Buffer) => {
      const slot = slots[index]
      if (slot) {
        slot.stage.write(chunk)
        return
      }
      if (done || dest.destroyed || dest.writableEnded) return
      if (stream === 'upstream') counters.bytesUp += chunk.length
      else counters.bytesDown += chunk.length
      dest.write(chunk)
      checkFlow()
    }
    const deliverEnd = (index: number) => {
      const slot = slots[index]
      if (slot) {
        if (slot.stage.end) slot.stage.end()
        else slot.io.end()
        return
      }
      if (done) return
      done = true
      if (closing) connection.close()
      else {
        if (!dest.destroyed && !dest.writableEnded) dest.end()
        connection.settle()
      }
    }
    // One draw per toxic and connection, whatever the toxicity, so later draws do not shift.
    const roll = (toxic: Toxic) => connection.rng.next() < toxic.toxicity
    const makeSlot = (toxic: Toxic, active: boolean): Slot => {
      let ended = false
      const slot: Slot = { toxic, active, live: true, stage: undefined as unknown as Stage, io: undefined as unknown as StageIo }
      slot.io = {
        push: (chunk) => {
          if (slot.live && !ended) deliver(slots.indexOf(slot) + 1, chunk)
        },
        end: () => {
          if (!slot.live || ended) return
          ended = true
          deliverEnd(slots.indexOf(slot) + 1)
        },
        close: () => {
          if (!slot.live || ended) return
          closing = true
          slot.io.end()
        },
        reset: () => {
          if (slot.live) connection.reset()
        },
      }
      const definition = getToxicDefinition(toxic.type)
      slot.stage =
        active && definition
          ? definition.create(toxic.attributes, connection.rng.fork(toxic.name), slot.io)
          : { write: (chunk) => slot.io.push(chunk), end: () => slot.io.end() }
      return slot
    }
    const retire = (slot: Slot) => {
      slot.stage.flush?.()
      slot.live = false
      slot.stage.dispose?.()
    }

    const receive = (chunk: Buffer): boolean => {
      if (slots.length > 0) {
        deliver(0, chunk)
        checkFlow()
        return false
      }
      // No toxic: straight to the destination (as `deliver` does past the last stage).
      if (done || dest.destroyed || dest.writableEnded) return true
      if (stream === 'upstream') counters.bytesUp += chunk.length
      else counters.bytesDown += chunk.length
      dest.write(chunk)
      // A write the kernel took whole leaves nothing queued (the stream's length is back to 0
      // before `write` returns); otherwise the queue or the pending write still views the chunk.
      const written = dest.writableLength === 0
      checkFlow()
      return written
    }
    source.on('end', () => deliverEnd(0))
    dest.on('drain', checkFlow)

    return {
      receive,
      outputDone: () => done,
      add(toxic) {
        if (done) return
        slots.push(makeSlot(toxic, roll(toxic)))
      },
      update(toxic) {
        const index = slots.findIndex((s) => s.toxic.name === toxic.name)
        const slot = slots[index]
        if (!slot || done) return
        const active = roll(toxic)
        if (slot.active && active && slot.stage.update) {
          slot.stage.update(toxic.attributes)
          slot.toxic = toxic
          return
        }
        // Replace: the old stage hands on what it held first (as on removal). That may
        // close the connection (a timeout toxic does), which stops this link.
        retire(slot)
        if (done) return
        slots[index] = makeSlot(toxic, active)
        checkFlow()
      },
      remove(name) {
        const slot = slots.find((s) => s.toxic.name === name)
        if (!slot) return
        retire(slot)
        if (done) return
        slots.splice(slots.indexOf(slot), 1)
        checkFlow()
      },
      stop() {
        done = true
        for (const slot of slots) {
          slot.live = false
          slot.stage.dispose?.()
        }
        slots.length = 0
      },
    }
  }

  const openConnection = (accepted: net.Socket) => {
    if (!server) {
      accepted.destroy()
      return
    }
    counters.connectionsTotal++
    const id = counters.connectionsTotal
    // Each socket reads into a buffer of its own, reused while the link writes each chunk whole
    // at once (see `reader`); `links` is set before either socket reads.
    let links: Record<Stream, Link> | undefined
    const fromClient = reader(() => links?.upstream as Link)
    const fromUpstream = reader(() => links?.downstream as Link)
    const client = adoptWithReader(accepted, fromClient)
    const upstreamSocket = net.connect({ host: upstreamAddress.host, port: upstreamAddress.port, allowHalfOpen: true, onread: fromUpstream })
    client.setNoDelay(true)
    upstreamSocket.setNoDelay(true)
    client.on('error', () => undefined)
    upstreamSocket.on('error', () => undefined)
    const sockets = [client, upstreamSocket] as const
    let finished = false
    let shuttingDown = false

    const finish = () => {
      if (finished) return
      finished = true
      connection.links.upstream.stop()
      connection.links.downstream.stop()
      connections.delete(connection)
    }
    // Ends both sockets and destroys each once its queued bytes are out (or after a limit).
    const shutDown = () => {
      if (shuttingDown) return
      shuttingDown = true
      for (const socket of sockets) destroyWhenFlushed(socket)
    }
    const destroyWhenFlushed = (socket: net.Socket) => {
      if (socket.destroyed) return
      if (!socket.writableEnded) socket.end()
      if (socket.writableFinished) {
        socket.destroy()
        return
      }
      const timer = setTimeout(() => socket.destroy(), CLOSE_FLUSH_MS)
      timer.unref()
      socket.once('finish', () => {
        clearTimeout(timer)
        socket.destroy()
      })
      socket.once('close', () => clearTimeout(timer))
    }

    const connection: Connection = {
      rng: rng.fork(`connection ${id}`),
      links: undefined as unknown as Record<Stream, Link>,
      close() {
        connection.links.upstream.stop()
        connection.links.downstream.stop()
        shutDown()
      },
      reset() {
        for (const socket of sockets) {
          if (socket.destroyed) continue
          if (typeof socket.resetAndDestroy === 'function' && !socket.connecting) socket.resetAndDestroy()
          else socket.destroy()
        }
        finish()
      },
      destroy() {
        for (const socket of sockets) socket.destroy()
        finish()
      },
      // Called when a direction finished or a socket closed: once nothing more can be
      // delivered either way, the connection is torn down.
      settle() {
        if (finished) return
        if (client.destroyed && upstreamSocket.destroyed) {
          finish()
          return
        }
        const upDone = connection.links.upstream.outputDone() || upstreamSocket.destroyed
        const downDone = connection.links.downstream.outputDone() || client.destroyed
        if (upDone && downDone) shutDown()
      },
    }
    links = connection.links = {
      upstream: createLink(connection, 'upstream', client, upstreamSocket),
      downstream: createLink(connection, 'downstream', upstreamSocket, client),
    }
    // A client socket that could not be given its own reader delivers 'data' chunks instead
    // (fresh memory each, never read into again).
    if (client === accepted) client.on('data', (chunk: Buffer) => void connection.links.upstream.receive(chunk))
    // The server counts the socket it accepted: it goes once the socket that took its handle closed.
    else client.once('close', () => accepted.destroy())
    for (const toxic of toxics) connection.links[toxic.stream].add(toxic)
    connections.add(connection)

    for (const socket of sockets)
      socket.on('close', (hadError) => {
        if (hadError) connection.destroy()
        else connection.settle()
      })
    upstreamSocket.once('connect', () => {
      if (!client.destroyed) client.resume()
    })
  }

  const findToxic = (toxicName: string) => toxics.findIndex((t) => t.name === toxicName)

  const proxy: TcpProxy = {
    name,
    get listen() {
      return listen
    },
    get upstream() {
      return upstream
    },
    get enabled() {
      return server !== undefined
    },
    get toxics() {
      return orderedToxics(toxics).map(copyToxic)
    },
    start: () => serial(startNow),
    stop: () => serial(stopNow),
    setEnabled: (enabled) => serial(enabled ? startNow : stopNow),
    update: (changes) =>
      serial(async () => {
        const nextListen = changes.listen ?? listen
        const nextUpstream = changes.upstream ?? upstream
        const nextListenAddress = parseAddress(nextListen, 'listen')
        const nextUpstreamAddress = parseAddress(nextUpstream, 'upstream')
        const enabled = changes.enabled ?? server !== undefined
        if (nextListen !== listen || nextUpstream !== upstream) {
          await stopNow()
          listen = nextListen
          listenAddress = nextListenAddress
          upstream = nextUpstream
          upstreamAddress = nextUpstreamAddress
        }
        if (enabled) await startNow()
        else await stopNow()
      }),
    addToxic(spec) {
      const toxic = parseToxic(spec, toxicTable)
      if (findToxic(toxic.name) !== -1) throw new ToxicExistsError(name, toxic.name)
      if (toxics.length >= maxToxics) throw new ProxyLimitError(`Proxy "${name}" already has ${maxToxics} toxics (the limit).`)
      toxics.push(toxic)
      for (const connection of connections) connection.links[toxic.stream].add(toxic)
      options.onToxicAdded?.(name, copyToxic(toxic))
      return copyToxic(toxic)
    },
    updateToxic(toxicName, changes) {
      const index = findToxic(toxicName)
      const existing = toxics[index]
      const definition = existing && getToxicDefinition(existing.type)
      if (!existing || !definition) throw new ToxicNotFoundError(name, toxicName)
      const next = parseToxicUpdate(existing, changes, definition)
      toxics[index] = next
      for (const connection of connections) connection.links[next.stream].update(next)
      return copyToxic(next)
    },
    removeToxic(toxicName) {
      const index = findToxic(toxicName)
      const toxic = toxics[index]
      if (!toxic) throw new ToxicNotFoundError(name, toxicName)
      toxics.splice(index, 1)
      for (const connection of connections) connection.links[toxic.stream].remove(toxic.name)
      options.onToxicRemoved?.(name, copyToxic(toxic))
    },
    resetToxics() {
      for (const toxic of [...toxics]) proxy.removeToxic(toxic.name)
    },
    stats: () => ({ connections: connections.size, ...counters }),
    toJSON: () => ({ name, listen, upstream, enabled: server !== undefined, toxics: proxy.toxics }),
  }

  if (options.enabled !== false) await proxy.start()
  return proxy
}

/** Upstream toxics first, then downstream, each in the order added — toxiproxy's listing order. */
function orderedToxics(toxics: Toxic[]): Toxic[] {
  return [...toxics.filter((t) => t.stream === 'upstream'), ...toxics.filter((t) => t.stream === 'downstream')]
}

function copyToxic(toxic: Toxic): Toxic {
  return { ...toxic, attributes: { ...toxic.attributes } }
}

/** A parsed `host:port`; `host` is empty for "all interfaces". */
export type Address = { host: string; port: number }

/**
 * Parses `host:port` (`[v6]:port` for IPv6). `listen` allows port 0 (pick a free port) and an
 * empty host (all interfaces, as toxiproxy does for `:port`); `upstream` needs both.
 */
export function parseAddress(value: unknown, field: 'listen' | 'upstream'): Address {
  const text = typeof value === 'string' ? value : ''
  const match = /^\[([^\]]+)\]:(\d{1,5})$/.exec(text) ?? /^([^:[\]]*):(\d{1,5})$/.exec(text)
  const host = match?.[1] ?? ''
  const port = Number(match?.[2] ?? Number.NaN)
  const minPort = field === 'listen' ? 0 : 1
  if (match && port >= minPort && port <= 65535 && (field === 'listen' || host !== '')) return { host, port }
  throw new AddressError(`"${field}" must be "host:port" with a port from ${minPort} to 65535. Got ${show(value)}.`, field)
}

/** `host:port`, with brackets around an IPv6 host. */
export function formatAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
}

function positiveInt(value: number, field: string): number {
  if (Number.isInteger(value) && value > 0) return value
  throw new InputError(`"${field}" must be a positive integer. Got ${show(value)}.`)
}

/** A malformed `listen` or `upstream` address. */
export class AddressError extends InputError {
  override name = 'AddressError'
  constructor(
    message: string,
    readonly field: 'listen' | 'upstream',
  ) {
    super(message)
  }
}

/** The listen address could not be bound. `code` is the system error (`EADDRINUSE`, `EACCES`, …). */
export class ListenError extends InfraError {
  override name = 'ListenError'
  readonly code: string
  constructor(proxy: string, listen: string, cause: NodeJS.ErrnoException) {
    super(`Proxy "${proxy}" could not listen on ${listen}: ${cause.code ?? cause.message}.`, {
      context: { Proxy: proxy, Listen: listen },
      hint: cause.code === 'EADDRINUSE' ? 'Pick another port, or port 0 for a free one.' : 'Check the listen host and port.',
      cause,
    })
    this.code = cause.code ?? 'UNKNOWN'
  }
}

/** A toxic of that name is already on the proxy (toxiproxy: 409). */
export class ToxicExistsError extends InputError {
  override name = 'ToxicExistsError'
  constructor(
    readonly proxy: string,
    readonly toxic: string,
  ) {
    super(`Toxic "${toxic}" already exists on proxy "${proxy}".`)
  }
}

/** No toxic of that name on the proxy (toxiproxy: 404). */
export class ToxicNotFoundError extends InputError {
  override name = 'ToxicNotFoundError'
  constructor(
    readonly proxy: string,
    readonly toxic: string,
  ) {
    super(`No toxic "${toxic}" on proxy "${proxy}".`)
  }
}

/** A configured limit (toxics per proxy, proxies per registry) would be exceeded. */
export class ProxyLimitError extends InputError {
  override name = 'ProxyLimitError'
}
