/**
 * The fuzz oracles' own reading of JSON text, written apart from the code under test on purpose:
 * an oracle that called the proxy's scanner could not catch that scanner's bugs.
 */

/** The deepest nesting of arrays and objects in a JSON text (strings skipped, escapes honoured). */
export function jsonDepth(text: string): number {
  let depth = 0
  let max = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text[i]
    if (inString) {
      if (c === '\\') i++
      else if (c === '"') inString = false
    } else if (c === '"') inString = true
    else if (c === '[' || c === '{') max = Math.max(max, ++depth)
    else if (c === ']' || c === '}') depth--
  }
  return max
}
