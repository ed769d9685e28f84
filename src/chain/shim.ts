import type { Address, Hex } from 'viem'
import { encodeAbiParameters, getAddress, isHex, keccak256, numberToHex, pad, stringToHex, toFunctionSelector } from '../util/evm.js'
import { artifact } from '../contracts.js'
import { InputError } from '../errors.js'
import { getCode, getStorageAt, setCode, setStorageAt } from '../targets/chain.js'
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
  if (!entry) {
    const original = await getCode(rpc, target)
    if (original === '0x') throw new InputError(`The dependency target ${target} has no code.`)
    // A deterministic fresh address for the original code, derived from the target.
    const impl = getAddress(`0x${keccak256(`${target}${'f0'.repeat(4)}` as Hex).slice(26)}`)
    await setCode(rpc, impl, original)
    await setCode(rpc, target, artifact('SelectorShim').deployedBytecode)
    await setStorageAt(rpc, target, IMPL_SLOT, pad(impl, { size: 32 }))
    entry = { original, impl, selectors: new Map() }
    installed.set(key, entry)
  }
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
    await setStorageAt(rpc, target, numberToHex(slot, { size: 32 }), numberToHex(word, { size: 32 }))
    if (rule.mode === 'revert') await setStorageAt(rpc, target, numberToHex(slot + 1n, { size: 32 }), reasonWord(rule.reason))
    if (rule.mode === 'garbage') await setStorageAt(rpc, target, numberToHex(slot + 2n, { size: 32 }), rule.word)
    if (rule.mode === 'rewrite') await setStorageAt(rpc, target, numberToHex(slot + 3n, { size: 32 }), numberToHex(BigInt.asUintN(256, rule.value), { size: 32 }))
    entry.selectors.set(selector, (entry.selectors.get(selector) ?? 0) + 1)
  }
  return { target, selectors: [...rules.keys()], rpc }
}

export async function removeRules(handle: ShimHandle): Promise<void> {
  const key = `${handle.rpc.url}|${getAddress(handle.target)}`
  const entry = installed.get(key)
  if (!entry) return
  for (const selector of handle.selectors) {
    const left = (entry.selectors.get(selector) ?? 1) - 1
    if (left > 0) continue
    entry.selectors.delete(selector)
    const slot = ruleSlot(selector)
    for (const i of [0n, 1n, 2n, 3n]) await setStorageAt(handle.rpc, handle.target, numberToHex(slot + i, { size: 32 }), ZERO)
  }
  if (entry.selectors.size > 0) return
  await setCode(handle.rpc, handle.target, entry.original)
  await setStorageAt(handle.rpc, handle.target, IMPL_SLOT, ZERO)
  await setCode(handle.rpc, entry.impl, '0x')
  installed.delete(key)
}

/** Whether the shim is in place at the target (read back after apply). */
export async function shimInPlace(rpc: Rpc, target: Address): Promise<boolean> {
  const code = await getCode(rpc, target)
  return code === artifact('SelectorShim').deployedBytecode && BigInt(await getStorageAt(rpc, target, IMPL_SLOT)) !== 0n
}

function reasonWord(reason: string): Hex {
  const bytes = stringToHex(reason)
  if ((bytes.length - 2) / 2 > 32) throw new InputError(`A revert reason is at most 32 bytes. Got ${(bytes.length - 2) / 2}: "${reason}".`)
  return pad(bytes, { size: 32, dir: 'right' })
}
