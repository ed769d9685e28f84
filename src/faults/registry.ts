import type { AnyFault } from '../Fault.js'
import { reorg } from './chain/reorg.js'
import { garbage } from './dependency/garbage.js'
import { gas } from './dependency/gas.js'
import { revert } from './dependency/revert.js'
import { spike } from './gas/spike.js'
import { shortfall } from './liquidity/shortfall.js'
import { divergence } from './oracle/divergence.js'
import { error } from './rpc/error.js'
import { latency } from './rpc/latency.js'
import { partial } from './rpc/partial.js'
import { rewrite } from './rpc/rewrite.js'
import { stale } from './rpc/stale.js'
import { timeout } from './rpc/timeout.js'
import { warp } from './time/warp.js'

/** Every fault primitive by its type name. `net.partition` would live in faults/net/partition.ts. */
export const faults = {
  'oracle.divergence': divergence,
  'liquidity.shortfall': shortfall,
  'dependency.revert': revert,
  'dependency.garbage': garbage,
  'dependency.gas': gas,
  'time.warp': warp,
  'gas.spike': spike,
  'chain.reorg': reorg,
  'rpc.latency': latency,
  'rpc.timeout': timeout,
  'rpc.error': error,
  'rpc.stale': stale,
  'rpc.partial': partial,
  'rpc.rewrite': rewrite,
} as const satisfies Record<string, AnyFault>

export type FaultType = keyof typeof faults
export const faultTypes = Object.keys(faults) as FaultType[]
