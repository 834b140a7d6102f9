import type { TopicPartition } from '../base/topicPartition.js'

export type { TopicPartition }
/**
 * The contract between the stream runtime and a broker. Implemented here by the in-process
 * `memory://` broker and `kafka://` (kafkajs), and by transport packages on other Kafka clients
 * (`@mephisto/transport-platformatic`). The runtime relies only on what is written here; one
 * conformance suite (test/transportConformance.ts) runs against each.
 */

export type Headers = Record<string, Buffer>

/** A record as the broker holds it: raw bytes, not yet decoded. */
export interface RawRecord {
  topic: string
  partition: number
  offset: number
  /** Milliseconds since the epoch (CreateTime). */
  timestamp: number
  key: Buffer | null
  /** `null` is a tombstone (compacted topics delete the key). */
  value: Buffer | null
  headers: Headers
}

/** A record to produce. Without `partition` the transport's partitioner picks one from the key. */
export interface OutgoingRecord {
  topic: string
  partition?: number
  key: Buffer | null
  value: Buffer | null
  headers?: Headers
  timestamp?: number
}

export interface RecordMetadata {
  topic: string
  partition: number
  offset: number
}

export interface TopicSpec {
  name: string
  partitions: number
  replicas?: number
  compacted?: boolean
  retentionMs?: number
  /** Extra topic configs, passed to the broker as they are (`cleanup.policy`, ...). */
  config?: Record<string, string>
}

export interface CommitOffset extends TopicPartition {
  /** The next offset to read: the last processed offset + 1. */
  offset: number
}

/** What the consumer hands to the runtime. Each method may be async; the consumer awaits it. */
export interface ConsumerHandlers {
  /**
   * Called with newly assigned partitions, before any of their records are delivered.
   * The runtime answers with where to start each partition (its committed offset is the
   * default; return nothing to use it).
   */
  onAssign(partitions: TopicPartition[]): Promise<void>
  /**
   * Called before partitions are taken away (rebalance or stop). When it resolves the runtime
   * has drained, flushed and committed them; no record of theirs is delivered afterwards.
   */
  onRevoke(partitions: TopicPartition[]): Promise<void>
  /**
   * Records of one partition, in offset order. The consumer does not deliver the next batch
   * of the same partition before this resolves: resolving late is how the runtime applies
   * backpressure. Batches of different partitions may be delivered concurrently.
   */
  onBatch(batch: RecordBatch): Promise<void>
  /**
   * The consumer is gone for good (a handler threw, or the client gave up): no more records will
   * come and nothing more can be committed. Called once, not for `stop()` or `abort()`.
   */
  onLost?(error: unknown): void
}

export interface RecordBatch extends TopicPartition {
  records: RawRecord[]
  /** The partition's end offset (high watermark) when the batch was fetched. */
  highWatermark: number
}

export interface ConsumerOptions {
  groupId: string
  /** Where to start a partition that has no committed offset. Default: earliest. */
  fromBeginning?: boolean
  /** Most records in one batch. */
  maxBatchSize?: number
  /**
   * Standby copies of each partition number the group should place on other members (the largest
   * `standbyReplicas` of the app's tables). A transport whose assignor places them reports this
   * member's share through `standbys()`.
   */
  standbyReplicas?: number
}

/** A group member. One per running app. */
export interface TransportConsumer {
  /**
   * Joins the group subscribed to `topics` and starts delivering. Resolves once the first
   * assignment has been handled (its `onAssign` resolved). Topics must exist.
   */
  start(topics: string[], handlers: ConsumerHandlers): Promise<void>
  /** Commits offsets for the group. Resolves once the broker has stored them. */
  commit(offsets: CommitOffset[]): Promise<void>
  /**
   * Committed offsets of this group for the given partitions (-1 where none). With `stable`,
   * offsets a just-committed transaction is still applying are waited for (exactly-once, after
   * fencing the previous owner); a transport whose commits apply at once may ignore it.
   */
  committed(partitions: TopicPartition[], options?: { stable?: boolean }): Promise<CommitOffset[]>
  /**
   * Where the next records of these (assigned) partitions start. Exactly-once calls it from
   * `onAssign`, after fencing the previous owner, with the committed offsets read then: what a
   * client resolved before the fence may predate the previous owner's last transaction.
   * Optional: a transport without zombies (the memory broker) need not have it.
   */
  seek?(offsets: CommitOffset[]): void
  /** Stop fetching these partitions until resumed (records already delivered are unaffected). */
  pause(partitions: TopicPartition[]): void
  resume(partitions: TopicPartition[]): void
  /** Currently assigned partitions. */
  assignment(): TopicPartition[]
  /**
   * The partition numbers this member keeps standby copies of under the current assignment, or
   * undefined when the transport does not place standbys (then every member follows every
   * partition it does not own). Optional.
   */
  standbys?(): number[] | undefined
  /**
   * Exactly-once with one transactional producer per worker (KIP-447). Registers a transactional
   * producer under `transactionalId` completed with this member's stable instance id (its static
   * membership id; something unique when it has none), fencing an older one with that id as
   * `Transport.transactionalProducer` does, so a worker restarted after a crash aborts its own
   * open transaction at once instead of waiting out the transaction timeout. Its `commit` sends the input offsets with this
   * consumer's group membership at that moment (generation and member id): a member that lost its
   * partitions in a rebalance is then fenced by the group, whatever its transactional id, and its
   * commit rejects with a `TransactionError` of code `FENCED`. A transport that has this must also
   * honour `committed(…, { stable: true })` by waiting for offsets of transactions still open
   * (OffsetFetch with `require_stable`). When present, the runtime uses one such producer per
   * worker instead of one `Transport.transactionalProducer` per partition number. Optional.
   */
  transactionalProducer?(transactionalId: string): Promise<TransactionalProducer>
  /**
   * Leaves the group: revokes every partition (calling `onRevoke`) and stops fetching.
   * Idempotent.
   */
  stop(): Promise<void>
  /**
   * Leaves without revoking: nothing is drained or committed (a crash). Idempotent.
   */
  abort(): Promise<void>
}

