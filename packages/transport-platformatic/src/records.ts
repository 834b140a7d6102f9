/**
 * Fetched record batches as the contract's records, read committed: the records of aborted
 * transactions and control records are dropped by the Java client's rule. It does not fetch.
 */
import type { Headers, RawRecord } from '@mephisto/core'
import type { RecordsBatch } from '@platformatic/kafka'

/** Record batch attribute bits (Kafka's RecordBatch). */
const LOG_APPEND_TIME = 0x08
const TRANSACTIONAL = 0x10
const CONTROL = 0x20

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
}

/**
 * The records of `batches` (one partition's fetch response, in offset order) at offsets `from`
 * (inclusive) to `to` (exclusive), without aborted transactional records or control records.
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
  batches: readonly RecordsBatch[],
  aborted: readonly AbortedTransaction[] | null | undefined,
  from: number,
  to = Number.POSITIVE_INFINITY,
): Decoded {
  const pending = [...(aborted ?? [])].sort((a, b) => (a.firstOffset < b.firstOffset ? -1 : 1))
  const abortedProducers = new Set<bigint>()
  const records: RawRecord[] = []
  let next = from
  for (const batch of batches) {
    const first = Number(batch.firstOffset)
    const last = first + batch.lastOffsetDelta
    if (first >= to) break
    while (pending.length > 0 && pending[0]!.firstOffset <= BigInt(last)) {
      abortedProducers.add(pending.shift()!.producerId)
    }
    next = Math.max(next, Math.min(last + 1, to))
    if ((batch.attributes & CONTROL) !== 0) {
      if (isAbortMarker(batch)) abortedProducers.delete(batch.producerId)
      continue
    }
    if ((batch.attributes & TRANSACTIONAL) !== 0 && abortedProducers.has(batch.producerId)) continue
    const logAppendTime = (batch.attributes & LOG_APPEND_TIME) !== 0
    for (const r of batch.records) {
      const offset = first + r.offsetDelta
      if (offset < from) continue
      if (offset >= to) break
      records.push({
        topic,
        partition,
        offset,
        timestamp: Number(logAppendTime ? batch.maxTimestamp : batch.firstTimestamp + r.timestampDelta),
        key: r.key ?? null,
        value: r.value ?? null,
        headers: toHeaders(r.headers),
      })
    }
  }
  return { records, next }
}

/** A control batch's record says ABORT (type 0) or COMMIT (type 1) in its key: version, type. */
function isAbortMarker(batch: RecordsBatch): boolean {
  const key = batch.records[0]?.key
  return key !== undefined && key !== null && key.length >= 4 && key.readInt16BE(2) === 0
}

/** Record headers as the contract has them: one Buffer per name; a repeated name keeps its last value. */
export function toHeaders(pairs: readonly [Buffer | null, Buffer | null][] | undefined): Headers {
  if (pairs === undefined || pairs.length === 0) return NO_HEADERS
  let result: Headers | undefined
  for (const [name, value] of pairs) {
    if (name === null || value === null || value === undefined) continue
    result ??= {}
    result[name.toString('utf8')] = value
  }
  return result ?? NO_HEADERS
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
