/**
 * The `memory://` transport: the `Transport` contract (producers, transactional producers,
 * consumers, admin, reads) as thin wrappers over a {@link MemoryBroker}. It stores nothing
 * itself: logs, groups, offsets and fencing are the broker's.
 */
import { BrokerError, TransactionError } from '../../base/errors.js'
import { tpKey } from '../../base/topicPartition.js'
import { defaultPartition } from '../partitioner.js'
import type {
  CommitOffset,
  ConsumerHandlers,
  ConsumerOptions,
  OutgoingRecord,
  PartitionRange,
  ProducerOptions,
  RawRecord,
  RecordMetadata,
  TopicPartition,
  TopicSpec,
  TransactionalProducer,
  Transport,
  TransportAdmin,
  TransportConsumer,
  TransportProducer,
} from '../transport.js'
import type { GroupMember } from './groupMember.js'
import type { MemoryBroker } from './memoryBroker.js'

/** Records per `onRecords` call of {@link MemoryTransport.read}. */
const READ_BATCH_SIZE = 1000

export interface MemoryTransportOptions {
  /** Timestamp of records sent without one. Default: the broker's clock. */
  now?: () => number
}

/**
 * The `memory://<name>` transport: a {@link MemoryBroker} behind the `Transport` contract.
 * The broker acknowledges a write as it appends it, so producers never buffer.
 */
export class MemoryTransport implements Transport {
  readonly kind = 'memory'
  readonly url: string
  readonly admin: TransportAdmin
  readonly broker: MemoryBroker
  private readonly now: () => number
  private readonly producers = new Set<MemoryProducer>()
  private readonly consumers = new Set<MemoryConsumer>()

  constructor(broker: MemoryBroker, options: MemoryTransportOptions = {}) {
    this.broker = broker
    this.url = `memory://${broker.name}`
    this.now = options.now ?? broker.now
    this.admin = new MemoryAdmin(broker)
  }

  async connect(): Promise<void> {}

  producer(_options?: ProducerOptions): TransportProducer {
    const producer = new MemoryProducer(this.broker, this.now)
    this.producers.add(producer)
    return producer
  }

  async transactionalProducer(transactionalId: string): Promise<TransactionalProducer> {
    const epoch = this.broker.initTransactions(transactionalId)
    return new MemoryTransactionalProducer(this.broker, transactionalId, epoch, this.now)
  }

  consumer(options: ConsumerOptions): TransportConsumer {
    const consumer = new MemoryConsumer(this.broker, options, this.now)
    this.consumers.add(consumer)
    return consumer
  }

  async read(
    topic: string,
    ranges: PartitionRange[],
    onRecords: (records: RawRecord[]) => void | Promise<void>,
  ): Promise<void> {
    const ends = this.broker.endOffsets(topic)
    for (const { partition, from, to } of ranges) {
      const end = ends.get(partition)
      if (end === undefined) {
        throw new BrokerError(`Cannot read ${topic}[${partition}]: the topic has ${ends.size} partition(s).`)
      }
      // Kafka would wait for records that may never come; failing says what went wrong.
      if (to > end) {
        throw new BrokerError(
          `Cannot read ${topic}[${partition}] up to offset ${to}: the partition ends at ${end}. ` +
            'Read up to the end offset (admin.endOffsets) taken before reading.',
        )
      }
      let position = from
      while (position < to) {
        const records = this.broker.records(topic, partition, position, to, READ_BATCH_SIZE)
        if (records.length === 0) break
        position = records[records.length - 1]!.offset + 1
        await onRecords(records)
      }
    }
  }

  /** Closes producers and stops the consumers still running (revoking their partitions). */
  async close(): Promise<void> {
    await Promise.all(Array.from(this.consumers, (c) => c.stop().catch(() => {})))
    await Promise.all(Array.from(this.producers, (p) => p.close()))
    this.consumers.clear()
    this.producers.clear()
  }
}

