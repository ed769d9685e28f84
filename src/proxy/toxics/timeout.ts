import { ATTRIBUTE_LIMITS, defineToxic, startTimer } from './toxic.js'

/**
 * `timeout`: no data passes (it is dropped); after `timeout` ms the connection is closed.
 * With `timeout` 0 it is never closed by the toxic: data is dropped for as long as the toxic
 * is present. As in toxiproxy, removing the toxic closes the connections it was stalling —
 * the bytes it dropped are gone, so the stream could not be trusted anyway. (Use `partition`
 * to drop bytes and resume afterwards.) A FIN from the source still passes. An update
 * restarts the countdown.
 */
export const timeout = defineToxic({
  type: 'timeout',
  summary: 'Drops all data; closes the connection after timeout ms (0 = never, until removed).',
  attributes: {
    timeout: { type: 'number', default: 0, min: 0, max: ATTRIBUTE_LIMITS.durationMs, integer: true, doc: 'Milliseconds before the connection is closed; 0 = never.' },
  },
  create(attributes, _prng, io) {
    let cancel: (() => void) | undefined
    const stop = () => {
      cancel?.()
      cancel = undefined
    }
    const arm = (timeoutMs: number) => {
      stop()
      if (timeoutMs > 0) cancel = startTimer(timeoutMs, () => io.close())
    }
    arm(attributes.timeout)
    return {
      write() {},
      end() {
        stop()
        io.end()
      },
      update: (next) => arm(next.timeout),
      flush() {
        stop()
        io.close()
      },
      dispose: stop,
    }
  },
})
