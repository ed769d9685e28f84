import type { Devnet } from '../devnet.js'

/** Directed links (from → to) of the devnet; each carries what `from` sends to `to`. */
export type Link = { from: number; to: number }

/** Adds a toxic to each link, on the stream that carries the sender's messages; returns the undo. */
export function poisonLinks(devnet: Devnet, links: Link[], toxic: { type: string; attributes: Record<string, unknown>; toxicity?: number }, tag: string) {
  const added: { link: Link; name: string }[] = []
  for (const link of links) {
    const name = `${tag}-${link.from}-${link.to}`
    devnet.link(link.from, link.to).addToxic({ name, type: toxic.type, stream: 'upstream', toxicity: toxic.toxicity ?? 1, attributes: toxic.attributes })
    added.push({ link, name })
  }
  return () => {
    for (const { link, name } of added) {
      try {
        devnet.link(link.from, link.to).removeToxic(name)
      } catch {
        // Already gone (the proxy was reset): nothing to undo.
      }
    }
  }
}

/** Every link into and out of `id`. */
export const linksOf = (id: number, n: number): Link[] =>
  Array.from({ length: n }, (_, j) => j)
    .filter((j) => j !== id)
    .flatMap((j) => [
      { from: id, to: j },
      { from: j, to: id },
    ])

/** Every link between two groups, both ways. */
export const linksBetween = (a: number[], b: number[]): Link[] => a.flatMap((i) => b.flatMap((j) => [{ from: i, to: j }, { from: j, to: i }]))

let counter = 0
export const nextTag = (type: string) => `${type.replace('.', '_')}_${++counter}`
