import { defineToxic } from './toxic.js'

/**
 * `noop`: passes every byte and the end of the stream through untouched. toxiproxy has it
 * (a client may add it to check that the API works, or as a placeholder); it has no attributes.
 */
export const noop = defineToxic({
  type: 'noop',
  summary: 'Passes data through untouched.',
  attributes: {},
  create(_attributes, _prng, io) {
    return { write: (chunk) => io.push(chunk) }
  },
})
