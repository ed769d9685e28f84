import type { AbiEvent, Address, Hex } from 'viem'
import { decodeEventLog, getAddress, isAddress, parseAbiItem, toEventSelector } from '../util/evm.js'
import { InputError } from '../errors.js'
import type { ForkProbe } from '../probes/fork.js'
import type { StepRecord } from '../Step.js'
import type { Fork } from '../targets/fork.js'
import type { Receipt } from '../targets/chain.js'
import type { Rpc } from '../targets/rpc.js'
import type { Prng } from '../util/prng.js'
import type { RpcProxy } from '../proxy/jsonrpc/proxy.js'
import type { Protocol, Scalar, Scenario } from './types.js'

export type { StepRecord } from '../Step.js'

/** What a running scenario shares with its steps, checks and faults. */
export type RunContext = {
  scenario: Scenario
  protocol: Protocol
  fork: Fork
  rpc: Rpc
  prng: Prng
  /** ms since the scenario started. */
  now(): number
  resolve(nameOrAddress: string, field: string): Address
  /** Every step of the scenario so far, in order (the fork probe's `series.steps`). */
  steps: StepRecord[]
  /** The fork's probe: views around cycles, events, reads at the end of windows. */
  probe: ForkProbe
  /** JSON-RPC fault proxies of this scenario, by name (`fork`, `upstream`). */
  proxies: Map<string, RpcProxy>
}

export function createResolver(scenario: Scenario, fork: Fork) {
  const names: Record<string, Address> = {
    ...(fork.book as Record<string, Address>),
    ...fork.accounts,
    ...scenario.contracts,
    ...scenario.accounts,
  }
  return (nameOrAddress: string, field: string): Address => {
    if (isAddress(nameOrAddress)) return getAddress(nameOrAddress)
    const found = names[nameOrAddress]
    if (found) return getAddress(found)
    throw new InputError(`${scenario.file}: \`${field}\` names \`${nameOrAddress}\`, which is neither an address nor a known contract or account.`, {
      context: { File: scenario.file, Field: field, Known: Object.keys(names).join(', ') },
      hint: 'Add it under `contracts:` or `accounts:` in the scenario.',
    })
  }
}

/** Turns a scenario argument into an ABI value: names → addresses, "1000e18" → bigint. */
export function toArg(value: Scalar, resolve: (n: string, f: string) => Address, field: string): unknown {
  if (typeof value === 'boolean') return value
  if (typeof value === 'number') return BigInt(value)
  const sci = /^(\d+)(?:\.(\d+))?e(\d+)$/.exec(value)
  if (sci) {
    const [, whole, frac = '', exp] = sci
    const e = Number(exp)
    if (frac.length > e) throw new InputError(`\`${field}\`: ${value} is not a whole number.`)
    return BigInt(whole + frac) * 10n ** BigInt(e - frac.length)
  }
  if (/^-?\d+$/.test(value)) return BigInt(value)
  if (/^0x[0-9a-fA-F]*$/.test(value) && value.length !== 42) return value as Hex
  return resolve(value, field)
}

export function signalMatcher(signals: readonly string[]) {
  const events = signals.map((s) => parseAbiItem(`event ${s}`) as AbiEvent)
  const byTopic = new Map(events.map((e) => [toEventSelector(e), e]))
  return (receipt: Receipt, emitter: Address): string[] => {
    const out: string[] = []
    for (const log of receipt.logs) {
      if (log.address.toLowerCase() !== emitter.toLowerCase()) continue
      const event = byTopic.get(log.topics[0] as Hex)
      if (!event) continue
      try {
        const decoded = decodeEventLog(event, { data: log.data, topics: log.topics as Hex[] })
        const args = Object.values(decoded.args ?? {}).map((v) => (typeof v === 'string' ? JSON.stringify(v) : String(v)))
        out.push(`${event.name}(${args.join(', ')})`)
      } catch {
        out.push(event.name)
      }
    }
    return out
  }
}
