import * as http from 'node:http'

// An independent judge of a devnet's chain: it reads only `eth_getBlockByNumber("latest")` from
// every execution client's plain JSON-RPC port (raw HTTP, nothing of forkchaos's), so a test
// checks progress and agreement the way any client's user would.

export type Head = { number: number; hash: string }

/** `eth_getBlockByNumber("latest", false)` from one URL: its number and hash. */
export function latestHead(url: string, timeoutMs = 3_000): Promise<Head> {
  const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_getBlockByNumber', params: ['latest', false] })
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers: { 'content-type': 'application/json' }, timeout: timeoutMs }, (res) => {
      let text = ''
      res.on('data', (c) => (text += c))
      res.on('end', () => {
        try {
          const block = (JSON.parse(text) as { result: { number: string; hash: string } }).result
          resolve({ number: Number(block.number), hash: block.hash })
        } catch (error) {
          reject(new Error(`${url}: not a block (${res.statusCode}): ${text.slice(0, 200)}`, { cause: error }))
        }
      })
    })
    req.on('timeout', () => req.destroy(new Error(`${url}: no answer within ${timeoutMs} ms`)))
    req.on('error', reject)
    req.end(body)
  })
}

/**
 * Waits (at most `withinMs`) for a sample in which every URL's latest block is the same height,
 * and returns it; throws when the URLs at one height name different hashes (a fork), or when no
 * such sample came (they never met).
 */
export async function agreedHead(urls: readonly string[], withinMs: number): Promise<Head> {
  const deadline = Date.now() + withinMs
  let last: Head[] = []
  for (;;) {
    last = await Promise.all(urls.map((u) => latestHead(u)))
    const first = last[0] as Head
    if (last.every((h) => h.number === first.number)) {
      if (!last.every((h) => h.hash === first.hash)) throw new Error(`fork at height ${first.number}: ${last.map((h) => h.hash).join(' ')}`)
      return first
    }
    if (Date.now() > deadline) throw new Error(`no common height within ${withinMs} ms: ${last.map((h) => h.number).join(' ')}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

/** Two agreed heads `gapMs` apart: the second must be at least `minBlocks` higher. */
export async function advancesAndAgrees(urls: readonly string[], options: { gapMs: number; minBlocks: number; withinMs: number }): Promise<{ from: Head; to: Head }> {
  const from = await agreedHead(urls, options.withinMs)
  await new Promise((r) => setTimeout(r, options.gapMs))
  const to = await agreedHead(urls, options.withinMs)
  if (to.number - from.number < options.minBlocks)
    throw new Error(`heights did not advance: ${from.number} → ${to.number} in ${options.gapMs} ms (wanted ${options.minBlocks})`)
  return { from, to }
}
