/**
 * Fetched record batches as the contract's records, read committed: the records of aborted
 * transactions and control records are dropped by the Java client's rule. The batches are decoded
 * straight from the fetch response's bytes (Kafka's RecordBatch format, magic 2), keys and values
 * as views of them. It does not fetch.
 */
import type { Headers, RawRecord } from '@mephisto/core'
import { BrokerError } from '@mephisto/core'
import { compressionsAlgorithmsByBitmask } from '@platformatic/kafka'

/** Record batch attribute bits (Kafka's RecordBatch). */
const COMPRESSION = 0x07
const LOG_APPEND_TIME = 0x08
const TRANSACTIONAL = 0x10
const CONTROL = 0x20

/** A batch's header: base offset and length, then 49 bytes up to and including the record count. */
const LOG_OVERHEAD = 12
const HEADER_SIZE = 61
/** Where each header field starts, from the batch's first byte. */
const MAGIC = 16
const ATTRIBUTES = 21
const LAST_OFFSET_DELTA = 23
const BASE_TIMESTAMP = 27
const MAX_TIMESTAMP = 35
const PRODUCER_ID = 43
const RECORD_COUNT = 57

/** What a record without headers carries: one shared, frozen object (as the other transports do). */
const NO_HEADERS: Headers = Object.freeze({}) as Headers

/** Where an aborted transaction starts, as a fetch response lists it. */
export interface AbortedTransaction {
  producerId: bigint
  firstOffset: bigint
}

/** The records of a partition's fetched batches in one offset range, and where reading goes on. */
export interface Decoded {
  records: RawRecord[]
  /** The offset after the last batch seen (control batches and dropped records included). */
  next: number
  /** Whole batches in the record set (0: nothing readable at this position yet). */
  batches: number
}

/**
 * The records of `recordSet` (one partition's record batches from a fetch response, in offset
 * order) at offsets `from` (inclusive) to `to` (exclusive), without aborted transactional records
 * or control records. A batch cut short at the end of the set (the response's byte limit) is left
 * for the next fetch.
 *
 * With read-committed isolation the broker still returns aborted transactional records and lists
 * where each aborted transaction starts; the client drops a transactional batch of a producer from
 * its transaction's first offset up to that producer's abort marker. The list is not in first-offset
 * order and several transactions may start before one batch, so it is sorted and consumed up to each
 * batch's last offset (the Java client's `Fetcher` rule). A fetch returns whole batches, so the first
 * may start before `from`.
 */
export function decodeBatches(
  topic: string,
  partition: number,
  recordSet: Buffer,
  aborted: readonly AbortedTransaction[] | null | undefined,
  from: number,
  to = Number.POSITIVE_INFINITY,
): Decoded {
  const pending =
    aborted && aborted.length > 0
      ? [...aborted].sort((a, b) => (a.firstOffset < b.firstOffset ? -1 : 1))
      : undefined
  const abortedProducers = new Set<bigint>()
  const records: RawRecord[] = []
  let next = from
  let batches = 0
  let at = 0
  const end = recordSet.length
  while (end - at >= LOG_OVERHEAD) {
    const size = LOG_OVERHEAD + recordSet.readInt32BE(at + 8)
    if (end - at < size) break
    const batch = at
    at += size
    batches++
    const magic = recordSet.readInt8(batch + MAGIC)
    if (magic !== 2) {
      throw new BrokerError(
        `${topic}[${partition}] holds a batch in the message format of magic ${magic}; ` +
          'only format v2 (Kafka 0.11 and later) is read. Convert the topic (or produce it again) with a newer client.',
      )
    }
    const first = int64(recordSet, batch)
    const last = first + recordSet.readInt32BE(batch + LAST_OFFSET_DELTA)
    if (first >= to) break
    const attributes = recordSet.readInt16BE(batch + ATTRIBUTES)
    const transactional = (attributes & (TRANSACTIONAL | CONTROL)) !== 0
    const producerId = transactional ? recordSet.readBigInt64BE(batch + PRODUCER_ID) : -1n
    if (pending !== undefined) {
      while (pending.length > 0 && pending[0]!.firstOffset <= BigInt(last)) {
        abortedProducers.add(pending.shift()!.producerId)
      }
    }
    next = Math.max(next, Math.min(last + 1, to))
    // Control batches before `from` still count: an abort marker ends its producer's transaction.
    if ((attributes & CONTROL) === 0 && last < from) continue
    let body = recordSet
    let pos = batch + HEADER_SIZE
    let bodyEnd = at
    const compression = attributes & COMPRESSION
    if (compression !== 0) {
      const algorithm = compressionsAlgorithmsByBitmask[compression]
      if (algorithm === undefined) {
        throw new BrokerError(
          `${topic}[${partition}] holds a batch compressed with codec ${compression}, which @platformatic/kafka cannot read.`,
        )
      }
      body = algorithm.decompressSync(recordSet.subarray(pos, at))
      pos = 0
      bodyEnd = body.length
    }
    if ((attributes & CONTROL) !== 0) {
      if (isAbortMarker(body, pos, bodyEnd)) abortedProducers.delete(producerId)
      continue
    }
    if ((attributes & TRANSACTIONAL) !== 0 && abortedProducers.has(producerId)) continue
    const count = recordSet.readInt32BE(batch + RECORD_COUNT)
    const logAppendTime = (attributes & LOG_APPEND_TIME) !== 0
    const maxTimestamp = int64(recordSet, batch + MAX_TIMESTAMP)
    const baseTimestamp = int64(recordSet, batch + BASE_TIMESTAMP)
    const cursor = new Cursor(body, pos, bodyEnd)
    for (let i = 0; i < count; i++) {
      const recordEnd = cursor.varint() + cursor.pos
      cursor.pos++ // attributes, unused
      const timestampDelta = cursor.varlong()
      const offset = first + cursor.varint()
      if (offset >= to) break
      if (offset < from) {
        cursor.pos = recordEnd
        continue
      }
      const key = cursor.bytes()
      const value = cursor.bytes()
      const headerCount = cursor.varint()
      let headers = NO_HEADERS
      for (let h = 0; h < headerCount; h++) {
        const name = cursor.bytes()
        const headerValue = cursor.bytes()
        if (name === null || headerValue === null) continue
        if (headers === NO_HEADERS) headers = {}
        headers[name.toString('utf8')] = headerValue
      }
      cursor.pos = recordEnd
      records.push({
        topic,
        partition,
        offset,
        timestamp: logAppendTime ? maxTimestamp : baseTimestamp + timestampDelta,
        key,
        value,
        headers,
      })
    }
  }
  return { records, next, batches }
}

