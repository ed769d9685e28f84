import type { Address, Hex } from 'viem'
import { encodeAbiParameters, getAddress, isHex, keccak256, numberToHex, pad, stringToHex, toFunctionSelector } from '../util/evm.js'
import { artifact } from '../contracts.js'
import { InputError } from '../errors.js'
import { getCode, setCodeWrite, setStorageWrite, writeAll } from '../targets/chain.js'
import type { Rpc } from '../targets/rpc.js'

/**
 * The selector-level fault shim (contracts/SelectorShim.sol). To fault chosen functions of a
 * deployed contract, its code moves to a fresh address, the shim takes its place, and the
 * shim's rules are written into the target's own storage at namespaced slots. Calls to
 * faulted selectors revert / return garbage / burn gas; every other call is delegated to the
 * original code, which therefore keeps running on the target's own storage.
 *
 * Slots (mirrors the NatSpec of SelectorShim.sol):
 *   impl  = keccak256("forkchaos.shim.impl") - 1
 *   rule  = keccak256(abi.encode(bytes4 selector, "forkchaos.shim.rule"))
 *           bits 0..7 mode (1 revert, 2 garbage, 3 burn gas, 4 rewrite a returned word), 8..71 gas,
 *           72..79 garbage words, 80..87 the word to rewrite, 88..95 how (0 replace, 1 scale uint, 2 scale int)
 *   rule+1 = revert reason (bytes32, left-aligned), rule+2 = garbage word,
 *   rule+3 = the replacement word, or the scale in basis points (10 000 = unchanged)
 */
export type ShimRule =
  | { mode: 'revert'; reason: string }
  | { mode: 'garbage'; words: number; word: Hex }
  | { mode: 'gas'; gas: bigint }
  /** Calls the original, then rewrites returned word `word`: `replace` with `value`, or `scale`s it by `value` / 10 000 (`int`: as a signed number). */
  | { mode: 'rewrite'; word: number; how: 'replace' | 'scale' | 'scale-int'; value: bigint }

const IMPL_SLOT = numberToHex(BigInt(keccak256(stringToHex('forkchaos.shim.impl'))) - 1n, { size: 32 })
const ZERO = pad('0x0', { size: 32 })

export function ruleSlot(selector: Hex): bigint {
  return BigInt(keccak256(encodeAbiParameters([{ type: 'bytes4' }, { type: 'string' }], [selector, 'forkchaos.shim.rule'])))
}

/** `closeTrade(uint256)` or `0x12345678` → `0x12345678`; undefined for anything else. */
export function toSelector(signatureOrSelector: string): Hex | undefined {
  if (isHex(signatureOrSelector) && signatureOrSelector.length === 10) return signatureOrSelector
  if (!/^[A-Za-z_$][\w$]*\(.*\)$/.test(signatureOrSelector)) return undefined
  try {
    return toFunctionSelector(signatureOrSelector)
  } catch {
    // Unbalanced parentheses and the like: viem cannot normalize it.
    return undefined
  }
}

type Installed = { original: Hex; impl: Address; selectors: Map<Hex, number> }
/** Per endpoint and target: the shim is installed once and shared by several dependency faults. */
const installed = new Map<string, Installed>()

export type ShimHandle = { target: Address; selectors: Hex[]; rpc: Rpc }

