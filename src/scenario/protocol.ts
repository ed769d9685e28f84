import type { AbiEvent } from 'viem'
import { parseAbiItem } from '../util/evm.js'
import { InputError } from '../errors.js'
import type { BountyEvent, Protocol, ProtocolView, Scalar } from './types.js'
import { callProblem, type Problem, returnType } from './values.js'

/** The reference protocol of the embedded chain (contracts/ReferenceVault.sol), as data. */
export const referenceProtocol: Protocol = {
  vault: 'vault',
  entry: 'cycle()',
  sharePrice: 'sharePrice() returns (uint256)',
  riskMode: 'riskMode() returns (uint8)',
  bountyCap: 'bountyCap() returns (uint256)',
  // The cap the vault applied to each payment is in its event: read there, not from bountyCap() before the call.
  bountyEvent: { event: 'BountyPaid(address indexed keeper, uint256 amount, uint256 cap)', amount: 'amount', cap: 'cap' },
  lender: { address: 'lender', token: 'asset' },
  state: [
    'totalAssets() returns (uint256)',
    'totalSupply() returns (uint256)',
    'riskMode() returns (uint8)',
    'tradeId() returns (uint256)',
    'tradeCollateral() returns (uint256)',
    'alpShares() returns (uint256)',
  ],
  signals: ['RiskModeChanged(uint8 from, uint8 to, string why)', 'UnwindDeferred(string reason)'],
  // The vault's own defaults (contracts/ReferenceVault.sol: maxDeviationBps, heartbeat, maxGasPrice).
  guards: { deviationBps: 200, heartbeatS: 86_400, maxGasPriceGwei: 100 },
}

export function resolveProtocol(protocol: Protocol | 'reference', embedded: boolean, file: string): Protocol {
  if (protocol !== 'reference') return protocol
  if (!embedded)
    throw new InputError(`${file}: \`protocol: reference\` only fits the embedded chain.`, {
      context: { File: file, Field: 'protocol' },
      hint: 'On --fork-url, describe your vault in a `protocol:` block (vault, entry, sharePrice, …) and name its contracts under `contracts:`.',
    })
  return referenceProtocol
}

/** `sharePrice() returns (uint256)` → `sharePrice()`; views without `returns` read one uint256. */
export function withReturns(signature: string): string {
  return signature.includes(' returns ') ? signature : `${signature} returns (uint256)`
}

/** A protocol view as read: its signature with `returns`, its arguments, and the key it has in series and reports. */
export type ResolvedView = { fn: string; args: Scalar[]; key: string }

/**
 * `sharePrice() returns (uint256)` → `{ fn, args: [], key: "sharePrice()" }`;
 * `{ fn: "previewRedeem(uint256)", args: ["1e18"] }` → key `previewRedeem(1e18)`.
 */
export function viewOf(view: ProtocolView): ResolvedView {
  const fn = withReturns(typeof view === 'string' ? view : view.fn)
  const args = typeof view === 'string' ? [] : (view.args ?? [])
  const bare = fn.split(' returns ')[0] ?? fn
  const key = args.length === 0 ? (bare.split(' ')[0] ?? bare) : `${bare.slice(0, bare.indexOf('('))}(${args.map(String).join(', ')})`
  return { fn, args, key }
}

/** The bounty event with its fields named: the string form's amount is the field `amount`, and it names no cap. */
export function bountyEventOf(event: BountyEvent): { event: string; amount: string; cap?: string } {
  return typeof event === 'string' ? { event, amount: 'amount' } : { event: event.event, amount: event.amount ?? 'amount', ...(event.cap ? { cap: event.cap } : {}) }
}

/** The protocol fields a check can need, as they read in a scenario file. */
export type ProtocolField = 'sharePrice' | 'riskMode' | 'bountyCap' | 'bountyEvent' | 'bountyEvent.cap' | 'lender' | 'state'

