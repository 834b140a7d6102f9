/**
 * kafkajs messages as the transport contract's records and headers. It does not decode keys or
 * values, and does not filter records.
 */
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

/**
 * A kafkajs message as a {@link RawRecord}. kafkajs hands offsets and timestamps over as decimal
 * strings; the timestamp is parsed when first read, since most agents never look at it and parsing
 * every one cost a few percent of a stateless agent's throughput.
 */
class KafkaRawRecord implements RawRecord {
  readonly offset: number
  readonly key: Buffer | null
  readonly value: Buffer | null
  readonly headers: Headers
  private ts: number | string
  constructor(
    readonly topic: string,
    readonly partition: number,
    m: KafkaMessage,
  ) {
    this.offset = Number(m.offset)
    this.key = m.key ?? null
    this.value = m.value
    this.headers = toHeaders(m.headers)
    this.ts = m.timestamp
  }

  get timestamp(): number {
    if (typeof this.ts === 'string') this.ts = Number(this.ts)
    return this.ts
  }
}

export function toRawRecord(topic: string, partition: number, m: KafkaMessage): RawRecord {
  return new KafkaRawRecord(topic, partition, m)
}
