import type { IHeaders, KafkaMessage } from 'kafkajs'
import type { Headers, RawRecord } from '../transport.js'

/** What a record without headers carries: one shared, frozen object (as the memory broker does). */
const NO_HEADERS: Headers = Object.freeze({}) as Headers

/**
 * kafkajs headers as the transport contract has them: one Buffer per name. A name repeated in a
 * record keeps its last value, as Java's `Headers.lastHeader` reads it.
 */
export function toHeaders(headers: IHeaders | Record<string, unknown> | undefined): Headers {
  let result: Headers | undefined
  if (headers === undefined) return NO_HEADERS
  for (const name in headers) {
    let value = headers[name]
    if (Array.isArray(value)) value = value[value.length - 1]
    if (value === undefined || value === null) continue
    result ??= {}
    result[name] = Buffer.isBuffer(value) ? value : Buffer.from(String(value))
  }
  return result ?? NO_HEADERS
}

export function toRawRecord(topic: string, partition: number, m: KafkaMessage): RawRecord {
  return {
    topic,
    partition,
    offset: Number(m.offset),
    timestamp: Number(m.timestamp),
    key: m.key ?? null,
    value: m.value,
    headers: toHeaders(m.headers),
  }
}
