import { defineToxic } from './toxic.js'

/**
 * `loss` (forkchaos): drops whole messages of a framed protocol, each with `probability`.
 * `framing` says where messages end:
 * - `"newline"` (default): a message is everything up to and including `\n`;
 * - `"length32"`: a message is a 4-byte big-endian length followed by that many bytes.
 *
 * The drop decision is made when a message starts, so nothing is buffered: kept messages
 * stream through as their bytes arrive. One draw of the toxic's seeded PRNG per message,
 * so the same seed drops the same messages.
 */
export const loss = defineToxic({
  type: 'loss',
  summary: 'Drops whole framed messages (newline or length32) with probability.',
  attributes: {
    probability: { type: 'number', default: 0.1, min: 0, max: 1, doc: 'Chance, 0..1, that a message is dropped.' },
    framing: { type: 'string', default: 'newline', values: ['newline', 'length32'], doc: 'How messages are delimited: "newline" or "length32" (4-byte big-endian length prefix).' },
  },
  create(attributes, prng, io) {
    let { probability, framing } = attributes
    // A framing change mid-message cannot be honoured; it applies from the next message.
    let nextFraming = framing
    // Where we are in the current message. `atStart`: the next byte begins a message.
    let atStart = true
    let dropping = false
    let headerBytes = 0
    let header = 0
    let bodyLeft = 0

    // Returns the offset just past the current message's last byte in `chunk`, or chunk.length.
    const advance = (chunk: Buffer, from: number): { end: number; done: boolean } => {
      if (framing === 'newline') {
        const nl = chunk.indexOf(10, from)
        return nl === -1 ? { end: chunk.length, done: false } : { end: nl + 1, done: true }
      }
      let at = from
      while (headerBytes < 4 && at < chunk.length) {
        header = header * 256 + (chunk[at] as number)
        headerBytes++
        at++
        if (headerBytes === 4) bodyLeft = header
      }
      if (headerBytes < 4) return { end: at, done: false }
      const take = Math.min(bodyLeft, chunk.length - at)
      bodyLeft -= take
      return { end: at + take, done: bodyLeft === 0 }
    }

    return {
      write(chunk) {
        let at = 0
        let keptFrom = -1
        while (at < chunk.length) {
          if (atStart) {
            dropping = prng.next() < probability
            atStart = false
            framing = nextFraming
            headerBytes = 0
            header = 0
            bodyLeft = 0
          }
          const { end, done } = advance(chunk, at)
          if (dropping) {
            if (keptFrom !== -1) io.push(chunk.subarray(keptFrom, at))
            keptFrom = -1
          } else if (keptFrom === -1) keptFrom = at
          at = end
          if (done) atStart = true
        }
        if (keptFrom !== -1) io.push(chunk.subarray(keptFrom, at))
      },
      update(next) {
        probability = next.probability
        nextFraming = next.framing
      },
    }
  },
})
