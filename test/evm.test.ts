// src/util/evm.ts stands in for viem's helpers on the loader's import graph (ox subpaths and
// abitype): each must give viem's answer, and refuse what viem refuses.
import * as viem from 'viem'
import { describe, expect, it } from 'vitest'
import * as evm from '../src/util/evm.js'

const same = <A extends unknown[]>(ours: (...a: A) => unknown, theirs: (...a: A) => unknown, ...args: A) => expect(ours(...args)).toEqual(theirs(...args))
const bothThrow = (ours: () => unknown, theirs: () => unknown) => {
  expect(theirs).toThrow()
  expect(ours).toThrow()
}

describe('src/util/evm.ts gives what viem gives', () => {
  it('hex, bytes, hashes and RLP', () => {
    for (const n of [0, 1, 255, 256, 2 ** 53 - 1]) same(evm.numberToHex, viem.numberToHex, n)
    for (const n of [0n, 1n, 2n ** 255n, 2n ** 256n - 1n]) same(evm.numberToHex, viem.numberToHex, n, { size: 32 })
    bothThrow(() => evm.numberToHex(256, { size: 1 }), () => viem.numberToHex(256, { size: 1 }))
    bothThrow(() => evm.numberToHex(-1), () => viem.numberToHex(-1))
    same(evm.pad, viem.pad, '0x0', { size: 32 })
    same(evm.pad, viem.pad, '0x1234', { size: 32, dir: 'right' })
    same(evm.pad, viem.pad, '0xabcdef', {})
    bothThrow(() => evm.pad(`0x${'ab'.repeat(33)}`, { size: 32 }), () => viem.pad(`0x${'ab'.repeat(33)}`, { size: 32 }))
    for (const s of ['', 'forkchaos.shim.impl', 'Transfer(address,address,uint256)', 'ünïcode ✓']) {
      same(evm.toHex, viem.toHex, s)
      same(evm.stringToHex, viem.stringToHex, s)
      same(evm.stringToBytes, viem.stringToBytes, s)
      same(evm.keccak256, viem.keccak256, viem.stringToBytes(s))
      same(evm.keccak256, viem.keccak256, viem.toHex(s))
    }
    for (const n of [0, 7, 1_000_000n]) same(evm.toHex, viem.toHex, n)
    same(evm.toHex, viem.toHex, new Uint8Array([0, 1, 254, 255]))
    same(evm.bytesToHex, viem.bytesToHex, new Uint8Array([]))
    same(evm.hexToBytes, viem.hexToBytes, '0x00ff10')
    for (const v of ['0x', '0x0', '0xAbC', '0xg', 'abc', '0x 1']) expect(evm.isHex(v)).toBe(viem.isHex(v))
    const nested = ['0x', '0x01', ['0x7f', '0x80', ['0x' + 'aa'.repeat(60)]], '0x' + 'bb'.repeat(1_100)] as const
    same(evm.toRlp, viem.toRlp as (v: unknown) => unknown, nested)
    same(evm.toRlp, viem.toRlp as (v: unknown) => unknown, [new Uint8Array([1, 2, 3]), []])
  })

  it('addresses and gwei', () => {
    const lower = '0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed'
    same(evm.getAddress, viem.getAddress, lower)
    same(evm.getAddress, viem.getAddress, lower.toUpperCase().replace('0X', '0x'))
    bothThrow(() => evm.getAddress('0x1234'), () => viem.getAddress('0x1234'))
    bothThrow(() => evm.getAddress('vault'), () => viem.getAddress('vault'))
    const checksummed = viem.getAddress(lower)
    const badChecksum = `0x${checksummed.slice(2, 3).toLowerCase() === checksummed.slice(2, 3) ? checksummed.slice(2, 3).toUpperCase() : checksummed.slice(2, 3).toLowerCase()}${checksummed.slice(3)}`
    for (const a of [lower, checksummed, badChecksum, '0x1234', 'vault', `${lower}00`]) expect(evm.isAddress(a), a).toBe(viem.isAddress(a))
    for (const g of ['0', '1', '1.5', '0.000000001', '300', '2000.123456789']) same(evm.parseGwei, viem.parseGwei, g)
    for (const w of [0n, 1n, 1_500_000_000n, 300_000_000_000n, 123_456_789_012n]) same(evm.formatGwei, viem.formatGwei, w)
  })

  it('ABI: selectors, calldata, results, event logs', () => {
    for (const sig of ['closeTrade(uint256)', 'transfer(address to, uint256 amount)', 'latestRoundData()', 'f((uint256,address)[],bytes32)'])
      same(evm.toFunctionSelector, viem.toFunctionSelector, sig)
    const fn = evm.parseAbiItem('function balanceOf(address owner) view returns (uint256)') as viem.AbiFunction
    expect(fn).toEqual(viem.parseAbiItem('function balanceOf(address owner) view returns (uint256)'))
    const holder = viem.getAddress('0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed')
    expect(evm.encodeFunctionData(fn, [holder])).toBe(viem.encodeFunctionData({ abi: [fn], functionName: 'balanceOf', args: [holder] }))
    const badChecksum = `0x5aaeb6053F3E94C9b9A09f33669435E7Ef1BeAed` as const
    bothThrow(() => evm.encodeFunctionData(fn, [badChecksum]), () => viem.encodeFunctionData({ abi: [fn], functionName: 'balanceOf', args: [badChecksum] }))
    const none = evm.parseAbiItem('function latestRoundData() view returns (uint256)') as viem.AbiFunction
    expect(evm.encodeFunctionData(none)).toBe(viem.encodeFunctionData({ abi: [none], functionName: 'latestRoundData' }))
    const token0 = evm.parseAbiItem('function token0() view returns (address)') as viem.AbiFunction
    const addressWord = viem.pad(holder.toLowerCase() as viem.Hex, { size: 32 })
    expect(evm.decodeFunctionResult(token0, addressWord)).toBe(viem.decodeFunctionResult({ abi: [token0], data: addressWord }))
    const word = viem.numberToHex(12_345n, { size: 32 })
    expect(evm.decodeFunctionResult(fn, word)).toBe(viem.decodeFunctionResult({ abi: [fn], data: word }))
    const two = viem.parseAbiItem('function latestRoundData() view returns (uint80, int256, uint256, uint256, uint80)') as viem.AbiFunction
    const answer = viem.encodeAbiParameters(two.outputs, [1n, -5n, 2n, 3n, 1n])
    expect(evm.decodeFunctionResult(two, answer)).toEqual(viem.decodeFunctionResult({ abi: [two], data: answer }))
    bothThrow(() => evm.decodeFunctionResult(fn, '0x'), () => viem.decodeFunctionResult({ abi: [fn], data: '0x' }))
    const params = [{ type: 'bytes4' }, { type: 'string' }] as const
    expect(evm.encodeAbiParameters(params, ['0x12345678', 'forkchaos.shim.rule'])).toBe(viem.encodeAbiParameters(params, ['0x12345678', 'forkchaos.shim.rule']))
    const event = viem.parseAbiItem('event Bounty(address indexed keeper, uint256 amount, uint256 cap)') as viem.AbiEvent
    expect(evm.toEventSelector(event)).toBe(viem.toEventSelector(event))
    const log = { topics: viem.encodeEventTopics({ abi: [event], eventName: 'Bounty', args: { keeper: holder } }) as viem.Hex[], data: viem.encodeAbiParameters([{ type: 'uint256' }, { type: 'uint256' }], [7n, 9n]) }
    const theirs = viem.decodeEventLog({ abi: [event], data: log.data, topics: log.topics as [viem.Hex, ...viem.Hex[]] })
    expect(evm.decodeEventLog(event, log)).toEqual({ eventName: theirs.eventName, args: theirs.args })
    // By position when an input is unnamed; an indexed string is its hash; a log without its data is refused.
    for (const sig of ['event Moved(address indexed, uint256)', 'event Noted(string indexed note, address who, uint256[] xs)']) {
      const e = viem.parseAbiItem(sig) as viem.AbiEvent
      const values = e.inputs.map((i) => (i.type === 'address' ? holder : i.type === 'string' ? 'hello' : i.type === 'uint256' ? 5n : [1n, 2n]))
      const indexedArgs = e.inputs.flatMap((i, n) => (i.indexed ? [values[n]] : []))
      const topics = viem.encodeEventTopics({ abi: [e], eventName: e.name, args: (e.inputs.some((i) => !i.name) ? indexedArgs : Object.fromEntries(e.inputs.filter((i) => i.indexed).map((i, n) => [i.name, indexedArgs[n]]))) as never }) as viem.Hex[]
      const rest = e.inputs.filter((i) => !i.indexed)
      const data = viem.encodeAbiParameters(rest, e.inputs.flatMap((i, n) => (i.indexed ? [] : [values[n]])))
      const expected = viem.decodeEventLog({ abi: [e], data, topics: topics as [viem.Hex, ...viem.Hex[]] })
      expect(evm.decodeEventLog(e, { data, topics }), sig).toEqual({ eventName: expected.eventName, args: expected.args })
      bothThrow(() => evm.decodeEventLog(e, { data: '0x', topics }), () => viem.decodeEventLog({ abi: [e], data: '0x', topics: topics as [viem.Hex, ...viem.Hex[]] }))
    }
    bothThrow(
      () => evm.decodeEventLog(event, { ...log, topics: [viem.keccak256('0x01'), ...log.topics.slice(1)] }),
      () => viem.decodeEventLog({ abi: [event], data: log.data, topics: [viem.keccak256('0x01'), ...log.topics.slice(1)] as [viem.Hex, ...viem.Hex[]] }),
    )
  })
})
