import { ATTRIBUTE_LIMITS, createTimedQueue, defineToxic } from './toxic.js'

/**
 * `latency`: every chunk is held for `latency` ± `jitter` milliseconds, in order (a chunk never
 * overtakes the one before it). The end of the stream follows the last held chunk.
 */
export const latency = defineToxic({
  type: 'latency',
  summary: 'Delays every chunk by latency ± jitter ms, in order.',
  attributes: {
    latency: { type: 'number', default: 0, min: 0, max: ATTRIBUTE_LIMITS.durationMs, integer: true, doc: 'Delay in milliseconds.' },
    jitter: { type: 'number', default: 0, min: 0, max: ATTRIBUTE_LIMITS.durationMs, integer: true, doc: 'Uniform ± variation of the delay in milliseconds.' },
  },
  create(attributes, prng, io) {
    let { latency: latencyMs, jitter: jitterMs } = attributes
    const queue = createTimedQueue(io)
    return {
      write(chunk) {
        const delayMs = Math.max(0, latencyMs + (jitterMs > 0 ? (prng.next() * 2 - 1) * jitterMs : 0))
        queue.push(chunk, performance.now() + delayMs)
      },
      end: () => queue.end(),
      update(next) {
        latencyMs = next.latency
        jitterMs = next.jitter
      },
      flush: () => queue.flush(),
      dispose: () => queue.dispose(),
      buffered: () => queue.buffered(),
    }
  },
})
