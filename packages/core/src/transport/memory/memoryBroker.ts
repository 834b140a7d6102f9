/**
 * The in-process Kafka itself: its topics, its consumer groups and transactions, and the
 * process-wide registry of named brokers. It wires the parts together: storage, delivery,
 * members, rebalances and fencing live in partitionLog, fetcher, groupMember, consumerGroup and
 * transactions.
 */
import { BrokerError, ConfigurationError } from '../../base/errors.js'
import type { CommitOffset, ConsumerHandlers, RawRecord, TopicSpec } from '../transport.js'
import { Group } from './consumerGroup.js'
import { DEFAULT_MAX_BATCH_SIZE, type GroupMember, type JoinOptions, Member } from './groupMember.js'
import { type AppendRecord, type PartitionLog, Topic } from './partitionLog.js'
import { TransactionCoordinator } from './transactions.js'

export type { GroupMember, JoinOptions } from './groupMember.js'
export type { AppendRecord } from './partitionLog.js'

export interface MemoryBrokerOptions {
  /** The `<name>` of `memory://<name>`. Default: `'private'`. */
  name?: string
  /**
   * The broker's clock: the timestamp of appended records that carry none, and the age of
   * tombstones for `delete.retention.ms`. Default: `Date.now`.
   */
  now?: () => number
  /**
   * Consumers offer one transactional producer per member whose commits the group fences
   * (KIP-447, `TransportConsumer.transactionalProducer`), as `@mephisto/transport-platformatic`
   * does on Kafka. Default false: one producer per partition number, as with kafkajs.
   */
  groupTransactions?: boolean
}

let privateBrokers = 0

/**
 * An in-process Kafka: topics of partitioned logs, offsets, compaction and consumer groups with
 * co-partitioned assignment and rebalances. `memory://` transports and the testkit run on it.
 *
 * It never uses timers: delivery is driven by appends and handler completions only, so it runs
 * the same under a fake clock. Records handed to consumers are the broker's own objects: treat
 * them (and their buffers and headers) as read-only.
 */
export class MemoryBroker {
  readonly name: string
  readonly now: () => number
  readonly groupTransactions: boolean
  private readonly topics = new Map<string, Topic>()
  private readonly groups = new Map<string, Group>()
  private readonly transactions = new TransactionCoordinator()
  private memberIds = 0

  constructor(options: MemoryBrokerOptions = {}) {
    this.name = options.name ?? `private-${++privateBrokers}`
    this.now = options.now ?? Date.now
    this.groupTransactions = options.groupTransactions ?? false
  }

  // ---- topics -------------------------------------------------------------------------------

  /** Creates the topic unless it exists (an existing topic keeps its partitions). True if created. */
  createTopic(spec: TopicSpec): boolean {
    if (!spec.name) throw new ConfigurationError('A topic needs a non-empty name.')
    if (!Number.isInteger(spec.partitions) || spec.partitions < 1) {
      throw new ConfigurationError(
        `Topic "${spec.name}" needs a whole number of partitions >= 1 (got ${spec.partitions}).`,
      )
    }
    if (this.topics.has(spec.name)) return false
    this.topics.set(spec.name, new Topic(spec, this.now))
    this.rebalanceSubscribersOf(spec.name)
    return true
  }

  /** Deletes the topic, its records and every group's committed offsets for it. True if it existed. */
  deleteTopic(name: string): boolean {
    if (!this.topics.delete(name)) return false
    for (const group of this.groups.values()) group.committed.delete(name)
    this.rebalanceSubscribersOf(name)
    return true
  }

  hasTopic(name: string): boolean {
    return this.topics.has(name)
  }

  /** Topic names, sorted. */
  topicNames(): string[] {
    return [...this.topics.keys()].sort()
  }

  /** The spec the topic was created with, or undefined when it does not exist. */
  topicSpec(name: string): TopicSpec | undefined {
    return this.topics.get(name)?.spec
  }

  partitionCount(topic: string): number | undefined {
    return this.topics.get(topic)?.partitions.length
  }

