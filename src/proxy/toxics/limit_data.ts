import { ATTRIBUTE_LIMITS, defineToxic } from './toxic.js'

/**
 * `limit_data`: passes the first `bytes` bytes of the stream, then closes the connection.
 * The count is per connection and survives attribute updates.
 */
export const limitData = defineToxic({
  type: 'limit_data',
  summary: 'Passes the first bytes bytes, then closes the connection.',
  attributes: {
    bytes: { type: 'number', default: 0, min: 0, max: ATTRIBUTE_LIMITS.budgetBytes, integer: true, doc: 'Bytes to pass before closing.' },
  },
  create(attributes, _prng, io) {
    let limitBytes = attributes.bytes
    let passedBytes = 0
    let closed = false
    return {
      write(chunk) {
        if (closed) return
        const room = Math.max(0, limitBytes - passedBytes)
        const out = room < chunk.length ? chunk.subarray(0, room) : chunk
        if (out.length > 0) {
          passedBytes += out.length
          io.push(out)
        }
        if (passedBytes >= limitBytes) {
          closed = true
          io.close()
        }
      },
      update(next) {
        limitBytes = next.bytes
      },
    }
  },
})
