import { type Abi, type AbiFunction, type Address, getAddress, type Hex, toFunctionSelector } from 'viem'
import { installRules, removeRules } from '../chain/shim.js'
import { artifact } from '../contracts.js'
import type { Rpc } from '../targets/rpc.js'

/** One frame of Geth's callTracer, as Anvil returns it (only the fields read here). */
export type CallFrame = { type: string; from: string; to?: string; input: string; output?: string; error?: string; revertReason?: string; calls?: CallFrame[] }

/** One external function the entry point calls (directly or from a dependency's own calls). */
export type Dependency = {
  /** The contract called, checksummed. */
  address: Address
  /** Its name in the target's address book (`perp`), when it has one. */
  contract: string | undefined
  selector: Hex
  /** `closeTrade(uint256)`, when a known ABI has the selector. */
  signature: string | undefined
  /** How many times the traced call made it. */
  calls: number
  /** Whether any of those calls is a static call (a view). */
  view: boolean
  /** With `dependency.revert` on this selector the entry reverts (`propagates`) or still succeeds (`caught`). */
  failure: 'propagates' | 'caught'
}

/** What the entry read, per contract: storage slots and whether its balance was touched. */
export type Reads = { address: Address; contract: string | undefined; slots: number; balance: string }

export type Trace = { entry: string; from: Address; to: Address; ok: boolean; dependencies: Dependency[]; reads: Reads[] }

/** Limits: how deep the call tree is walked and how many distinct dependencies are kept. */
export const limits = { depth: 64, dependencies: 64 } as const

const traceCall = (rpc: Rpc, tx: { from: Address; to: Address; data: Hex; gas: Hex }, tracer: object) => rpc.request<unknown>('debug_traceCall', [tx, 'latest', tracer])

/**
 * Traces one healthy call of the entry on the fork (callTracer and prestateTracer), lists every
 * external call by contract and selector, and tries each one's failure: `dependency.revert` on
 * that selector alone (the same shim the fault installs), the call traced again, the rule taken
 * out. A selector whose revert the entry survives is `caught`.
 */
export async function traceEntry(
  rpc: Rpc,
  options: { from: Address; to: Address; entry: string; book: Record<string, Address>; gas: bigint; /** A user project's ABIs (`contracts: { foundry }`), naming selectors the embedded ABIs do not. */ abis?: readonly Abi[] },
): Promise<Trace> {
  const data = toFunctionSelector(`function ${options.entry}`)
  const tx = { from: options.from, to: options.to, data, gas: `0x${options.gas.toString(16)}` as Hex }
  const names = new Map(Object.entries(options.book).map(([name, a]) => [getAddress(a), name]))
  const signatures = knownSignatures(options.abis ?? [])
  const root = (await traceCall(rpc, tx, { tracer: 'callTracer' })) as CallFrame
  const prestate = (await traceCall(rpc, tx, { tracer: 'prestateTracer' })) as Record<string, { balance?: string; storage?: Record<string, string> }>
  const found = new Map<string, Omit<Dependency, 'failure'>>()
  const vault = getAddress(options.to)
  const walk = (frame: CallFrame, depth: number) => {
    if (depth > limits.depth) return
    for (const child of frame.calls ?? []) {
      if (child.to && child.input.length >= 10 && getAddress(child.to) !== vault && child.type !== 'DELEGATECALL') {
        const address = getAddress(child.to)
        const selector = child.input.slice(0, 10).toLowerCase() as Hex
        const key = `${address}|${selector}`
        const seen = found.get(key)
        if (seen) found.set(key, { ...seen, calls: seen.calls + 1, view: seen.view || child.type === 'STATICCALL' })
        else if (found.size < limits.dependencies) found.set(key, { address, contract: names.get(address), selector, signature: signatures.get(selector), calls: 1, view: child.type === 'STATICCALL' })
      }
      walk(child, depth + 1)
    }
  }
  walk(root, 0)
  const dependencies: Dependency[] = []
  for (const dep of found.values()) {
    const handle = await installRules(rpc, dep.address, new Map([[dep.selector, { mode: 'revert', reason: 'forkchaos explore' }]]))
    let frame: CallFrame
    try {
      frame = (await traceCall(rpc, tx, { tracer: 'callTracer' })) as CallFrame
    } finally {
      await removeRules(handle)
    }
    dependencies.push({ ...dep, failure: frame.error ? 'propagates' : 'caught' })
  }
  const reads = Object.entries(prestate)
    .map(([a, s]) => ({ address: getAddress(a), contract: names.get(getAddress(a)), slots: Object.keys(s.storage ?? {}).length, balance: s.balance ? BigInt(s.balance).toString() : '0' }))
    .filter((r) => r.slots > 0 || r.contract !== undefined)
  return { entry: options.entry, from: options.from, to: vault, ok: !root.error, dependencies, reads }
}

/** The reference protocol's contracts (contracts/*.sol), whose ABIs name the selectors found. */
const referenceContracts = ['ChainlinkFeed', 'FlashLender', 'MockERC20', 'PerpDex', 'ReferenceVault', 'TwapOracle', 'V2Pair']

/** Selector → signature from every ABI the embedded build knows (the reference contracts), then a user project's. */
function knownSignatures(extra: readonly Abi[]): Map<Hex, string> {
  const out = new Map<Hex, string>()
  for (const abi of [...referenceContracts.map((name) => artifact(name).abi as Abi), ...extra])
    for (const item of abi) {
      if (item.type !== 'function' || (item as AbiFunction).inputs.some((i) => i.type.startsWith('tuple'))) continue
      const sig = `${item.name}(${(item as AbiFunction).inputs.map((i) => i.type).join(',')})`
      out.set(toFunctionSelector(`function ${sig}`), sig)
    }
  return out
}
