import { calldata } from '../chain/views.js'
import { keeperDefaults } from '../keeper/keeper.js'
import { spawnKeeper } from '../keeper/spawn.js'
import type { RpcProxy } from '../proxy/jsonrpc/proxy.js'
import { addressOrName, duration, limits, text } from '../scenario/schema-parts.js'
import { define } from '../Step.js'
import { parseDurationMs } from '../util/duration.js'

export type KeeperBody = {
  /** `naive` retries at once; `budgeted` keeps a retry budget. */
  mode: 'naive' | 'budgeted'
  /** How long the keeper runs; at most 1 h. */
  duration: string | number
  /** Time between cycles; at most 10 min. */
  interval?: string | number
  /** Per-request timeout; at most 10 min. */
  timeout?: string | number
  budgetRatio?: number
  maxAttempts?: number
  from?: string
  label?: string
}

/**
 * A keeper process (src/keeper) calling the entry point through the fork's JSON-RPC fault proxy
 * for `duration`: its load on the endpoint (offered vs effective requests) is recorded.
 */
export const keeper = define<'keeper', KeeperBody>({
  kind: 'keeper',
  summary: 'a keeper process calling the entry point through the fault proxy for `duration` (`mode` naive|budgeted); its load is recorded',
  target: ['fork'],
  engineNeeds: ['sendTransactionSync'],
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['mode', 'duration'],
    properties: {
      mode: { enum: ['naive', 'budgeted'] },
      duration: duration(limits.phaseMs, 'How long the keeper runs'),
      interval: duration(limits.keeperTickMs, 'Time between cycles'),
      timeout: duration(limits.keeperTickMs, 'Per-request timeout'),
      budgetRatio: { type: 'number', minimum: 0, maximum: 10 },
      maxAttempts: { type: 'integer', minimum: 1, maximum: 100 },
      from: addressOrName,
      label: text,
    },
  },
  requires: (_body, target, where) =>
    target.rpcProxy ? undefined : { message: `\`${where}.keeper\` needs \`target: { rpcProxy: true }\`: the keeper talks to the fork through the fault proxy.`, field: 'target.rpcProxy' },
  async run(ctx, k, env) {
    const where = env.where
    await env.beforeStep()
    const proxy = ctx.proxies.get('fork') as RpcProxy
    const load = await spawnKeeper({
      ...keeperDefaults,
      rpcUrl: proxy.url,
      to: ctx.resolve(ctx.protocol.vault, 'protocol.vault'),
      from: ctx.resolve(k.from ?? 'keeper', `${where}.keeper.from`),
      data: calldata(ctx.protocol.entry),
      mode: k.mode,
      durationMs: parseDurationMs(k.duration, `${where}.keeper.duration`),
      ...(k.interval !== undefined ? { intervalMs: parseDurationMs(k.interval, `${where}.keeper.interval`) } : {}),
      ...(k.timeout !== undefined ? { timeoutMs: parseDurationMs(k.timeout, `${where}.keeper.timeout`) } : {}),
      ...(k.budgetRatio !== undefined ? { budgetRatio: k.budgetRatio } : {}),
      ...(k.maxAttempts !== undefined ? { maxAttempts: k.maxAttempts } : {}),
      seed: ctx.prng.int(0, 2 ** 31),
    })
    env.record({ label: k.label ?? `keeper-${k.mode}`, phase: env.phase, type: 'keeper', ok: load.gaveUp === 0, load })
  },
})
