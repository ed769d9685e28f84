import { maxValidators } from '../targets/devnet-size.js'
import { readYamlFile } from './yaml-file.js'

/**
 * An endpoints file (`endpoints.yaml`): the JSON-RPC URL of each validator of a chain forkchaos
 * did not start (a Kubernetes devnet, your own nodes), in validator order (id 0 first), with an
 * optional name and labels. `forkchaos run <scenario> --target endpoints.yaml` judges the
 * scenario's checks over standard `eth_getBlockByNumber` (latest / safe / finalized) only.
 *
 * ```yaml
 * name: my-cluster
 * pollInterval: 250ms        # how often each endpoint is read (100ms – 10s)
 * endpoints:
 *   - { name: validator-0, url: http://127.0.0.1:8545, labels: { zone: a } }
 *   - { url: http://127.0.0.1:8546 }
 * ```
 */
export type Endpoints = {
  file: string
  name?: string
  pollMs: number
  endpoints: { name: string; url: string; labels: Record<string, string> }[]
}

/** Limits of an endpoints file. */
export const endpointsLimits = { endpoints: maxValidators, url: 2_048, labels: 16, pollMinMs: 100, pollMaxMs: 10_000 } as const

export const endpointsSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  title: 'forkchaos endpoints file',
  type: 'object',
  additionalProperties: false,
  required: ['endpoints'],
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 63 },
    pollInterval: { type: 'string', maxLength: 16, pattern: '^[0-9]+(ms|s)$' },
    endpoints: {
      type: 'array',
      minItems: 1,
      maxItems: endpointsLimits.endpoints,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['url'],
        properties: {
          name: { type: 'string', minLength: 1, maxLength: 63 },
          url: { type: 'string', maxLength: endpointsLimits.url, pattern: '^https?://[^\\s]+$' },
          labels: { type: 'object', maxProperties: endpointsLimits.labels, propertyNames: { maxLength: 253 }, additionalProperties: { type: 'string', maxLength: 63 } },
        },
      },
    },
  },
}

/** Reads and validates an endpoints file (exit 2 with file, line, field and bound on bad input). */
export function loadEndpoints(file: string): Endpoints {
  let pollMs = 250
  const raw = readYamlFile(file, 'endpoints', endpointsSchema, (r) => {
    const v = r as { pollInterval?: string; endpoints: { url: string }[] }
    if (v.pollInterval !== undefined) {
      const m = /^(\d+)(ms|s)$/.exec(v.pollInterval) as RegExpExecArray
      pollMs = Number(m[1]) * (m[2] === 's' ? 1_000 : 1)
      if (pollMs < endpointsLimits.pollMinMs || pollMs > endpointsLimits.pollMaxMs)
        return { path: ['pollInterval'], message: `\`pollInterval\` must be between 100ms and 10s. Got \`${v.pollInterval}\`.` }
    }
    const seen = new Map<string, number>()
    for (const [i, e] of v.endpoints.entries()) {
      try {
        new URL(e.url)
      } catch {
        return { path: ['endpoints', String(i), 'url'], message: `\`endpoints[${i}].url\` must be an http(s) URL. Got \`${e.url.slice(0, 80)}\`.` }
      }
      const before = seen.get(e.url)
      if (before !== undefined) return { path: ['endpoints', String(i), 'url'], message: `\`endpoints[${i}].url\` repeats \`endpoints[${before}].url\` (${e.url}): each validator has its own endpoint.` }
      seen.set(e.url, i)
    }
    return undefined
  }) as { name?: string; endpoints: { name?: string; url: string; labels?: Record<string, string> }[] }
  return {
    file,
    ...(raw.name ? { name: raw.name } : {}),
    pollMs,
    endpoints: raw.endpoints.map((e, i) => ({ name: e.name ?? `validator-${i}`, url: e.url, labels: e.labels ?? {} })),
  }
}