export async function installRules(rpc: Rpc, target: Address, rules: Map<Hex, ShimRule>): Promise<ShimHandle> {
  const key = `${rpc.url}|${getAddress(target)}`
  let entry = installed.get(key)
  // Every write goes in one batch: each is to its own code or slot, so their order does not matter.
  const writes: { method: string; params: unknown[] }[] = []
  let fresh: Installed | undefined
  if (!entry) {
    const original = await getCode(rpc, target)
    if (original === '0x') throw new InputError(`The dependency target ${target} has no code.`)
    // A deterministic fresh address for the original code, derived from the target.
    const impl = getAddress(`0x${keccak256(`${target}${'f0'.repeat(4)}` as Hex).slice(26)}`)
    writes.push(setCodeWrite(impl, original), setCodeWrite(target, artifact('SelectorShim').deployedBytecode), setStorageWrite(target, IMPL_SLOT, pad(impl, { size: 32 })))
    fresh = { original, impl, selectors: new Map() }
  }
  // A selector another fault already set is written again with this rule, as before; the count says how many hold it.
  const counts = new Map((entry ?? fresh)?.selectors)
  for (const [selector, rule] of rules) {
    const slot = ruleSlot(selector)
    const word =
      rule.mode === 'revert'
        ? 1n
        : rule.mode === 'garbage'
          ? 2n | (BigInt(rule.words) << 72n)
          : rule.mode === 'gas'
            ? 3n | (rule.gas << 8n)
            : 4n | (BigInt(rule.word) << 80n) | ({ replace: 0n, scale: 1n, 'scale-int': 2n }[rule.how] << 88n)
    writes.push(setStorageWrite(target, numberToHex(slot, { size: 32 }), numberToHex(word, { size: 32 })))
    if (rule.mode === 'revert') writes.push(setStorageWrite(target, numberToHex(slot + 1n, { size: 32 }), reasonWord(rule.reason)))
    if (rule.mode === 'garbage') writes.push(setStorageWrite(target, numberToHex(slot + 2n, { size: 32 }), rule.word))
    if (rule.mode === 'rewrite') writes.push(setStorageWrite(target, numberToHex(slot + 3n, { size: 32 }), numberToHex(BigInt.asUintN(256, rule.value), { size: 32 })))
    counts.set(selector, (counts.get(selector) ?? 0) + 1)
  }
  await writeAll(rpc, writes)
  entry ??= fresh as Installed
  installed.set(key, entry)
  entry.selectors = counts
  return { target, selectors: [...rules.keys()], rpc }
}

export async function removeRules(handle: ShimHandle): Promise<void> {
  const key = `${handle.rpc.url}|${getAddress(handle.target)}`
  const entry = installed.get(key)
  if (!entry) return
  // Every write goes in one batch (each to its own slot or code); the bookkeeping follows once they are in.
  const writes: { method: string; params: unknown[] }[] = []
  const counts = new Map(entry.selectors)
  for (const selector of handle.selectors) {
    const left = (counts.get(selector) ?? 1) - 1
    if (left > 0) {
      counts.set(selector, left)
      continue
    }
    counts.delete(selector)
    const slot = ruleSlot(selector)
    for (const i of [0n, 1n, 2n, 3n]) writes.push(setStorageWrite(handle.target, numberToHex(slot + i, { size: 32 }), ZERO))
  }
  const last = counts.size === 0
  if (last) writes.push(setCodeWrite(handle.target, entry.original), setStorageWrite(handle.target, IMPL_SLOT, ZERO), setCodeWrite(entry.impl, '0x'))
  await writeAll(handle.rpc, writes)
  entry.selectors = counts
  if (last) installed.delete(key)
}

/** Whether the shim is in place at the target (read back after apply): its code and its impl slot, in one batch. */
export async function shimInPlace(rpc: Rpc, target: Address): Promise<boolean> {
  const [code, impl] = await rpc.batch([
    { method: 'eth_getCode', params: [target, 'latest'] },
    { method: 'eth_getStorageAt', params: [target, IMPL_SLOT, 'latest'] },
  ])
  if (code instanceof Error) throw code
  if (impl instanceof Error) throw impl
  return code === artifact('SelectorShim').deployedBytecode && BigInt(impl as Hex) !== 0n
}

function reasonWord(reason: string): Hex {
  const bytes = stringToHex(reason)
  if ((bytes.length - 2) / 2 > 32) throw new InputError(`A revert reason is at most 32 bytes. Got ${(bytes.length - 2) / 2}: "${reason}".`)
  return pad(bytes, { size: 32, dir: 'right' })
}