class MemoryProducer implements TransportProducer {
  private closed = false
  /** topic -> partition -> highest offset written since the last flush. */
  private written = new Map<string, number[]>()

  constructor(
    private readonly broker: MemoryBroker,
    private readonly now: () => number,
  ) {}

  async send(record: OutgoingRecord): Promise<void> {
    this.write(record)
  }

  async sendAndWait(record: OutgoingRecord): Promise<RecordMetadata> {
    const partition = this.write(record)
    const offsets = this.written.get(record.topic)!
    return { topic: record.topic, partition, offset: offsets[partition]! }
  }

  async flush(): Promise<RecordMetadata[]> {
    const written = this.written
    this.written = new Map()
    const result: RecordMetadata[] = []
    for (const [topic, offsets] of written) {
      offsets.forEach((offset, partition) => {
        result.push({ topic, partition, offset })
      })
    }
    return result
  }

  pending(): number {
    return 0
  }

  async close(): Promise<void> {
    this.closed = true
  }

  async abort(): Promise<void> {
    this.closed = true
    this.written = new Map()
  }

  /** Appends the record; returns its partition (its offset is the partition's last in `written`). */
  private write(record: OutgoingRecord): number {
    if (this.closed) {
      throw new BrokerError(
        `Cannot send to "${record.topic}": the producer is closed. Create a new producer.`,
      )
    }
    const { topic } = record
    let partition = record.partition
    if (partition === undefined) {
      const count = this.broker.partitionCount(topic)
      if (count === undefined) {
        throw new BrokerError(
          `Cannot send to topic "${topic}": it does not exist on memory://${this.broker.name}. ` +
            'Create it first (admin.ensureTopics); the broker does not auto-create topics.',
        )
      }
      partition = defaultPartition(record.key, count)
    }
    const offset = this.broker.append(topic, partition, record, record.timestamp ?? this.now())
    let offsets = this.written.get(topic)
    if (offsets === undefined) this.written.set(topic, (offsets = []))
    // Offsets only grow, so the last one written is the highest.
    offsets[partition] = offset
    return partition
  }
}

class MemoryTransactionalProducer implements TransactionalProducer {
  private closed = false

  constructor(
    private readonly broker: MemoryBroker,
    readonly transactionalId: string,
    private readonly epoch: number,
    private readonly now: () => number,
    /** Commits carry this member's group membership: the group fences it once it moved on. */
    private readonly member?: GroupMember,
  ) {}

  async commit(
    records: OutgoingRecord[],
    offsets: CommitOffset[],
    groupId: string,
  ): Promise<RecordMetadata[]> {
    if (this.closed) {
      throw new TransactionError('TRANSACTION', `Producer ${this.transactionalId} is closed.`)
    }
    const now = this.now()
    const placed = records.map((r) => {
      let partition = r.partition
      if (partition === undefined) {
        const count = this.broker.partitionCount(r.topic)
        if (count === undefined) {
          throw new BrokerError(
            `Cannot send to topic "${r.topic}": it does not exist on memory://${this.broker.name}; the transaction was aborted.`,
          )
        }
        partition = defaultPartition(r.key, count)
      }
      return { ...r, partition, timestamp: r.timestamp ?? now }
    })
    const written = this.broker.commitTransaction(
      this.transactionalId,
      this.epoch,
      placed,
      groupId,
      offsets,
      this.member,
    )
    return highestPerPartition(written)
  }

  async close(): Promise<void> {
    this.closed = true
  }
}

/** The highest offset written per topic-partition. */
function highestPerPartition(written: readonly RecordMetadata[]): RecordMetadata[] {
  const highest = new Map<string, RecordMetadata>()
  for (const m of written) {
    const k = tpKey(m.topic, m.partition)
    const prev = highest.get(k)
    if (prev === undefined || prev.offset < m.offset) highest.set(k, m)
  }
  return [...highest.values()]
}