/** A signed 64-bit big-endian integer as a number (offsets and timestamps stay far below 2^53). */
function int64(buffer: Buffer, at: number): number {
  return buffer.readInt32BE(at) * 0x1_0000_0000 + buffer.readUInt32BE(at + 4)
}

/** Reads a record's varints and byte strings (Kafka's zigzag encoding), checking bounds. */
class Cursor {
  constructor(
    private readonly buffer: Buffer,
    public pos: number,
    private readonly end: number,
  ) {}

  varint(): number {
    let raw = 0
    let shift = 0
    let b: number
    do {
      if (this.pos >= this.end || shift > 28) this.corrupt()
      b = this.buffer[this.pos++]!
      raw |= (b & 0x7f) << shift
      shift += 7
    } while (b & 0x80)
    return (raw >>> 1) ^ -(raw & 1)
  }

  /** A 64-bit zigzag varint as a number: exact within 2^53, enough for a timestamp delta. */
  varlong(): number {
    let raw = 0
    let scale = 1
    let b: number
    do {
      if (this.pos >= this.end || scale > 2 ** 63) this.corrupt()
      b = this.buffer[this.pos++]!
      raw += (b & 0x7f) * scale
      scale *= 128
    } while (b & 0x80)
    return raw % 2 === 0 ? raw / 2 : -(raw + 1) / 2
  }

  /** A length-prefixed byte string; a negative length is null. */
  bytes(): Buffer | null {
    const length = this.varint()
    if (length < 0) return null
    const start = this.pos
    this.pos += length
    if (this.pos > this.end) this.corrupt()
    return this.buffer.subarray(start, this.pos)
  }

  private corrupt(): never {
    throw new BrokerError(
      `A fetched record batch is malformed (a record runs past the end of its batch at byte ${this.pos}).`,
    )
  }
}

/** A control record says ABORT (type 0) or COMMIT (type 1) in its key: version, type. */
function isAbortMarker(body: Buffer, pos: number, end: number): boolean {
  const cursor = new Cursor(body, pos, end)
  cursor.varint() // length
  cursor.pos++ // attributes
  cursor.varlong() // timestamp delta
  cursor.varint() // offset delta
  const key = cursor.bytes()
  return key !== null && key.length >= 4 && key.readInt16BE(2) === 0
}

/** Contract headers as platformatic sends them: Buffer names and values. */
export function fromHeaders(headers: Headers | undefined): Map<Buffer, Buffer> | undefined {
  if (headers === undefined) return undefined
  const names = Object.keys(headers)
  if (names.length === 0) return undefined
  const map = new Map<Buffer, Buffer>()
  for (const name of names) map.set(Buffer.from(name, 'utf8'), headers[name]!)
  return map
}
