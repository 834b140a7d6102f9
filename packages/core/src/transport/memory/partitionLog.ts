/**
 * The memory broker's storage: a topic's partitioned logs, appending, reading by offset and
 * compaction. It does not deliver records (fetcher.ts does) and knows nothing of consumer groups;
 * it only wakes the waiters a caught-up reader left on a log.
 */
import { BrokerError } from '../../base/errors.js'
import { sortTopicPartitions } from '../../base/topicPartition.js'
import type { Headers, RawRecord, TopicPartition, TopicSpec } from '../transport.js'

/** A compacted partition compacts itself once it holds more records than this... */
const AUTO_COMPACT_MIN_RECORDS = 1000
/** ...and has grown this many times over since the last compaction (amortised O(1) per append). */
const AUTO_COMPACT_GROWTH = 2

/**
 * Shared by every record appended without headers: one object less per record halves what an
 * append allocates. Frozen, as records are read-only anyway.
 */
const NO_HEADERS: Headers = Object.freeze({})

/** A record to append; `OutgoingRecord` fits (its topic and partition are ignored). */
export interface AppendRecord {
  key: Buffer | null
  value: Buffer | null
  headers?: Headers
  timestamp?: number
}

/** A reader caught up with a log, to be woken by the next append. */
export interface LogWaiter {
  wake(): void
}

/** One partition's log. Offsets are kept through compaction, so the log may become sparse. */
export class PartitionLog {
  records: RawRecord[] = []
  /** The first available offset: the first record's, or `endOffset` when the log is empty. */
  startOffset = 0
  /** The next offset to be written (the high watermark). */
  endOffset = 0
  /** While `records[i].offset === startOffset + i`, lookups are O(1); after compaction they bisect. */
  dense = true
  /** Records held right after the last compaction, to decide when to compact again. */
  sizeAfterCompaction = 0
  /** Readers caught up with this log, woken by the next append. */
  readonly waiters = new Set<LogWaiter>()

  constructor(
    readonly topic: string,
    readonly partition: number,
  ) {}

  /** Index of the first record whose offset is `>= offset`. */
  indexOf(offset: number): number {
    const records = this.records
    if (this.dense) {
      const i = offset - this.startOffset
      return i <= 0 ? 0 : Math.min(i, records.length)
    }
    let lo = 0
    let hi = records.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (records[mid]!.offset < offset) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  /** Up to `max` records with offsets in `[from, to)`, in offset order. */
  read(from: number, to: number, max: number): RawRecord[] {
    const records = this.records
    const first = this.indexOf(from)
    let last = first + max
    if (last > records.length) last = records.length
    if (to < this.endOffset) {
      const bound = this.indexOf(to)
      if (bound < last) last = bound
    }
    return first < last ? records.slice(first, last) : []
  }

  /** Writes the record at the end offset and returns that offset. Wakes no one: see `Topic.append`. */
  append(record: AppendRecord, timestamp: number): number {
    const offset = this.endOffset
    const headers = record.headers
    this.records.push({
      topic: this.topic,
      partition: this.partition,
      offset,
      timestamp,
      key: record.key,
      value: record.value,
      // A copy: Kafka serializes headers at send time, so later changes by the caller do not show.
      headers: headers === undefined ? NO_HEADERS : { ...headers },
    })
    this.endOffset = offset + 1
    return offset
  }

  /** True once the log has grown enough since its last compaction to compact again. */
  outgrewCompaction(): boolean {
    const size = this.records.length
    return size > AUTO_COMPACT_MIN_RECORDS && size >= AUTO_COMPACT_GROWTH * this.sizeAfterCompaction
  }

  /**
   * Keeps the latest record per key at its offset. A tombstone (null value) is kept while it is
   * the latest for its key, unless its timestamp is before `tombstoneHorizon`.
   */
  compact(tombstoneHorizon: number): void {
    const records = this.records
    const seen = new Set<string>()
    const kept: RawRecord[] = []
    // Newest first: the first record seen for a key is its latest.
    for (let i = records.length - 1; i >= 0; i--) {
      const record = records[i]!
      if (record.key !== null) {
        // latin1 maps bytes 1:1 to chars, so distinct keys stay distinct.
        const key = record.key.toString('latin1')
        if (seen.has(key)) continue
        seen.add(key)
        if (record.value === null && record.timestamp < tombstoneHorizon) continue
      }
      kept.push(record)
    }
    kept.reverse()
    this.records = kept
    this.startOffset = kept[0]?.offset ?? this.endOffset
    this.dense = kept.length === this.endOffset - this.startOffset
    this.sizeAfterCompaction = kept.length
  }

  wakeWaiters(): void {
    // Waking only resolves promises: fetchers run on a later microtask, never inside `append`.
    for (const waiter of this.waiters) waiter.wake()
    this.waiters.clear()
  }
}

/** A topic: its partitions' logs and its cleanup policy. */
export class Topic {
  readonly partitions: PartitionLog[]
  readonly compacted: boolean
  /** `delete.retention.ms`: how long a tombstone survives compaction. Unset: forever. */
  readonly tombstoneRetentionMs: number | undefined

  constructor(
    readonly spec: TopicSpec,
    /** The broker's clock, to age tombstones. */
    private readonly now: () => number,
  ) {
    this.partitions = Array.from({ length: spec.partitions }, (_, p) => new PartitionLog(spec.name, p))
    const policy = spec.config?.['cleanup.policy']
    this.compacted = spec.compacted === true || policy?.split(',').includes('compact') === true
    const retention = spec.config?.['delete.retention.ms']
    this.tombstoneRetentionMs = retention === undefined ? undefined : Number(retention)
  }

  /**
   * Appends a record to a partition and returns its offset, compacting the log when it has grown
   * enough, then wakes the log's waiters. A compacted topic refuses records without a key.
   */
  append(partition: number, record: AppendRecord, timestamp: number): number {
    const name = this.spec.name
    const log = this.partitions[partition]
    if (log === undefined) {
      throw new BrokerError(
        `Partition ${partition} of topic "${name}" does not exist: it has ${this.partitions.length} ` +
          `partition(s), numbered from 0.`,
      )
    }
    if (this.compacted && record.key === null) {
      throw new BrokerError(
        `Topic "${name}" is compacted and refuses records without a key (compaction keeps the ` +
          'latest record per key). Give the record a key.',
      )
    }
    const offset = log.append(record, timestamp)
    if (this.compacted && log.outgrewCompaction()) this.compactLog(log)
    if (log.waiters.size > 0) log.wakeWaiters()
    return offset
  }

  /** Compacts every partition now; refuses a topic that is not compacted. */
  compact(): void {
    if (!this.compacted) {
      throw new BrokerError(
        `Topic "${this.spec.name}" is not compacted; create it with compacted: true (cleanup.policy=compact).`,
      )
    }
    for (const log of this.partitions) this.compactLog(log)
  }

  private compactLog(log: PartitionLog): void {
    const retention = this.tombstoneRetentionMs
    log.compact(retention === undefined ? -Infinity : this.now() - retention)
  }
}

/** The partitions of these logs, by topic then partition. */
export function sortedPartitions(logs: Iterable<PartitionLog>): TopicPartition[] {
  return sortTopicPartitions(Array.from(logs, (log) => ({ topic: log.topic, partition: log.partition })))
}
