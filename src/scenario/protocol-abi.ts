import type { Abi, AbiFunction, AbiParameter } from 'viem'
import { parseAbiItem } from '../util/evm.js'
import { artifact } from '../contracts.js'
import { bountyEventOf } from './protocol.js'
import type { Protocol, ProtocolView } from './types.js'
import type { Problem } from './values.js'

/**
 * The contracts of the embedded chain by their names there (src/targets/embedded.ts deploys
 * them), with the compiled contract each name is: the ABI a scenario reaches for a name it does
 * not map to an address of its own under `contracts:`.
 */
const embeddedContracts: Record<string, string> = {
  asset: 'MockERC20',
  other: 'MockERC20',
  pair: 'V2Pair',
  feed: 'ChainlinkFeed',
  twap: 'TwapOracle',
  lender: 'FlashLender',
  perp: 'PerpDex',
  vault: 'ReferenceVault',
}

/** The function signatures of an ABI, as `name(type,…)`. */
export const functionSignatures = (abi: Abi): string[] =>
  abi.filter((item): item is AbiFunction => item.type === 'function').map((f) => `${f.name}(${f.inputs.map((i) => i.type).join(',')})`)

/** An ABI a scenario can reach for one of its contract names, and what it is called in messages. */
export type ReachableAbi = { abi: Abi; source: string }

/**
 * The ABI forkchaos can reach for a contract name of a scenario, before anything boots: the
 * embedded reference contract of that name, unless the scenario's `contracts:` maps the name
 * to an address of its own (whose ABI is unknown unless a `contracts:` source gives it:
 * `fromContracts`, where a project's artifacts plug in). Undefined: nothing to check against.
 */
export function reachableAbi(
  name: string,
  contracts: Record<string, unknown>,
  fromContracts?: (name: string) => ReachableAbi | undefined,
): ReachableAbi | undefined {
  if (name in contracts) return fromContracts?.(name)
  const compiled = embeddedContracts[name]
  return compiled ? { abi: artifact(compiled).abi, source: `the embedded ${compiled}` } : undefined
}

/**
 * Resolves every function and event the protocol block names against the ABI of the contract
 * it is called on (`vault` for the views, the entry point, the bounty event and the signals;
 * `lender.token` for the flash check's `balanceOf(address)`): the function exists, with these
 * argument types (so this arity), and an event exists with these field types. A name whose ABI
 * cannot be reached is not checked (its signature was checked on its own by `protocolProblem`).
 */
export function protocolAbiProblem(protocol: Protocol, contracts: Record<string, unknown>, fromContracts?: (name: string) => ReachableAbi | undefined): Problem | undefined {
  const vault = reachableAbi(protocol.vault, contracts, fromContracts)
  if (vault) {
    const views: [string, ProtocolView | undefined][] = [
      ['sharePrice', protocol.sharePrice],
      ['riskMode', protocol.riskMode],
      ['bountyCap', protocol.bountyCap],
      ...(protocol.state ?? []).map((v, i) => [`state[${i}]`, v] as [string, ProtocolView]),
    ]
    for (const [field, view] of views) {
      if (view === undefined) continue
      const at = typeof view === 'string' ? `protocol.${field}` : `protocol.${field}.fn`
      const problem = functionProblem(typeof view === 'string' ? view : view.fn, vault, protocol.vault, at)
      if (problem) return problem
    }
    const entry = functionProblem(protocol.entry, vault, protocol.vault, 'protocol.entry')
    if (entry) return entry
    const events: [string, string][] = [
      ...(protocol.bountyEvent === undefined ? [] : [[typeof protocol.bountyEvent === 'string' ? 'protocol.bountyEvent' : 'protocol.bountyEvent.event', bountyEventOf(protocol.bountyEvent).event] as [string, string]]),
      ...(protocol.signals ?? []).map((s, i) => [`protocol.signals[${i}]`, s] as [string, string]),
    ]
    for (const [at, signature] of events) {
      const problem = eventProblem(signature, vault, protocol.vault, at)
      if (problem) return problem
    }
  }
  if (protocol.lender) {
    const token = reachableAbi(protocol.lender.token, contracts, fromContracts)
    if (token) {
      const problem = functionProblem('balanceOf(address)', token, protocol.lender.token, 'protocol.lender.token')
      if (problem) return { ...problem, message: `${problem.message} The flash check reads the lender's balance of this token.` }
    }
  }
  return undefined
}

const typesOf = (params: readonly AbiParameter[]) => params.map((p) => formatAbiItemParam(p)).join(',')
const formatAbiItemParam = (p: AbiParameter): string =>
  p.type.startsWith('tuple') && 'components' in p ? `(${typesOf(p.components)})${p.type.slice(5)}` : p.type

function functionProblem(signature: string, reached: ReachableAbi, contract: string, field: string): Problem | undefined {
  let item: AbiFunction
  try {
    item = parseAbiItem(`function ${signature}`) as AbiFunction
  } catch {
    // A signature that does not parse was refused by protocolProblem already.
    return undefined
  }
  const named = reached.abi.filter((x): x is AbiFunction => x.type === 'function' && x.name === item.name)
  const wanted = typesOf(item.inputs)
  if (named.length === 0) {
    const names = [...new Set(reached.abi.filter((x): x is AbiFunction => x.type === 'function').map((f) => `${f.name}(${typesOf(f.inputs)})`))]
    return { message: `\`${field}\` calls \`${item.name}(${wanted})\` on \`${contract}\`, and ${reached.source} has no function named \`${item.name}\`; it has ${list(names)}.`, field }
  }
  if (named.some((f) => typesOf(f.inputs) === wanted)) return undefined
  const forms = named.map((f) => `\`${f.name}(${typesOf(f.inputs)})\``).join(' or ')
  return { message: `\`${field}\` calls \`${item.name}(${wanted})\` on \`${contract}\`, but ${reached.source} declares ${forms}: ${named.length === 1 && (named[0] as AbiFunction).inputs.length !== item.inputs.length ? `${(named[0] as AbiFunction).inputs.length} argument(s), not ${item.inputs.length}` : 'other argument types'}.`, field }
}

function eventProblem(signature: string, reached: ReachableAbi, contract: string, field: string): Problem | undefined {
  let item: Extract<Abi[number], { type: 'event' }>
  try {
    item = parseAbiItem(`event ${signature}`) as typeof item
  } catch {
    return undefined
  }
  const named = reached.abi.filter((x): x is typeof item => x.type === 'event' && x.name === item.name)
  if (named.length === 0) {
    const names = reached.abi.filter((x): x is typeof item => x.type === 'event').map((e) => `${e.name}(${typesOf(e.inputs)})`)
    return { message: `\`${field}\` names the event \`${item.name}\`, and ${reached.source} (\`${contract}\`) emits no event of that name; it has ${list(names)}.`, field }
  }
  if (named.some((e) => typesOf(e.inputs) === typesOf(item.inputs))) return undefined
  return { message: `\`${field}\` names \`${item.name}(${typesOf(item.inputs)})\`, but ${reached.source} (\`${contract}\`) declares ${named.map((e) => `\`${e.name}(${typesOf(e.inputs)})\``).join(' or ')}: another topic, so its logs would never match.`, field }
}

const list = (names: string[]) => (names.length === 0 ? 'none' : names.length > 12 ? `${names.slice(0, 12).map((n) => `\`${n}\``).join(', ')} and ${names.length - 12} more` : names.map((n) => `\`${n}\``).join(', '))