  /**
   * Appends a record and returns its offset. `timestamp` overrides the record's (default: the
   * record's, else the broker's clock). Consumers see the record on a later microtask, never
   * synchronously. A compacted topic refuses records without a key, as Kafka does.
   */
  append(
    topicName: string,
    partition: number,
    record: AppendRecord,
    timestamp: number = record.timestamp ?? this.now(),
  ): number {
    return this.requireTopic(topicName).append(partition, record, timestamp)
  }

  /** The first available offset of each partition. */
  startOffsets(topic: string): Map<number, number> {
    return new Map(this.requireTopic(topic).partitions.map((log, p) => [p, log.startOffset]))
  }

  /** The end offset (the next offset to be written) of each partition. */
  endOffsets(topic: string): Map<number, number> {
    return new Map(this.requireTopic(topic).partitions.map((log, p) => [p, log.endOffset]))
  }

  /**
   * Records of a partition with offsets in `[from, to)` (default: all), up to `max`. Without a
   * partition: every partition's records, partition by partition. For tests and tools.
   */
  records(
    topic: string,
    partition?: number,
    from = 0,
    to = Number.MAX_SAFE_INTEGER,
    max = Infinity,
  ): RawRecord[] {
    const t = this.requireTopic(topic)
    if (partition === undefined) return t.partitions.flatMap((log) => log.read(from, to, max))
    return this.requireLog(topic, partition).read(from, to, max)
  }

  /**
   * Compacts every partition of a compacted topic now: keeps the latest record per key at its
   * offset. A tombstone (null value) is kept while it is the latest for its key, so readers
   * that saw the old value learn of the delete, unless the topic sets `delete.retention.ms` and
   * the tombstone is older than that. Compaction also runs by itself as a partition grows.
   */
  compact(topic: string): void {
    this.requireTopic(topic).compact()
  }

  // ---- consumer groups ----------------------------------------------------------------------

  /**
   * Adds a member to `groupId` subscribed to `topics` (which must exist) and starts a rebalance.
   * Await `member.ready` for its first assignment to be handled.
   */
  join(
    groupId: string,
    topics: readonly string[],
    handlers: ConsumerHandlers,
    options: JoinOptions = {},
  ): GroupMember {
    if (!groupId) throw new ConfigurationError('A consumer needs a non-empty groupId.')
    const maxBatchSize = options.maxBatchSize ?? DEFAULT_MAX_BATCH_SIZE
    if (!Number.isInteger(maxBatchSize) || maxBatchSize < 1) {
      throw new ConfigurationError(`maxBatchSize must be a whole number >= 1 (got ${maxBatchSize}).`)
    }
    const missing = topics.filter((t) => !this.topics.has(t))
    if (missing.length > 0) {
      throw new BrokerError(
        `Cannot subscribe group "${groupId}" to missing topic(s) ${missing.map((t) => `"${t}"`).join(', ')}: ` +
          'create them first (admin.ensureTopics).',
      )
    }
    const group = this.groupOf(groupId)
    const member = new Member(group, `${groupId}-${++this.memberIds}`, [...new Set(topics)], handlers, {
      ...options,
      maxBatchSize,
    })
    group.members.push(member)
    group.requestRebalance()
    return member
  }

  // ---- transactions -------------------------------------------------------------------------

  /**
   * Registers a producer under `transactionalId` and returns its epoch; producers registered
   * earlier with the same id are fenced. The memory broker applies a transaction all at once
   * when it commits, so there is never an open transaction to abort or a record to hide.
   */
  initTransactions(transactionalId: string): number {
    return this.transactions.register(transactionalId)
  }

  /**
   * Commits a transaction: appends `records` (each with its partition) and stores `offsets` for
   * `groupId`, or does nothing at all. Throws `TransactionError` with code `FENCED` when a newer
   * producer holds the id, or when `member` (a transaction sent with its group membership) no
   * longer owns the offsets' partitions; a `BrokerError` for a record that cannot be written.
   */
  commitTransaction(
    transactionalId: string,
    epoch: number,
    records: readonly (AppendRecord & { topic: string; partition: number })[],
    groupId: string,
    offsets: readonly CommitOffset[],
    member?: GroupMember,
  ): { topic: string; partition: number; offset: number }[] {
    this.transactions.checkEpoch(transactionalId, epoch)
    member?.checkMembership(offsets)
    // Checked before anything is written: a transaction is all or nothing.
    for (const r of records) {
      const topic = this.requireTopic(r.topic)
      this.requireLog(r.topic, r.partition)
      if (topic.compacted && r.key === null) {
        throw new BrokerError(
          `Topic "${r.topic}" is compacted and refuses records without a key; the transaction was aborted.`,
        )
      }
    }
    this.checkOffsets(offsets)
    const written = records.map((r) => ({
      topic: r.topic,
      partition: r.partition,
      offset: this.append(r.topic, r.partition, r),
    }))
    if (offsets.length > 0) {
      const group = this.groupOf(groupId)
      for (const { topic, partition, offset } of offsets) group.setCommitted(topic, partition, offset)
    }
    return written
  }

