import * as http from 'node:http'
import type { AddressInfo } from 'node:net'
import { isHex, isRecord, splitHostPort } from './config.js'
import { ExecutionRpcError, toQuantity } from './execution.js'
import type { Hex } from './types.js'

/**
 * The node's JSON-RPC server (HTTP, single calls and batches). Reads go to the node's own
 * Anvil, but only up to the committed head: Anvil may hold an uncommitted block being
 * validated, so `latest` means the committed head and anything above it does not exist yet.
 * `eth_sendRawTransaction` goes to the mempool. `fc_*` methods expose consensus state;
 * `fc_setClockOffset` (an admin method, answered only to a loopback client) sets the offset of
 * the node's wall clock (clock.ts). A bad body or call gets a JSON-RPC error; nothing a client
 * sends can crash the node.
 */
export type NodeView = {
  chainId: number
  /** The committed head's number. */
  headNumber(): number
  /** Forwards a call to the execution layer. */
  forward(method: string, params: readonly unknown[]): Promise<unknown>
  submitTransaction(raw: Hex): Promise<{ ok: true; hash: Hex } | { ok: false; reason: string }>
  status(): unknown
  block(height: number): unknown
  rejections(): unknown
  evidence(): unknown
  /** Sets the wall clock's offset (integer ms); throws a RangeError for a bad value. */
  setClockOffset(offsetMs: number): unknown
}

export type RpcServer = { readonly url: string; close(): Promise<void> }

/** A JSON-RPC error with its code. */
export class RpcMethodError extends Error {
  override name = 'RpcMethodError'
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message)
  }
}

const maxBodyBytes = 2 * 1024 * 1024
const maxBatch = 100

