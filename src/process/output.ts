/**
 * The last output of a process, kept as raw chunks up to a byte cap and decoded only when asked
 * for (a start-up error, an exit). Anvil logs every RPC call, so per-chunk work stays O(chunk).
 */
export type OutputRing = {
  push(chunk: Buffer): void
  /** The kept text; once trimmed, its first (partial) line is dropped. */
  text(): string
  /** Bytes kept now (at most `maxBytes` plus the newest chunk). */
  readonly bytes: number
  readonly trimmed: boolean
}

/** The smallest and largest ring a process owner accepts, in bytes. */
export const OUTPUT_BYTES_MIN = 1_024
export const OUTPUT_BYTES_MAX = 16 * 1_048_576

export function createOutputRing(maxBytes: number): OutputRing {
  const chunks: Buffer[] = []
  let bytes = 0
  let trimmed = false
  return {
    push(chunk) {
      chunks.push(chunk)
      bytes += chunk.length
      // Keep the newest chunk whole, however large: it is the one most likely to explain an exit.
      while (chunks.length > 1 && bytes - (chunks[0] as Buffer).length >= maxBytes) {
        bytes -= (chunks.shift() as Buffer).length
        trimmed = true
      }
    },
    text() {
      const text = Buffer.concat(chunks).toString('utf8')
      return trimmed ? text.slice(text.indexOf('\n') + 1) : text
    },
    get bytes() {
      return bytes
    },
    get trimmed() {
      return trimmed
    },
  }
}
