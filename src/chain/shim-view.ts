import type { AbiFunction, AbiParameter, Address } from 'viem'
import { parseAbiItem } from '../util/evm.js'
import { InfraError, InputError } from '../errors.js'
import { installRules, removeRules, type ShimHandle, type ShimRule, toSelector } from './shim.js'
import { wordAt } from './slots.js'
import { calldata } from './views.js'
import { call } from '../targets/chain.js'
import type { Rpc } from '../targets/rpc.js'

/** A view's answer word a price fault rewrites, as parsed at load (`oracle.divergence` with `fn`). */
export type PriceView = { fn: string; selector: `0x${string}`; word: number; type: string; inputs: number }

/**
 * Parses `fn` (`consult() returns (uint256)`) for a price fault at load: it must declare what it
 * returns, every returned value must be one static word (uint/int/address/bool/bytes1–32: a
 * dynamic or nested return has no fixed word to rewrite), and `word` must be one of them; a
 * scaled word must be a number. Returns what is wrong (completing "`fn` …") or the view.
 */
export function parsePriceView(fn: string, word: number, scaled: boolean): PriceView | { problem: string; field: 'fn' | 'word' } {
  let item: AbiFunction
  try {
    item = parseAbiItem(`function ${fn}`) as AbiFunction
  } catch (error) {
    return { problem: `is not a view signature with what it returns, like \`consult() returns (uint256)\` (${String((error as Error).message).split('\n')[0]})`, field: 'fn' }
  }
  if (item.outputs.length === 0) return { problem: 'does not say what the view returns (`returns (uint256)`): the word to rewrite is found by its return types', field: 'fn' }
  const dynamic = item.outputs.find((o) => !isStaticWord(o))
  if (dynamic) return { problem: `returns ${dynamic.type}, which is not one static word: only views whose every returned value is one word (uint, int, address, bool, bytes1–32) can be rewritten`, field: 'fn' }
  if (word >= item.outputs.length) return { problem: `picks word ${word}, but \`${item.name}\` returns ${item.outputs.length} word${item.outputs.length === 1 ? '' : 's'} (0 to ${item.outputs.length - 1})`, field: 'word' }
  const type = (item.outputs[word] as AbiParameter).type
  if (scaled && !/^u?int\d*$/.test(type)) return { problem: `picks word ${word}, a ${type}; scaling by \`bps\` needs a number (uint or int): give \`value\` to replace it instead`, field: 'word' }
  const selector = toSelector(fn.split(' returns ')[0] ?? fn)
  if (!selector) return { problem: 'has no selector', field: 'fn' }
  return { fn, selector, word, type, inputs: item.inputs.length }
}

const isStaticWord = (p: AbiParameter) => /^(u?int\d*|address|bool|bytes([1-9]|[12]\d|3[0-2]))$/.test(p.type)

/** The rewrite the shim applies: `value` replaces the word; else `bps` scales it (`int`: signed). */
export function rewriteRule(view: PriceView, change: { value: bigint } | { bps: number; direction: 'up' | 'down' }): ShimRule {
  if ('value' in change) return { mode: 'rewrite', word: view.word, how: 'replace', value: change.value }
  const scale = BigInt(10_000 + (change.direction === 'up' ? 1 : -1) * Math.round(change.bps))
  return { mode: 'rewrite', word: view.word, how: view.type.startsWith('int') ? 'scale-int' : 'scale', value: scale }
}

export type ViewShift = { handle: ShimHandle; before: bigint | undefined; after: bigint | undefined }

/**
 * Installs the rewrite on the target through the selector shim (the original code keeps running
 * on its own storage; only this selector's answer is changed) and reads the word back: the
 * fault counts as applied only when the view now answers what was asked. A view with arguments
 * is rewritten for every call, and not read back (there are no arguments to read it with).
 */
export async function shiftView(rpc: Rpc, target: Address, view: PriceView, rule: ShimRule): Promise<ViewShift> {
  const read = async () => (view.inputs === 0 ? signed(view, wordAt(await call(rpc, { to: target, data: calldata(view.fn) }), view.word)) : undefined)
  let before: bigint | undefined
  try {
    before = await read()
  } catch (error) {
    throw new InputError(`\`${view.fn}\` does not answer on ${target}: ${(error as Error).message.split('\n')[0]}`, { context: { Target: target } })
  }
  const handle = await installRules(rpc, target, new Map([[view.selector, rule]]))
  const after = await read()
  const expected = before === undefined || rule.mode !== 'rewrite' ? undefined : rule.how === 'replace' ? signed(view, BigInt.asUintN(256, rule.value)) : (before * rule.value) / 10_000n
  if (expected !== undefined && after !== expected) {
    await removeRules(handle)
    throw new InfraError(`The rewrite of \`${view.fn}\` did not take.`, { context: { Target: target, Expected: String(expected), Got: String(after) } })
  }
  return { handle, before, after }
}

/** A word as its type reads: an int as a signed number. */
const signed = (view: PriceView, word: bigint) => (view.type.startsWith('int') ? BigInt.asIntN(256, word) : word)
