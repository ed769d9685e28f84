import { ATTRIBUTE_LIMITS, defineToxic, startTimer } from './toxic.js'

/**
 * `reset_peer`: when the first data arrives (it is dropped, as is everything after it), wait
 * `timeout` ms, then reset both sockets of the connection — `socket.resetAndDestroy()` sends
 * an RST where Node supports it, else the sockets are destroyed. As in toxiproxy, an idle
 * connection is not reset until data arrives.
 */
export const resetPeer = defineToxic({
  type: 'reset_peer',
  summary: 'On data, waits timeout ms then resets the connection (TCP RST).',
  attributes: {
    timeout: { type: 'number', default: 0, min: 0, max: ATTRIBUTE_LIMITS.durationMs, integer: true, doc: 'Milliseconds from the first data to the reset; 0 = at once.' },
  },
  create(attributes, _prng, io) {
    let timeoutMs = attributes.timeout
    let cancel: (() => void) | undefined
    let triggered = false
    const stop = () => {
      cancel?.()
      cancel = undefined
    }
    return {
      write() {
        if (triggered) return
        triggered = true
        if (timeoutMs <= 0) io.reset()
        else cancel = startTimer(timeoutMs, () => io.reset())
      },
      end() {
        // Once triggered the reset is coming; a FIN in between would soften it.
        if (!triggered) io.end()
      },
      update(next) {
        timeoutMs = next.timeout
      },
      flush: stop,
      dispose: stop,
    }
  },
})