  /** Committed offsets of a group for a topic's partitions (-1 where none). */
  groupOffsets(groupId: string, topic: string): Map<number, number> {
    const t = this.requireTopic(topic)
    const group = this.groups.get(groupId)
    return new Map(t.partitions.map((_, p) => [p, group?.committedOffset(topic, p) ?? -1]))
  }

  /** The committed offset of a group for one partition, or -1. */
  committedOffset(groupId: string, topic: string, partition: number): number {
    return this.groups.get(groupId)?.committedOffset(topic, partition) ?? -1
  }

  /** Sets a group's committed offsets from outside (tools, resets): the group must have no members. */
  setGroupOffsets(groupId: string, offsets: readonly CommitOffset[]): void {
    const group = this.groupOf(groupId)
    if (group.members.length > 0) {
      throw new BrokerError(
        `Cannot set offsets of group "${groupId}": it has ${group.members.length} running member(s). ` +
          'Stop every consumer of the group first.',
      )
    }
    this.checkOffsets(offsets)
    for (const { topic, partition, offset } of offsets) group.setCommitted(topic, partition, offset)
  }

  /**
   * True when there is nothing more to deliver right now: no rebalance is running or pending, no
   * member has a handler in flight, and every assigned, unpaused partition is read to its end.
   * The testkit settles on it.
   */
  idle(): boolean {
    for (const group of this.groups.values()) if (!group.idle()) return false
    return true
  }

  // ---- internals ----------------------------------------------------------------------------

  private requireLog(topic: string, partition: number): PartitionLog {
    const t = this.requireTopic(topic)
    const log = t.partitions[partition]
    if (log === undefined) {
      throw new BrokerError(
        `Partition ${partition} of topic "${topic}" does not exist: it has ${t.partitions.length} partition(s).`,
      )
    }
    return log
  }

  private requireTopic(name: string): Topic {
    const topic = this.topics.get(name)
    if (topic === undefined) {
      throw new BrokerError(
        `Topic "${name}" does not exist on memory://${this.name}. Create it first (admin.ensureTopics); ` +
          'the broker does not auto-create topics.',
      )
    }
    return topic
  }

  /** Offsets to store must name existing partitions and be whole numbers >= 0. */
  private checkOffsets(offsets: readonly CommitOffset[]): void {
    for (const { topic, partition, offset } of offsets) {
      this.requireLog(topic, partition)
      if (!Number.isInteger(offset) || offset < 0) {
        throw new BrokerError(`Offset ${offset} for ${topic}[${partition}] is not a valid offset.`)
      }
    }
  }

  private groupOf(groupId: string): Group {
    let group = this.groups.get(groupId)
    if (group === undefined) this.groups.set(groupId, (group = new Group(this.topics, groupId)))
    return group
  }

  private rebalanceSubscribersOf(topic: string): void {
    for (const group of this.groups.values()) if (group.subscribesTo(topic)) group.requestRebalance()
  }
}

const registry = new Map<string, MemoryBroker>()

/**
 * The process-wide broker called `name`: every `memory://` app in one process shares the
 * `'default'` one, so several workers can form one consumer group; `memory://other` names
 * another. Use `new MemoryBroker()` for a private one (the testkit does, per test).
 */
export function memoryBroker(name = 'default'): MemoryBroker {
  const key = name === '' ? 'default' : name
  let broker = registry.get(key)
  if (broker === undefined) registry.set(key, (broker = new MemoryBroker({ name: key })))
  return broker
}
