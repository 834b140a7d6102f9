import type { RecordsBatch } from '@platformatic/kafka'
import { describe, expect, it } from 'vitest'
import { decodeBatches, fromHeaders, toHeaders } from './records.js'

const TRANSACTIONAL = 0x10
const CONTROL = 0x20

/** A batch of `values` from `first`, by `producer` (transactional unless -1). */
function batch(
  first: number,
  producer: number,
  values: string[],
  attributes = producer < 0 ? 0 : TRANSACTIONAL,
): RecordsBatch {
  return {
    firstOffset: BigInt(first),
    length: 0,
    partitionLeaderEpoch: 0,
    magic: 2,
    crc: 0,
    attributes,
    lastOffsetDelta: values.length - 1,
    firstTimestamp: 1000n,
    maxTimestamp: 2000n,
    producerId: BigInt(producer),
    producerEpoch: 0,
    firstSequence: 0,
    records: values.map((v, i) => ({
      length: 0,
      attributes: 0,
      timestampDelta: BigInt(i),
      offsetDelta: i,
      key: null,
      value: Buffer.from(v),
      headers: [],
    })),
  }
}

/** A control batch: an ABORT (type 0) or COMMIT (type 1) marker of `producer`. */
function marker(offset: number, producer: number, type: 0 | 1): RecordsBatch {
  const b = batch(offset, producer, ['x'], TRANSACTIONAL | CONTROL)
  b.records[0]!.key = Buffer.from([0, 0, 0, type])
  return b
}

const values = (d: ReturnType<typeof decodeBatches>): string[] => d.records.map((r) => r.value!.toString())

describe('decodeBatches (read committed)', () => {
  it('drops aborted transactions of interleaved producers, listed out of order, and every control record', () => {
    const batches = [
      batch(0, -1, ['plain0']),
      batch(1, 7, ['p7-aborted-a']),
      batch(2, 8, ['p8-committed-a']),
      batch(3, 7, ['p7-aborted-b']),
      marker(4, 8, 1),
      marker(5, 7, 0),
      batch(6, 7, ['p7-committed']),
      batch(7, 9, ['p9-aborted']),
      marker(8, 7, 1),
      marker(9, 9, 0),
      batch(10, -1, ['plain10']),
    ]
    // Kafka lists aborted transactions in the order they were aborted, not by first offset.
    const aborted = [
      { producerId: 9n, firstOffset: 7n },
      { producerId: 7n, firstOffset: 1n },
    ]
    const d = decodeBatches('t', 0, batches, aborted, 0)
    expect(values(d)).toEqual(['plain0', 'p8-committed-a', 'p7-committed', 'plain10'])
    expect(d.records.map((r) => r.offset)).toEqual([0, 2, 6, 10])
    expect(d.next).toBe(11)
  })

  it('reads from an offset inside a batch and stops before `to`; next is past what was seen', () => {
    const batches = [batch(0, -1, ['a', 'b', 'c']), batch(3, -1, ['d', 'e'])]
    const d = decodeBatches('t', 2, batches, null, 1, 4)
    expect(values(d)).toEqual(['b', 'c', 'd'])
    expect(d.records[0]).toMatchObject({ topic: 't', partition: 2, offset: 1, key: null, timestamp: 1001 })
    expect(d.next).toBe(4)
  })

  it('skips over a partition end of control records only', () => {
    const d = decodeBatches('t', 0, [marker(4, 3, 1)], null, 4)
    expect(d.records).toEqual([])
    expect(d.next).toBe(5)
  })

  it('takes the log append time of a batch when the topic says so', () => {
    const d = decodeBatches('t', 0, [batch(0, -1, ['a'], 0x08)], null, 0)
    expect(d.records[0]!.timestamp).toBe(2000)
  })
})

describe('headers', () => {
  it('keep the last value of a repeated name, skip null values, and round-trip', () => {
    const h = toHeaders([
      [Buffer.from('a'), Buffer.from('1')],
      [Buffer.from('a'), Buffer.from('2')],
      [Buffer.from('b'), null],
    ])
    expect(Object.keys(h)).toEqual(['a'])
    expect(h.a!.toString()).toBe('2')
    expect(toHeaders([])).toBe(toHeaders(undefined))
    const map = fromHeaders({ x: Buffer.from('y') })!
    expect([...map].map(([k, v]) => [k.toString(), v.toString()])).toEqual([['x', 'y']])
    expect(fromHeaders({})).toBeUndefined()
  })
})
