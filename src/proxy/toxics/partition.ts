import { defineToxic } from './toxic.js'

/**
 * `partition` (forkchaos): while present, every byte in the toxic's direction is dropped and a
 * FIN is held back, as if the network between the two ends were cut; nothing is closed. Add it
 * to both streams to cut both directions. On removal a held FIN goes through and bytes sent
 * from then on pass.
 */
export const partition = defineToxic({
  type: 'partition',
  summary: 'Drops every byte in its direction while present; never closes.',
  attributes: {},
  create(_attributes, _prng, io) {
    let endHeld = false
    return {
      write() {},
      end() {
        endHeld = true
      },
      flush() {
        if (endHeld) io.end()
        endHeld = false
      },
    }
  },
})
