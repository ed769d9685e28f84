import type { Prng } from '../../util/prng.js'
import { ATTRIBUTE_LIMITS, defineToxic, startTimer } from './toxic.js'

/**
 * `slicer`: cuts every chunk into pieces of about `average_size` ± `size_variation` bytes and
 * sends them `delay` µs apart (the first at once), so a reader sees many small reads instead
 * of one. As in toxiproxy, `size_variation` may equal or exceed `average_size`: a chunk of up
 * to `average_size + size_variation` bytes then goes out whole, a longer one is split.
 */
export const slicer = defineToxic({
  type: 'slicer',
  summary: 'Slices data into average_size ± size_variation byte pieces, delay µs apart.',
  attributes: {
    average_size: { type: 'number', default: 64, min: 1, max: ATTRIBUTE_LIMITS.sizeBytes, integer: true, doc: 'Average piece size in bytes.' },
    size_variation: { type: 'number', default: 0, min: 0, max: ATTRIBUTE_LIMITS.sizeBytes, integer: true, doc: 'Uniform ± variation of the piece size in bytes (toxiproxy accepts any, also ≥ average_size).' },
    delay: { type: 'number', default: 0, min: 0, max: ATTRIBUTE_LIMITS.delayUs, integer: true, doc: 'Pause between pieces in microseconds.' },
  },
  create(attributes, prng, io) {
    let current = attributes
    // Pieces go out one at a time with `delay` µs after each, measured from the previous
    // piece (as toxiproxy waits between pieces), so a late timer never bunches them up.
    let pending: Buffer[] = []
    let head = 0
    let pendingBytes = 0
    let endPending = false
    let cancel: (() => void) | undefined
    const pump = () => {
      while (!cancel && head < pending.length) {
        const piece = pending[head++] as Buffer
        pendingBytes -= piece.length
        io.push(piece)
        if (current.delay > 0)
          cancel = startTimer(current.delay / 1000, () => {
            cancel = undefined
            pump()
          })
      }
      if (head === pending.length) {
        pending = []
        head = 0
      }
      if (!cancel && endPending) {
        endPending = false
        io.end()
      }
    }
    const stop = () => {
      cancel?.()
      cancel = undefined
    }
    return {
      write(chunk) {
        const cuts = sliceOffsets(chunk.length, current.average_size, current.size_variation, prng)
        for (let i = 1; i < cuts.length; i++) pending.push(chunk.subarray(cuts[i - 1] as number, cuts[i] as number))
        pendingBytes += chunk.length
        pump()
      },
      end() {
        endPending = true
        pump()
      },
      update(next) {
        current = next
      },
      flush() {
        stop()
        const rest = pending.slice(head)
        pending = []
        head = 0
        pendingBytes = 0
        for (const piece of rest) io.push(piece)
        if (endPending) io.end()
        endPending = false
      },
      dispose() {
        stop()
        pending = []
        head = 0
        pendingBytes = 0
      },
      buffered: () => pendingBytes,
    }
  },
})

/**
 * Piece boundaries for `length` bytes: `[0, a, b, …, length]`. Halves the range around a
 * randomly shifted midpoint until each piece is within `variation` of `average`, so piece
 * sizes vary evenly with no bias toward the start or the end.
 */
export function sliceOffsets(length: number, average: number, variation: number, prng: Prng): number[] {
  const cuts = [0]
  const split = (start: number, end: number) => {
    if (end - start - average <= variation) {
      cuts.push(end)
      return
    }
    const shift = variation > 0 ? prng.int(-variation, variation) : 0
    const mid = Math.min(end - 1, Math.max(start + 1, start + Math.floor((end - start) / 2) + shift))
    split(start, mid)
    split(mid, end)
  }
  if (length > 0) split(0, length)
  return cuts
}
