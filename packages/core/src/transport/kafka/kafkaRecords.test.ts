import type { KafkaMessage } from 'kafkajs'
import { describe, expect, it } from 'vitest'
import { StreamEvent } from '../../streams/event.js'
import { toHeaders, toRawRecord } from './kafkaRecords.js'

const message = (over: Partial<KafkaMessage> = {}): KafkaMessage =>
  ({
    offset: '42',
    timestamp: '1732841234567',
    key: Buffer.from('k'),
    value: Buffer.from('{"a":1}'),
    attributes: 0,
    size: 0,
    headers: {},
    ...over,
  }) as unknown as KafkaMessage

describe('toRawRecord', () => {
  it('converts offsets and timestamps from kafkajs strings to numbers', () => {
    const r = toRawRecord('hits', 3, message())
    expect(r.topic).toBe('hits')
    expect(r.partition).toBe(3)
    expect(r.offset).toBe(42)
    expect(r.timestamp).toBe(1732841234567)
    // Read again: the same number (parsed once, then kept).
    expect(r.timestamp).toBe(1732841234567)
    expect(r.key?.toString()).toBe('k')
    expect(r.value?.toString()).toBe('{"a":1}')
  })

  it('keeps null keys and tombstones, and shares one empty headers object', () => {
    const a = toRawRecord('t', 0, message({ key: null, value: null }))
    const b = toRawRecord('t', 0, message({ headers: undefined }))
    expect(a.key).toBeNull()
    expect(a.value).toBeNull()
    expect(a.headers).toBe(b.headers)
    expect(Object.isFrozen(a.headers)).toBe(true)
  })

  it('takes the last value of a repeated header, as Java lastHeader does', () => {
    const h = toHeaders({ trace: [Buffer.from('1'), Buffer.from('2')], n: 'x', gone: undefined })
    expect(h.trace?.toString()).toBe('2')
    expect(h.n?.toString()).toBe('x')
    expect('gone' in h).toBe(false)
  })

  it('an event over a record reads the timestamp through to it', () => {
    const r = toRawRecord('hits', 0, message({ timestamp: '1000' }))
    const e = new StreamEvent(
      'k',
      1,
      r.headers,
      r.topic,
      r.partition,
      r.offset,
      undefined,
      undefined,
      undefined,
      r,
    )
    expect(e.timestamp).toBe(1000)
    expect(e.withValue(2).timestamp).toBe(1000)
    const own = new StreamEvent('k', 1, {}, 'c', 0, 0, 5, undefined, undefined)
    expect(own.timestamp).toBe(5)
  })
})
