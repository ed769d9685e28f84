import { bandwidth } from './bandwidth.js'
import { latency } from './latency.js'
import { limitData } from './limit_data.js'
import { loss } from './loss.js'
import { noop } from './noop.js'
import { partition } from './partition.js'
import { resetPeer } from './reset_peer.js'
import { slicer } from './slicer.js'
import { slowClose } from './slow_close.js'
import { timeout } from './timeout.js'
import type { ToxicDefinition } from './toxic.js'

/**
 * Toxic types by name. The first eight follow toxiproxy (same names, attributes and units);
 * `loss` and `partition` are forkchaos additions.
 */
export const toxicDefinitions = {
  latency,
  bandwidth,
  slow_close: slowClose,
  timeout,
  reset_peer: resetPeer,
  slicer,
  limit_data: limitData,
  noop,
  loss,
  partition,
} as const satisfies Record<string, ToxicDefinition>

/** The registered toxic type names, derived from the registry. */
export type ToxicType = keyof typeof toxicDefinitions

/** The definition for a type name, or undefined. */
export function getToxicDefinition(type: string): ToxicDefinition | undefined {
  return Object.hasOwn(toxicDefinitions, type) ? toxicDefinitions[type as ToxicType] : undefined
}

/** The registry as a plain lookup table, for `parseToxic`. */
export const toxicTable: Readonly<Record<string, ToxicDefinition>> = toxicDefinitions