export interface ProducerOptions {
  /** Most records buffered before `send` waits (backpressure). */
  maxBufferedRecords?: number
  /** How long a record may wait in the buffer before it is sent (kafkajs has no linger). */
  lingerMs?: number
  /** Flush when this many records are buffered. */
  batchSize?: number
}

export interface TransportProducer {
  /** Buffers the record; resolves once it is buffered (waits when the buffer is full). */
  send(record: OutgoingRecord): Promise<void>
  /** Sends the record and resolves with its offset once the broker acknowledged it. */
  sendAndWait(record: OutgoingRecord): Promise<RecordMetadata>
  /**
   * Sends every buffered record and resolves once all are acknowledged; rejects if any failed.
   * Returns the highest offset written per partition since the previous flush.
   */
  flush(): Promise<RecordMetadata[]>
  /** Records buffered and not yet acknowledged. */
  pending(): number
  close(): Promise<void>
  /** Drops the buffer without sending (a crash). */
  abort(): Promise<void>
}

export interface PartitionRange {
  partition: number
  /** First offset to read (inclusive). */
  from: number
  /** Stop before this offset (exclusive): usually the high watermark read before starting. */
  to: number
}

export interface TransportAdmin {
  /** Creates the topics that do not exist. Existing topics are left alone. */
  ensureTopics(topics: TopicSpec[]): Promise<void>
  /** Partition count of a topic, or undefined when it does not exist. */
  partitionCount(topic: string): Promise<number | undefined>
  /** The end offset (high watermark) of each partition. */
  endOffsets(topic: string): Promise<Map<number, number>>
  /** The first available offset of each partition (after retention or compaction). */
  startOffsets(topic: string): Promise<Map<number, number>>
  /** Committed offsets of a group for a topic's partitions (-1 where none). */
  groupOffsets(groupId: string, topic: string): Promise<Map<number, number>>
  /** Sets a group's committed offsets (the group must have no members). */
  setGroupOffsets(groupId: string, offsets: CommitOffset[]): Promise<void>
  deleteTopics(topics: string[]): Promise<void>
  listTopics(): Promise<string[]>
}

/**
 * A transactional producer (exactly-once). Kafka's model: a transactional id names a producer
 * across restarts; registering a new producer with the same id fences the older one (its open
 * transaction is aborted and its later writes are refused), so a worker that lost its partitions
 * but does not know it yet cannot write for them.
 */
export interface TransactionalProducer {
  readonly transactionalId: string
  /**
   * Writes `records` and commits `offsets` for the consumer group `groupId`, all in one
   * transaction: read-committed readers see all of it or none of it. Rejects with a
   * `TransactionError` (code `FENCED` when a newer producer holds the id); after a rejection
   * nothing of the transaction is visible, and the producer must not be used again.
   */
  commit(records: OutgoingRecord[], offsets: CommitOffset[], groupId: string): Promise<RecordMetadata[]>
  close(): Promise<void>
}

/** A broker connection: one admin, any number of producers and consumers. */
export interface Transport {
  /** A short name of the transport: `memory`, `kafka`, or a plug-in transport's own. */
  readonly kind: string
  /** A display form of where it connects, without credentials. */
  readonly url: string
  readonly admin: TransportAdmin
  connect(): Promise<void>
  producer(options?: ProducerOptions): TransportProducer
  consumer(options: ConsumerOptions): TransportConsumer
  /**
   * Registers a transactional producer under `transactionalId`, fencing any older one with the
   * same id: resolves once that one's open transaction (if any) is aborted, so what a reader
   * reads next is exactly what was committed. Consumers of this transport read committed data only.
   */
  transactionalProducer(transactionalId: string): Promise<TransactionalProducer>
  /**
   * Reads the given offset ranges of a topic outside any consumer group (table recovery,
   * standby replicas, tools), calling `onRecords` in offset order per partition.
   * Resolves once every range has been read to its `to`.
   */
  read(
    topic: string,
    ranges: PartitionRange[],
    onRecords: (records: RawRecord[]) => void | Promise<void>,
  ): Promise<void>
  close(): Promise<void>
}
