import * as fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { type ScannedMessage, scanMessage } from '../src/proxy/jsonrpc/scan.js'

// The WebSocket fast path counts calls and answers with `scanMessage` instead of JSON.parse: it
// must say exactly what JSON.parse would have, for any text. The reference here is JSON.parse itself.

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

function reference(text: string): ScannedMessage | undefined {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return undefined
  }
  const batch = Array.isArray(value)
  const list: unknown[] = batch ? (value as unknown[]) : [value]
  return {
    batch,
    elements: list.map((el) => {
      const object = isRecord(el)
      const hasId = object && Object.hasOwn(el, 'id')
      return {
        object,
        method: object && typeof el.method === 'string' ? el.method : undefined,
        hasId,
        idKey: hasId ? JSON.stringify(el.id) : undefined,
        hasResult: object && Object.hasOwn(el, 'result'),
        hasError: object && Object.hasOwn(el, 'error'),
      }
    }),
  }
}

const same = (text: string): void => {
  expect(scanMessage(Buffer.from(text)), text.slice(0, 300)).toEqual(reference(text))
}

/** Members a call or an answer has, with awkward values, sometimes twice, sometimes with escaped keys. */
const member = fc.oneof(
  fc.tuple(fc.constantFrom('"id"', '"\\u0069d"', '"i\\u0064"', '"method"', '"m\\u0065thod"', '"result"', '"error"', '"params"', '"jsonrpc"', '"idx"', '"ID"'), fc.oneof(fc.json(), fc.constantFrom('"eth_call"', '"a\\"b"', '"\\u00e9"', '"é"', '-0', '1e3', '1.0', '12345678901234567890', '"x\\\\"', '0', '-12'))),
)
const element = fc.array(member, { maxLength: 6 }).map((ms) => `{${ms.map(([k, v]) => `${k}:${v}`).join(',')}}`)
const message = fc.oneof(element, fc.array(fc.oneof(element, fc.json()), { maxLength: 5 }).map((es) => `[${es.join(',')}]`), fc.json())
/** Valid text with one byte changed, cut short or spaced out: the places a scanner goes wrong. */
const mutated = fc.tuple(message, fc.nat(), fc.constantFrom('', ',', '}', ']', '"', '\\', ' ', '\n', '\u0001', 'x', '0', '-', '.', 'e', '{', '[', ':', 'tru', '\uFEFF', '\t')).map(([text, at, insert]) => {
  const i = text.length === 0 ? 0 : at % (text.length + 1)
  return at % 3 === 0 ? text.slice(0, i) + insert + text.slice(i + 1) : at % 3 === 1 ? text.slice(0, i) + insert + text.slice(i) : text.slice(0, i)
})

describe('scanMessage reads what JSON.parse reads', () => {
  it('on generated calls, answers, batches and any JSON (fast-check, seed 17, 600 runs)', () => {
    fc.assert(fc.property(message, (text) => same(text)), { seed: 17, numRuns: 600 })
  })

  it('on text one edit away from JSON: refused exactly where JSON.parse throws (seed 18, 2,000 runs)', () => {
    fc.assert(fc.property(mutated, (text) => same(text)), { seed: 18, numRuns: 2_000 })
  })

  it('on the cases written out: duplicates, escapes, odd numbers, nesting past any stack, and non-JSON', () => {
    for (const text of [
      '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}',
      '{"id":1,"id":"two","method":"a","method":5}',
      '{"\\u0069d":"x\\ny","m\\u0065thod":"eth_\\u0063all"}',
      '{"id":-0}',
      '{"id":1e3}',
      '{"id":1.50}',
      '{"id":123456789012345678901234567890}',
      '{"id":null,"result":null}',
      '{"id":{"b":1,"a":[1,2]}}',
      '[{"id":1,"result":"0x1"},{"id":2,"error":{"code":-32000}},3,"x",null,[]]',
      '[]',
      ' [ ] ',
      '{}',
      `{"id":"deep","params":${'['.repeat(100_000)}${']'.repeat(100_000)}}`,
      `{"id":"deep","params":${'['.repeat(100_000)}${']'.repeat(99_999)}}`,
      '{"jsonrpc":"2.0","id":',
      '[1,]',
      '{"a":1,}',
      '{"a" 1}',
      '01',
      '1.',
      '-',
      '"\\x"',
      '"\\u12G4"',
      'nul',
      '{"id":1}x',
      '',
      '   ',
      '\uFEFF{}',
    ])
      same(text)
  })

  it('reads a 10,000-call batch and its answers without JSON.parse building them (and agrees with it)', () => {
    const calls = Array.from({ length: 10_000 }, (_, i) => ({ jsonrpc: '2.0', id: `c-${i}`, method: 'eth_getBlockByNumber', params: ['latest', false] }))
    const text = JSON.stringify(calls)
    const scanned = scanMessage(Buffer.from(text))
    expect(scanned?.elements).toHaveLength(10_000)
    expect(scanned?.elements[9_999]).toEqual({ object: true, method: 'eth_getBlockByNumber', hasId: true, idKey: '"c-9999"', hasResult: false, hasError: false })
    same(text)
  })
})
