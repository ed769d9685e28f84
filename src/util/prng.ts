/**
 * The one source of randomness: a seeded PRNG (SplitMix32 seeding a xoshiro128**).
 * Every random choice in an experiment draws from an instance derived from the run's seed,
 * so `--seed N` replays it exactly. `Math.random()` never appears in a fault.
 */
export type Prng = {
  readonly seed: number
  /** A float in [0, 1). */
  next(): number
  /** An integer in [min, max], inclusive. */
  int(min: number, max: number): number
  /** A fresh 32-byte hex word. */
  word(): `0x${string}`
  /** A child stream, independent of later draws from this one. */
  fork(label: string): Prng
}

export function createPrng(seed: number): Prng {
  const s = splitmix(seed >>> 0)
  const state: number[] = [s.next(), s.next(), s.next(), s.next()]
  if (!state.some((x) => x !== 0)) state[0] = 1
  const nextU32 = () => {
    const [a, b, c, d] = state as [number, number, number, number]
    const result = Math.imul(rotl(Math.imul(b, 5), 7), 9) >>> 0
    const t = b << 9
    state[2] = c ^ a
    state[3] = d ^ b
    state[1] = b ^ (c ^ a)
    state[0] = a ^ (d ^ b)
    state[2] = (state[2] as number) ^ t
    state[3] = rotl(state[3] as number, 11)
    return result
  }
  const prng: Prng = {
    seed,
    next: () => nextU32() / 2 ** 32,
    int: (min, max) => min + Math.floor(prng.next() * (max - min + 1)),
    word: () => `0x${Array.from({ length: 8 }, () => nextU32().toString(16).padStart(8, '0')).join('')}`,
    fork: (label) => {
      let h = seed >>> 0
      for (const ch of label) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0
      return createPrng(h ^ nextU32())
    },
  }
  return prng
}

function rotl(x: number, k: number) {
  return ((x << k) | (x >>> (32 - k))) >>> 0
}

function splitmix(seed: number) {
  let x = seed >>> 0
  return {
    next() {
      x = (x + 0x9e3779b9) >>> 0
      let z = x
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0
      return (z ^ (z >>> 16)) >>> 0
    },
  }
}