/** Whether the protocol gives a field (`bountyEvent.cap`: the bounty event names a cap field). */
export function hasField(protocol: Protocol, field: ProtocolField): boolean {
  if (field === 'bountyEvent.cap') return protocol.bountyEvent !== undefined && bountyEventOf(protocol.bountyEvent).cap !== undefined
  if (field === 'state') return (protocol.state ?? []).length > 0
  return protocol[field] !== undefined
}

/**
 * Checks a protocol block at load: every view's signature parses, takes the arguments it is
 * given (arity and types), and returns a number; the bounty event parses and has the fields it
 * is mapped to, as unsigned integers; signals parse as events.
 */
export function protocolProblem(protocol: Protocol): Problem | undefined {
  for (const [field, view] of [
    ['sharePrice', protocol.sharePrice],
    ['riskMode', protocol.riskMode],
    ['bountyCap', protocol.bountyCap],
    ...(protocol.state ?? []).map((v, i) => [`state[${i}]`, v] as const),
  ] as const) {
    if (view === undefined) continue
    const at = `protocol.${field}`
    const fn = typeof view === 'string' ? view : view.fn
    const problem = callProblem(fn, typeof view === 'string' ? undefined : (view.args ?? []), typeof view === 'string' ? at : `${at}.fn`, `${at}.args`)
    if (problem) return problem
    const out = returnType(fn)
    // A state view is a fingerprint word (an owner's address will do); the others are compared as numbers.
    const fits = field.startsWith('state') ? /^(u?int\d*|address|bool|bytes\d+)$/ : /^u?int\d*$/
    if (out === undefined || !fits.test(out))
      return { message: `\`${at}\` must return ${field.startsWith('state') ? 'one word (a number, an address, a bool or bytesN)' : 'a number (uint or int)'}; \`${fn}\` returns ${out ?? 'nothing'}.`, field: at }
  }
  const entry = callProblem(protocol.entry, [], 'protocol.entry')
  if (entry) return { ...entry, message: `${entry.message} The keeper entry point is called without arguments.` }
  if (protocol.bountyEvent !== undefined) {
    const { event, amount, cap } = bountyEventOf(protocol.bountyEvent)
    const at = typeof protocol.bountyEvent === 'string' ? 'protocol.bountyEvent' : 'protocol.bountyEvent.event'
    let item: AbiEvent
    try {
      item = parseAbiItem(`event ${event}`) as AbiEvent
    } catch (error) {
      return { message: `\`${at}\` must be an event signature like \`BountyPaid(address indexed keeper, uint256 amount)\`. Got \`${event}\` (${String((error as Error).message).split('\n')[0]}).`, field: at }
    }
    const fields = item.inputs.map((p) => `${p.type} ${p.name ?? '(unnamed)'}`).join(', ')
    for (const [role, name] of [['amount', amount], ['cap', cap]] as const) {
      if (name === undefined) continue
      const input = item.inputs.find((p) => p.name === name)
      const where = typeof protocol.bountyEvent === 'string' ? at : `protocol.bountyEvent.${role}`
      if (!input)
        return {
          message: `\`${where}\`: the event \`${item.name}\` has no field named \`${name}\`${typeof protocol.bountyEvent === 'string' ? ' (the string form reads the bounty from a field named `amount`)' : ''}; its fields are ${fields || 'none'}.${typeof protocol.bountyEvent === 'string' ? ` Name it: \`bountyEvent: { event: "${event}", amount: "<field>" }\`.` : ''}`,
          field: where,
        }
      if (!/^uint\d*$/.test(input.type)) return { message: `\`${where}\` names the field \`${name}\` of \`${item.name}\`, which is ${input.type}; a bounty ${role} is a uint.`, field: where }
    }
  }
  for (const [i, signal] of (protocol.signals ?? []).entries()) {
    try {
      parseAbiItem(`event ${signal}`)
    } catch {
      return { message: `\`protocol.signals[${i}]\` must be an event signature like \`ModeChanged(uint8 from, uint8 to)\`. Got \`${signal}\`.`, field: `protocol.signals[${i}]` }
    }
  }
  return undefined
}
