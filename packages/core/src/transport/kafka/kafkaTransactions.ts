/**
 * The exactly-once producer over kafkajs: one transaction per commit (records, group offsets,
 * marker), and fencing told apart from other failures. It does not buffer or linger.
 */
import type { Message, Producer, Transaction } from 'kafkajs'
import { BrokerError, TransactionError } from '../../base/errors.js'
import { tpKey } from '../../base/topicPartition.js'
import { defaultPartition } from '../partitioner.js'
import type { CommitOffset, OutgoingRecord, RecordMetadata, TransactionalProducer } from '../transport.js'
import { isProducerFenced, mayRetry, messageOf } from './kafkaErrors.js'
import type { SendOptions } from './kafkaProducer.js'

/** Records per `sendBatch` inside a transaction (kafkajs' grouping is quadratic per request). */
const REQUEST_RECORDS = 4_000

/**
 * A kafkajs transactional producer. `init()` registers the transactional id with the
 * transaction coordinator (InitProducerId), which bumps the id's epoch: an older producer with the
 * same id is fenced and its open transaction aborted before `init()` resolves. Each `commit()` is
 * one transaction: the records, then the group's offsets (sendOffsets), then the commit marker.
 */
export class KafkaTransactionalProducer implements TransactionalProducer {
  private transaction: Transaction | undefined
  private broken: TransactionError | undefined

  constructor(
    private readonly producer: Producer,
    readonly transactionalId: string,
    private readonly partitionCount: (topic: string) => Promise<number>,
    private readonly url: string,
    private readonly sendOptions: SendOptions,
  ) {}

  async init(): Promise<void> {
    try {
      await this.producer.connect()
      this.transaction = await this.producer.transaction()
    } catch (error) {
      await this.producer.disconnect().catch(() => {})
      throw new TransactionError(
        'TRANSACTION',
        `Cannot register transactional producer ${this.transactionalId} on ${this.url}: ${messageOf(error)}. ` +
          'Exactly-once needs a broker with transactions enabled (transaction.state.log.replication.factor ' +
          'must not exceed the number of brokers) and, with ACLs, WRITE on the transactional id.',
        { cause: error, retriable: mayRetry(error) },
      )
    }
  }

  async commit(
    records: OutgoingRecord[],
    offsets: CommitOffset[],
    groupId: string,
  ): Promise<RecordMetadata[]> {
    if (this.broken) throw this.broken
    if (records.length === 0 && offsets.length === 0) return []
    const messages = await this.place(records)
    const txn = this.transaction ?? (await this.begin())
    this.transaction = undefined
    const highest = new Map<string, RecordMetadata>()
    try {
      for (let i = 0; i < messages.length; i += REQUEST_RECORDS) {
        const chunk = messages.slice(i, i + REQUEST_RECORDS)
        const byTopic = new Map<string, Message[]>()
        const counts = new Map<string, number>()
        for (const { topic, message } of chunk) {
          let list = byTopic.get(topic)
          if (list === undefined) byTopic.set(topic, (list = []))
          list.push(message)
          const k = tpKey(topic, message.partition!)
          counts.set(k, (counts.get(k) ?? 0) + 1)
        }
        const response = await txn.sendBatch({
          ...this.sendOptions,
          acks: -1,
          topicMessages: [...byTopic].map(([topic, list]) => ({ topic, messages: list })),
        })
        for (const r of response) {
          const k = tpKey(r.topicName, r.partition)
          const last = Number(r.baseOffset) + (counts.get(k) ?? 1) - 1
          const prev = highest.get(k)
          if (prev === undefined || prev.offset < last)
            highest.set(k, { topic: r.topicName, partition: r.partition, offset: last })
        }
      }
      if (offsets.length > 0) {
        const byTopic = new Map<string, { partition: number; offset: string }[]>()
        for (const o of offsets) {
          let list = byTopic.get(o.topic)
          if (list === undefined) byTopic.set(o.topic, (list = []))
          list.push({ partition: o.partition, offset: String(o.offset) })
        }
        await txn.sendOffsets({
          consumerGroupId: groupId,
          topics: [...byTopic].map(([topic, partitions]) => ({ topic, partitions })),
        })
      }
      await txn.commit()
    } catch (error) {
      // A fenced producer cannot abort (the coordinator refuses it); the new owner's init did.
      await txn.abort().catch(() => {})
      this.broken = this.classify(error)
      throw this.broken
    }
    return [...highest.values()]
  }

  async close(): Promise<void> {
    const txn = this.transaction
    this.transaction = undefined
    this.broken ??= new TransactionError('TRANSACTION', `Producer ${this.transactionalId} is closed.`)
    // An open transaction with nothing in it holds nothing on the broker; a disconnect is enough.
    if (txn?.isActive()) await txn.abort().catch(() => {})
    await this.producer.disconnect().catch(() => {})
  }

  private async begin(): Promise<Transaction> {
    try {
      return await this.producer.transaction()
    } catch (error) {
      this.broken = this.classify(error)
      throw this.broken
    }
  }

  private async place(records: OutgoingRecord[]): Promise<{ topic: string; message: Message }[]> {
    const placed: { topic: string; message: Message }[] = []
    for (const r of records) {
      const count = await this.partitionCount(r.topic)
      let partition = r.partition
      if (partition === undefined) partition = defaultPartition(r.key, count)
      else if (!Number.isInteger(partition) || partition < 0 || partition >= count) {
        throw new BrokerError(
          `Partition ${partition} of topic "${r.topic}" does not exist: it has ${count} partition(s).`,
        )
      }
      const message: Message = { key: r.key, value: r.value, partition }
      if (r.headers !== undefined) message.headers = r.headers
      if (r.timestamp !== undefined) message.timestamp = String(r.timestamp)
      placed.push({ topic: r.topic, message })
    }
    return placed
  }

  private classify(error: unknown): TransactionError {
    const text = messageOf(error)
    if (isProducerFenced(error)) {
      return new TransactionError(
        'FENCED',
        `Producer ${this.transactionalId} was fenced by a newer producer with the same transactional id ` +
          `(another worker owns its partitions now): ${text}`,
        { cause: error },
      )
    }
    return new TransactionError(
      'TRANSACTION',
      `The transaction of ${this.transactionalId} on ${this.url} failed and was aborted: ${text}`,
      { cause: error },
    )
  }
}