export async function startRpcServer(options: { listen: string; view: NodeView; log: (line: string) => void }): Promise<RpcServer> {
  const { view } = options
  const sockets = new Set<import('node:net').Socket>()
  const server = http.createServer((req, res) => {
    const reply = (status: number, body: unknown) => {
      const text = JSON.stringify(body)
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
      res.end(text)
    }
    if (req.method !== 'POST') {
      reply(405, errorBody(null, -32600, 'use POST with a JSON-RPC body'))
      return
    }
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (c: Buffer) => {
      size += c.length
      if (size > maxBodyBytes) {
        reply(413, errorBody(null, -32600, `body over ${maxBodyBytes} bytes`))
        req.destroy()
        return
      }
      chunks.push(c)
    })
    req.on('error', () => undefined)
    req.on('end', () => {
      if (size > maxBodyBytes) return
      const loopback = isLoopback(req.socket.remoteAddress)
      let body: unknown
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'))
      } catch {
        reply(200, errorBody(null, -32700, 'parse error: the body is not JSON'))
        return
      }
      const answer = Array.isArray(body)
        ? body.length === 0 || body.length > maxBatch
          ? Promise.resolve(errorBody(null, -32600, `a batch must have 1 to ${maxBatch} calls`))
          : Promise.all(body.map((c) => handleCall(c, loopback)))
        : handleCall(body, loopback)
      answer.then(
        (a) => reply(200, a),
        (error) => {
          options.log(`rpc: internal error: ${(error as Error).stack ?? error}`)
          reply(200, errorBody(null, -32603, 'internal error'))
        },
      )
    })
  })
  server.on('connection', (s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })

  async function handleCall(call: unknown, loopback: boolean): Promise<unknown> {
    if (!isRecord(call) || typeof call.method !== 'string')
      return errorBody(isRecord(call) ? idOf(call.id) : null, -32600, 'invalid request: expected { jsonrpc, id, method, params }')
    const id = idOf(call.id)
    const params = call.params === undefined ? [] : call.params
    if (!Array.isArray(params)) return errorBody(id, -32602, 'params must be an array')
    try {
      const result = await dispatch(call.method, params, loopback)
      return { jsonrpc: '2.0', id, result: result === undefined ? null : result }
    } catch (error) {
      if (error instanceof RpcMethodError) return errorBody(id, error.code, error.message)
      if (error instanceof ExecutionRpcError) return errorBody(id, error.code, error.rpcMessage)
      options.log(`rpc: ${call.method} failed: ${(error as Error).message}`)
      return errorBody(id, -32603, `internal error: ${(error as Error).message.split('\n')[0]}`)
    }
  }

  /** A block tag or number → a committed block number as a quantity, or null when above the head. */
  function committedTag(tag: unknown, param: string): Hex | null {
    const head = view.headNumber()
    if (tag === undefined || tag === 'latest' || tag === 'safe' || tag === 'finalized' || tag === 'pending') return toQuantity(head)
    if (tag === 'earliest') return '0x0'
    if (isHex(tag) && tag.length > 2 && tag.length <= 18) {
      const n = Number(BigInt(tag))
      return n > head ? null : toQuantity(n)
    }
    throw new RpcMethodError(-32602, `${param} must be a block number (hex) or a tag. Got ${JSON.stringify(tag)}`)
  }

  function stateTag(tag: unknown, param: string): unknown {
    // EIP-1898 block objects ({ blockHash }) go through as they are.
    if (isRecord(tag)) return tag
    const q = committedTag(tag, param)
    if (q === null) throw new RpcMethodError(-32000, `block ${String(tag)} is not committed yet (head ${view.headNumber()})`)
    return q
  }

  const hexArg = (v: unknown, what: string): Hex => {
    if (!isHex(v)) throw new RpcMethodError(-32602, `${what} must be 0x-prefixed hex`)
    return v
  }

  async function dispatch(method: string, p: unknown[], loopback: boolean): Promise<unknown> {
    switch (method) {
      case 'eth_chainId':
        return toQuantity(view.chainId)
      case 'net_version':
        return String(view.chainId)
      case 'eth_blockNumber':
        return toQuantity(view.headNumber())
      case 'eth_getBlockByNumber': {
        const q = committedTag(p[0], 'block')
        if (q === null) return null
        return view.forward('eth_getBlockByNumber', [q, p[1] === true])
      }
      case 'eth_getBlockByHash': {
        const block = (await view.forward('eth_getBlockByHash', [hexArg(p[0], 'hash'), p[1] === true])) as { number?: Hex } | null
        return block && block.number !== undefined && Number(block.number) <= view.headNumber() ? block : null
      }
      case 'eth_getBalance':
      case 'eth_getTransactionCount':
      case 'eth_getCode':
        return view.forward(method, [hexArg(p[0], 'address'), stateTag(p[1], 'block')])
      case 'eth_getStorageAt':
        return view.forward(method, [hexArg(p[0], 'address'), hexArg(p[1], 'slot'), stateTag(p[2], 'block')])
      case 'eth_call':
      case 'eth_estimateGas': {
        if (!isRecord(p[0])) throw new RpcMethodError(-32602, 'the call object is missing')
        const rest = p.length > 2 ? p.slice(2) : []
        return view.forward(method, [p[0], stateTag(p[1], 'block'), ...rest])
      }
      case 'eth_getTransactionReceipt':
      case 'eth_getTransactionByHash': {
        const result = (await view.forward(method, [hexArg(p[0], 'hash')])) as { blockNumber?: Hex | null } | null
        if (!result || !result.blockNumber || Number(result.blockNumber) > view.headNumber()) return null
        return result
      }
      case 'eth_sendRawTransaction': {
        const outcome = await view.submitTransaction(hexArg(p[0], 'the raw transaction'))
        if (!outcome.ok) throw new RpcMethodError(-32000, `transaction refused: ${outcome.reason}`)
        return outcome.hash
      }
      case 'fc_status':
        return view.status()
      case 'fc_block': {
        const h = typeof p[0] === 'number' ? p[0] : isHex(p[0]) && p[0].length <= 18 ? Number(BigInt(p[0])) : Number.NaN
        if (!Number.isSafeInteger(h) || h < 0) throw new RpcMethodError(-32602, `fc_block takes a height (number or hex). Got ${JSON.stringify(p[0])}`)
        return view.block(h) ?? null
      }
      case 'fc_rejections':
        return view.rejections()
      case 'fc_evidence':
        return view.evidence()
      case 'fc_setClockOffset': {
        if (!loopback) throw new RpcMethodError(-32601, 'fc_setClockOffset is answered only to a loopback client')
        try {
          return view.setClockOffset(p[0] as number)
        } catch (error) {
          throw new RpcMethodError(-32602, `fc_setClockOffset takes [offsetMs]: ${(error as Error).message}`)
        }
      }
      default:
        throw new RpcMethodError(-32601, `method ${method} is not supported by this node`)
    }
  }

  const { host, port } = splitHostPort(options.listen)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const bound = server.address() as AddressInfo
  return {
    url: `http://${bound.address}:${bound.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}

/** An admin method's caller must be on this machine. */
function isLoopback(address: string | undefined): boolean {
  return address === '127.0.0.1' || address === '::1' || address === '::ffff:127.0.0.1'
}

function idOf(id: unknown): string | number | null {
  return typeof id === 'string' || typeof id === 'number' ? id : null
}

function errorBody(id: string | number | null, code: number, message: string) {
  return { jsonrpc: '2.0', id, error: { code, message } }
}
