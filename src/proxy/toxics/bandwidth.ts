import { ATTRIBUTE_LIMITS, createTimedQueue, defineToxic } from './toxic.js'

/**
 * `bandwidth`: bytes leave at most at `rate` KB/s (1 KB = 1000 bytes, as in toxiproxy); a large
 * chunk goes out in slices of about 100 ms worth each. `rate` 0 means no limit.
 */
export const bandwidth = defineToxic({
  type: 'bandwidth',
  summary: 'Limits throughput to rate KB/s (0 = unlimited).',
  attributes: {
    rate: { type: 'number', default: 0, min: 0, max: ATTRIBUTE_LIMITS.rateKbPerS, integer: true, doc: 'Rate in KB/s (1 KB = 1000 bytes); 0 = unlimited.' },
  },
  create(attributes, _prng, io) {
    let rateKbPerS = attributes.rate
    const queue = createTimedQueue(io)
    return {
      write(chunk) {
        const now = performance.now()
        if (rateKbPerS <= 0) {
          queue.push(chunk, now)
          return
        }
        // KB/s is bytes per millisecond.
        const sliceBytes = Math.max(1, Math.floor(rateKbPerS * 100))
        let freeAtMs = Math.max(now, queue.tailMs())
        for (let offset = 0; offset < chunk.length; offset += sliceBytes) {
          const slice = chunk.subarray(offset, offset + sliceBytes)
          freeAtMs += slice.length / rateKbPerS
          queue.push(slice, freeAtMs)
        }
      },
      end: () => queue.end(),
      update(next) {
        rateKbPerS = next.rate
      },
      flush: () => queue.flush(),
      dispose: () => queue.dispose(),
      buffered: () => queue.buffered(),
    }
  },
})
