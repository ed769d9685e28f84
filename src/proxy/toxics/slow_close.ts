import { ATTRIBUTE_LIMITS, defineToxic, startTimer } from './toxic.js'

/** `slow_close`: data passes untouched; the end of the stream (FIN) is held for `delay` ms. */
export const slowClose = defineToxic({
  type: 'slow_close',
  summary: 'Holds the close (FIN) for delay ms.',
  attributes: {
    delay: { type: 'number', default: 0, min: 0, max: ATTRIBUTE_LIMITS.durationMs, integer: true, doc: 'Delay of the close in milliseconds.' },
  },
  create(attributes, _prng, io) {
    let delayMs = attributes.delay
    let cancel: (() => void) | undefined
    return {
      write: (chunk) => io.push(chunk),
      end() {
        cancel = startTimer(delayMs, () => {
          cancel = undefined
          io.end()
        })
      },
      update(next) {
        delayMs = next.delay
      },
      flush() {
        if (!cancel) return
        cancel()
        cancel = undefined
        io.end()
      },
      dispose() {
        cancel?.()
        cancel = undefined
      },
    }
  },
})