class MemoryConsumer implements TransportConsumer {
  private member: GroupMember | undefined
  private stopped = false
  /** Present when the broker has `groupTransactions`. */
  readonly transactionalProducer?: (transactionalId: string) => Promise<TransactionalProducer>

  constructor(
    private readonly broker: MemoryBroker,
    private readonly options: ConsumerOptions,
    now: () => number,
  ) {
    if (broker.groupTransactions) {
      this.transactionalProducer = async (base) => {
        const member = this.member
        if (member === undefined) {
          throw new BrokerError(
            `Consumer of group "${options.groupId}" has not started: a group transaction needs its membership.`,
          )
        }
        // A member id is unique per join: the memory broker has no static membership.
        const id = `${base}-${member.id}`
        return new MemoryTransactionalProducer(broker, id, broker.initTransactions(id), now, member)
      }
    }
  }

  async start(topics: string[], handlers: ConsumerHandlers): Promise<void> {
    if (this.member !== undefined || this.stopped) {
      throw new BrokerError(
        `Consumer of group "${this.options.groupId}" was already started; create a new consumer to join again.`,
      )
    }
    this.member = this.broker.join(this.options.groupId, topics, handlers, {
      ...(this.options.fromBeginning === undefined ? {} : { fromBeginning: this.options.fromBeginning }),
      ...(this.options.maxBatchSize === undefined ? {} : { maxBatchSize: this.options.maxBatchSize }),
      ...(this.options.standbyReplicas === undefined
        ? {}
        : { standbyReplicas: this.options.standbyReplicas }),
    })
    await this.member.ready
  }

  async commit(offsets: CommitOffset[]): Promise<void> {
    if (this.member === undefined) {
      throw new BrokerError(
        `Cannot commit for group "${this.options.groupId}": the consumer has not started (start() joins the group).`,
      )
    }
    this.member.commit(offsets)
  }

  async committed(partitions: TopicPartition[]): Promise<CommitOffset[]> {
    const { groupId } = this.options
    return partitions.map(({ topic, partition }) => ({
      topic,
      partition,
      offset: this.broker.committedOffset(groupId, topic, partition),
    }))
  }

  pause(partitions: TopicPartition[]): void {
    this.member?.pause(partitions)
  }

  resume(partitions: TopicPartition[]): void {
    this.member?.resume(partitions)
  }

  assignment(): TopicPartition[] {
    return this.member?.assignment() ?? []
  }

  /** The standby copies the group placed here (undefined before the member joined). */
  standbys(): number[] | undefined {
    return this.member === undefined ? undefined : [...this.member.standby]
  }

  async stop(): Promise<void> {
    this.stopped = true
    await this.member?.leave()
  }

  async abort(): Promise<void> {
    this.stopped = true
    this.member?.crash()
  }
}

class MemoryAdmin implements TransportAdmin {
  constructor(private readonly broker: MemoryBroker) {}

  async ensureTopics(topics: TopicSpec[]): Promise<void> {
    for (const spec of topics) this.broker.createTopic(spec)
  }

  async partitionCount(topic: string): Promise<number | undefined> {
    return this.broker.partitionCount(topic)
  }

  async endOffsets(topic: string): Promise<Map<number, number>> {
    return this.broker.endOffsets(topic)
  }

  async startOffsets(topic: string): Promise<Map<number, number>> {
    return this.broker.startOffsets(topic)
  }

  async groupOffsets(groupId: string, topic: string): Promise<Map<number, number>> {
    return this.broker.groupOffsets(groupId, topic)
  }

  async setGroupOffsets(groupId: string, offsets: CommitOffset[]): Promise<void> {
    this.broker.setGroupOffsets(groupId, offsets)
  }

  async deleteTopics(topics: string[]): Promise<void> {
    for (const topic of topics) this.broker.deleteTopic(topic)
  }

  async listTopics(): Promise<string[]> {
    return this.broker.topicNames()
  }
}
