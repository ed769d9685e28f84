import type { AnyFault } from '../Fault.js'
import { stateRootFlip } from './byzantine/state-root-flip.js'
import { equivocate } from './byzantine/equivocate.js'
import { invalidTx } from './byzantine/invalid-tx.js'
import { staleParent } from './byzantine/stale-parent.js'
import { flood } from './mempool/flood.js'
import { firewallInbound } from './net/firewall-inbound.js'
import { flap } from './net/flap.js'
import { latency as netLatency } from './net/latency.js'
import { loss } from './net/loss.js'
import { partition } from './net/partition.js'
import { burstKill } from './node/burst-kill.js'
import { clockSkew } from './node/clock-skew.js'
import { diskCorrupt } from './node/disk-corrupt.js'
import { diskFull } from './node/disk-full.js'
import { kill } from './node/kill.js'
import { restart } from './node/restart.js'
import { restartMidRound } from './node/restart-mid-round.js'
import { wedge } from './node/wedge.js'
import { reorg } from './chain/reorg.js'
import { cooldown } from './dependency/cooldown.js'
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
  'dependency.cooldown': cooldown,
  'time.warp': warp,
  'gas.spike': spike,
  'chain.reorg': reorg,
  'rpc.latency': latency,
  'rpc.timeout': timeout,
  'rpc.error': error,
  'rpc.stale': stale,
  'rpc.partial': partial,
  'rpc.rewrite': rewrite,
  'node.kill': kill,
  'node.restart': restart,
  'node.restart-mid-round': restartMidRound,
  'node.burst-kill': burstKill,
  'node.wedge': wedge,
  'node.clock-skew': clockSkew,
  'node.disk-full': diskFull,
  'node.disk-corrupt': diskCorrupt,
  'net.partition': partition,
  'net.flap': flap,
  'net.firewall-inbound': firewallInbound,
  'net.latency': netLatency,
  'net.loss': loss,
  'mempool.flood': flood,
  'byzantine.state-root-flip': stateRootFlip,
  'byzantine.stale-parent': staleParent,
  'byzantine.invalid-tx': invalidTx,
  'byzantine.equivocate': equivocate,
} as const satisfies Record<string, AnyFault>

export type FaultType = keyof typeof faults
export const faultTypes = Object.keys(faults) as FaultType[]
