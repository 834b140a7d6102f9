import { crc32c, createRecordsBatch } from '@platformatic/kafka'
import { describe, expect, it } from 'vitest'
import { decodeBatches, fromHeaders } from './records.js'

const TRANSACTIONAL = 0x10
const CONTROL = 0x20
const LOG_APPEND_TIME = 0x08

/**
 * A batch of `values` from `first`, by `producer` (transactional unless -1), as bytes on the wire:
 * platformatic's own encoder writes it, then the base offset and any attribute bits the encoder
 * does not set are written in, and the CRC computed again.
 */
function batch(
  first: number,
  producer: number,
  values: (string | Buffer | null)[],
  attributes = producer < 0 ? 0 : TRANSACTIONAL,
  extra: { compression?: 'gzip'; keys?: (string | null)[]; headers?: Map<Buffer, Buffer>[] } = {},
): Buffer {
  const messages: Parameters<typeof createRecordsBatch>[0] = values.map((v, i) => ({
    topic: 't',
    partition: 0,
    key: extra.keys?.[i] == null ? (undefined as unknown as Buffer) : Buffer.from(extra.keys[i]!),
    value: v === null ? (null as unknown as Buffer) : typeof v === 'string' ? Buffer.from(v) : v,
    headers: extra.headers?.[i],
    timestamp: 1000n + BigInt(i),
  }))
  const bytes = Buffer.from(
    createRecordsBatch(messages, {
      producerId: BigInt(producer),
      compression: extra.compression,
      transactionalId: attributes & TRANSACTIONAL ? 'tx' : undefined,
    }).buffer,
  )
  bytes.writeBigInt64BE(BigInt(first), 0)
  bytes.writeInt16BE(bytes.readInt16BE(21) | (attributes & (CONTROL | LOG_APPEND_TIME)), 21)
  bytes.writeUInt32BE(crc32c(bytes.subarray(21)), 17)
  return bytes
}

/** A control batch: an ABORT (type 0) or COMMIT (type 1) marker of `producer`. */
function marker(offset: number, producer: number, type: 0 | 1): Buffer {
  return batch(offset, producer, [Buffer.from([0, 0, 0, 0, 0, 0])], TRANSACTIONAL | CONTROL, {
    keys: [String.fromCharCode(0, 0, 0, type)],
  })
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
    const d = decodeBatches('t', 0, Buffer.concat(batches), aborted, 0)
    expect(values(d)).toEqual(['plain0', 'p8-committed-a', 'p7-committed', 'plain10'])
    expect(d.records.map((r) => r.offset)).toEqual([0, 2, 6, 10])
    expect(d.next).toBe(11)
  })

  it('reads from an offset inside a batch and stops before `to`; next is past what was seen', () => {
    const batches = [batch(0, -1, ['a', 'b', 'c']), batch(3, -1, ['d', 'e'])]
    const d = decodeBatches('t', 2, Buffer.concat(batches), null, 1, 4)
    expect(values(d)).toEqual(['b', 'c', 'd'])
    expect(d.records[0]).toMatchObject({ topic: 't', partition: 2, offset: 1, key: null, timestamp: 1001 })
    expect(d.next).toBe(4)
  })

  it('skips over a partition end of control records only', () => {
    const d = decodeBatches('t', 0, marker(4, 3, 1), null, 4)
    expect(d.records).toEqual([])
    expect(d.next).toBe(5)
  })

  it('takes the log append time of a batch when the topic says so', () => {
    const d = decodeBatches('t', 0, batch(0, -1, ['a', 'b'], LOG_APPEND_TIME), null, 0)
    expect(d.records.map((r) => r.timestamp)).toEqual([1001, 1001])
  })

  it('drops a transaction whose abort marker lies before the range, and keeps that producer later', () => {
    const set = Buffer.concat([
      batch(0, 7, ['aborted']),
      marker(1, 7, 0),
      batch(2, 7, ['committed']),
      marker(3, 7, 1),
    ])
    const d = decodeBatches('t', 0, set, [{ producerId: 7n, firstOffset: 0n }], 2)
    expect(values(d)).toEqual(['committed'])
    expect(d.next).toBe(4)
  })

  it('decodes keys, null values, headers (last of a repeated name, null skipped) and long varints', () => {
    const big = Buffer.alloc(20_000, 7)
    const headers = new Map<Buffer, Buffer>([
      [Buffer.from('a'), Buffer.from('1')],
      [Buffer.from('a'), Buffer.from('2')],
      [Buffer.from('b'), null as unknown as Buffer],
    ])
    const many = Array.from({ length: 300 }, (_, i) => `v${i}`)
    const set = batch(100, -1, [big, null, ...many], 0, { keys: ['k0', null], headers: [headers] })
    const d = decodeBatches('t', 0, set, null, 0)
    expect(d.records).toHaveLength(302)
    expect(d.records[0]!.key!.toString()).toBe('k0')
    expect(d.records[0]!.value!.equals(big)).toBe(true)
    expect(Object.keys(d.records[0]!.headers)).toEqual(['a'])
    expect(d.records[0]!.headers.a!.toString()).toBe('2')
    expect(d.records[1]).toMatchObject({ offset: 101, key: null, value: null, timestamp: 1001 })
    expect(d.records[301]).toMatchObject({ offset: 401, timestamp: 1301 })
    expect(d.records[301]!.value!.toString()).toBe('v299')
    expect(d.next).toBe(402)
  })

  it('reads a compressed batch', () => {
    const d = decodeBatches('t', 0, batch(5, -1, ['x', 'y'], 0, { compression: 'gzip' }), null, 0)
    expect(values(d)).toEqual(['x', 'y'])
    expect(d.records.map((r) => r.offset)).toEqual([5, 6])
  })

  it('leaves a batch cut short at the end of the set for the next fetch', () => {
    const whole = Buffer.concat([batch(0, -1, ['a']), batch(1, -1, ['b'])])
    const d = decodeBatches('t', 0, whole.subarray(0, whole.length - 3), null, 0)
    expect(values(d)).toEqual(['a'])
    expect(d).toMatchObject({ next: 1, batches: 1 })
    expect(decodeBatches('t', 0, whole.subarray(0, 20), null, 0)).toMatchObject({
      records: [],
      batches: 0,
      next: 0,
    })
  })

  it('refuses a batch of an old message format, and a record running past its batch', () => {
    const old = batch(0, -1, ['a'])
    old.writeInt8(1, 16)
    expect(() => decodeBatches('t', 3, old, null, 0)).toThrow(
      /t\[3\] holds a batch in the message format of magic 1/,
    )
    const bad = batch(0, -1, ['abc'])
    bad.writeInt32BE(bad.readInt32BE(8) - 2, 8)
    expect(() => decodeBatches('t', 0, bad.subarray(0, bad.length - 2), null, 0)).toThrow(/malformed/)
  })
})

describe('headers', () => {
  it('go out as Buffer pairs', () => {
    const map = fromHeaders({ x: Buffer.from('y') })!
    expect([...map].map(([k, v]) => [k.toString(), v.toString()])).toEqual([['x', 'y']])
    expect(fromHeaders({})).toBeUndefined()
  })
})
