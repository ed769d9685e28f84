import { createHash } from 'node:crypto'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { decodeBlock } from './messages.js'
import type { CommittedBlock } from './types.js'

/**
 * The committed chain on disk: `<dataDir>/blocks.log`, append-only, one record per line:
 * `<sha256 of the JSON, hex> <JSON of { payload, certificate }>`. On open, records are read
 * until the first that is torn, fails its checksum, or does not follow its predecessor; that
 * one and everything after it are moved aside to `blocks.log.corrupt-<ms>` and the file is cut
 * back to the good prefix, so later appends never follow garbage.
 */
export type BlockStore = {
  /** Committed blocks, `blocks[i]` at height `i + 1`. */
  readonly blocks: readonly CommittedBlock[]
  /** What `open` found wrong, if anything. */
  readonly corruption: { atHeight: number; reason: string; movedTo: string } | null
  /** Appends one block (the next height). Throws on a write error (ENOSPC…), leaving the file as it was. */
  append(block: CommittedBlock): void
  /** Drops blocks above `height` (in memory; on disk they move to `blocks.log.dropped-<ms>`). */
  truncate(height: number): void
  /** fsync. */
  flush(): void
  close(): void
}

export type StoreOptions = {
  /** Writes a buffer at the end of the file; a test seam for a full disk. Default `fs.writeSync`. */
  write?: (fd: number, data: Buffer) => void
  /** The node's wall clock, for the `<ms>` in the names of moved-aside files. Default `Date.now`. */
  nowMs?: () => number
}

export const storeFileName = 'blocks.log'

export function openStore(dataDir: string, options: StoreOptions = {}): BlockStore {
  fs.mkdirSync(dataDir, { recursive: true })
  const file = path.join(dataDir, storeFileName)
  const write = options.write ?? ((fd: number, data: Buffer) => void fs.writeSync(fd, data))
  const nowMs = options.nowMs ?? Date.now
  const blocks: CommittedBlock[] = []
  /** Byte offset after each good record: ends[i] is where block i+1 ends. */
  const ends: number[] = []
  let corruption: BlockStore['corruption'] = null

  const content = fs.existsSync(file) ? fs.readFileSync(file) : Buffer.alloc(0)
  let offset = 0
  while (offset < content.length) {
    const nl = content.indexOf(0x0a, offset)
    const height = blocks.length + 1
    const fail = (reason: string) => {
      const movedTo = `${file}.corrupt-${nowMs()}`
      fs.writeFileSync(movedTo, content.subarray(offset))
      fs.truncateSync(file, offset)
      corruption = { atHeight: height, reason, movedTo }
    }
    if (nl < 0) {
      fail('the last record is torn (no newline)')
      break
    }
    const line = content.subarray(offset, nl).toString('utf8')
    const space = line.indexOf(' ')
    const sum = line.slice(0, space)
    const json = line.slice(space + 1)
    if (space !== 64 || sha256(json) !== sum) {
      fail('checksum mismatch')
      break
    }
    let block: CommittedBlock
    try {
      block = decodeBlock(JSON.parse(json))
    } catch {
      fail('the record does not decode')
      break
    }
    if (block.payload.number !== height) {
      fail(`expected height ${height}, found ${block.payload.number}`)
      break
    }
    const parent = blocks[blocks.length - 1]
    if (parent && parent.payload.blockHash !== block.payload.parentHash) {
      fail('the record does not extend its predecessor')
      break
    }
    blocks.push(block)
    offset = nl + 1
    ends.push(offset)
  }

  let fd: number | null = fs.openSync(file, 'a')
  let size = offset

  return {
    blocks,
    get corruption() {
      return corruption
    },
    append(block) {
      if (fd === null) throw new Error('the store is closed')
      const json = JSON.stringify({ payload: block.payload, certificate: block.certificate })
      const data = Buffer.from(`${sha256(json)} ${json}\n`, 'utf8')
      try {
        write(fd, data)
      } catch (error) {
        // A short write would leave a torn record: cut back to the last whole one.
        try {
          fs.ftruncateSync(fd, size)
        } catch {}
        throw error
      }
      size += data.length
      blocks.push(block)
      ends.push(size)
    },
    truncate(height) {
      if (fd === null || height >= blocks.length) return
      const end = height === 0 ? 0 : (ends[height - 1] as number)
      const tail = Buffer.alloc(size - end)
      const rfd = fs.openSync(file, 'r')
      try {
        fs.readSync(rfd, tail, 0, tail.length, end)
      } finally {
        fs.closeSync(rfd)
      }
      fs.writeFileSync(`${file}.dropped-${nowMs()}`, tail)
      fs.ftruncateSync(fd, end)
      size = end
      blocks.length = height
      ends.length = height
    },
    flush() {
      if (fd !== null) fs.fsyncSync(fd)
    },
    close() {
      if (fd === null) return
      try {
        fs.fsyncSync(fd)
      } catch {}
      fs.closeSync(fd)
      fd = null
    },
  }
}

function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex')
}
