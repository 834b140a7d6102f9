/**
 * The exactly-once producer over platformatic's: one transaction per commit (records, then the
 * group's offsets with AddOffsetsToTxn and TxnOffsetCommit, then EndTxn), with or without a group
 * membership (KIP-447), and fencing told apart from other failures. It does not buffer or linger.
 */
import type { CommitOffset, OutgoingRecord, RecordMetadata, TransactionalProducer } from '@mephisto/core'
import { BrokerError, TransactionError } from '@mephisto/core'
import type { MessageToProduce, Producer } from '@platformatic/kafka'
import type { KafkaClient } from './client.js'
import type { GroupCoordinator } from './coordinator.js'
import { isGroupFenced, isProducerFenced, mayRetry, messageOf } from './errors.js'
import { offsetTopics } from './groupOffsets.js'
import type { Membership } from './membership.js'
import { MAX_REQUEST_RECORDS, partitionFor, toMessage } from './producer.js'

/** A platformatic transaction (its class is not exported by name). */
type Transaction = NonNullable<Producer['transaction']>

/**
 * What a producer that holds no producer id yet sends with InitProducerId (KIP-360: -1 and -1).
 * @platformatic/kafka 2.12.1 sends 0 and 0 unless told, and the coordinator answers PRODUCER_FENCED
 * to a new producer registering an id that a producer other than id 0 used before.
 */
const NEW_PRODUCER = { producerId: -1n, producerEpoch: -1 }

/** A commit without a group membership: the per-partition-number model (`Transport.transactionalProducer`). */
const NO_MEMBERSHIP = { generationId: -1, memberId: '', groupInstanceId: null } as const

/** Where a transaction's offsets go, and with which membership. */
export interface OffsetCommitter {
  /** The coordinator of `groupId` and the client that reaches it. */
  coordinator(groupId: string): { client: KafkaClient; coordinator: GroupCoordinator }
  /**
   * For a producer of a group member (`TransportConsumer.transactionalProducer`): the membership
   * to commit `offsets` with, or a `FENCED` TransactionError when the member no longer holds them.
   * Undefined for a producer without membership.
   */
  membership?: (groupId: string, offsets: readonly CommitOffset[]) => Membership
}

/**
 * A transactional producer. `init()` registers the transactional id (InitProducerId), which bumps
 * the id's epoch: an older producer with the id is fenced and its open transaction aborted before
 * `init()` resolves. Each `commit()` is one transaction.
 */
export class PlatformaticTransactionalProducer implements TransactionalProducer {
  private transaction: Transaction | undefined
  private broken: TransactionError | undefined

  constructor(
    private readonly producer: Producer,
    readonly transactionalId: string,
    private readonly partitionCount: (topic: string) => Promise<number>,
    private readonly knownPartitionCounts: ReadonlyMap<string, number>,
    private readonly offsets: OffsetCommitter,
    private readonly url: string,
  ) {}

  async init(): Promise<void> {
    try {
      this.transaction = await this.producer.beginTransaction(NEW_PRODUCER)
    } catch (error) {
      await this.producer.close(true).catch(() => {})
      if (isProducerFenced(error)) throw this.classify(error)
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
    // Checked before anything is written: a member that lost the partitions writes nothing.
    let membership: Pick<Membership, 'generationId' | 'memberId' | 'groupInstanceId'> = NO_MEMBERSHIP
    try {
      if (offsets.length > 0 && this.offsets.membership)
        membership = this.offsets.membership(groupId, offsets)
    } catch (error) {
      this.broken = this.classify(error)
      throw this.broken
    }
    const messages: MessageToProduce[] = []
    for (const r of records) {
      // Known after a topic's first record: no await per record.
      const count = this.knownPartitionCounts.get(r.topic) ?? (await this.partitionCount(r.topic))
      messages.push(toMessage(r, partitionFor(r, count)))
    }
    const txn = this.transaction ?? (await this.begin())
    this.transaction = undefined
    const highest = new Map<string, RecordMetadata>()
    let sent = false
    try {
      for (let i = 0; i < messages.length; i += MAX_REQUEST_RECORDS) {
        const chunk = messages.slice(i, i + MAX_REQUEST_RECORDS)
        sent = true
        const result = await txn.send({ messages: chunk })
        // Records of one partition were appended in request order from its base offset.
        const counts = new Map<string, number[]>()
        for (const m of chunk) {
          let perPartition = counts.get(m.topic)
          if (perPartition === undefined) counts.set(m.topic, (perPartition = []))
          perPartition[m.partition!] = (perPartition[m.partition!] ?? 0) + 1
        }
        for (const o of result.offsets ?? []) {
          const key = `${o.topic}\u0000${o.partition}`
          const last = Number(o.offset) + (counts.get(o.topic)?.[o.partition] ?? 1) - 1
          const prev = highest.get(key)
          if (prev === undefined || prev.offset < last)
            highest.set(key, { topic: o.topic, partition: o.partition, offset: last })
        }
      }
      if (offsets.length > 0) {
        sent = true
        // AddOffsetsToTxn: platformatic reads only the group id of the consumer it is given.
        await txn.addConsumer({ groupId } as Parameters<Transaction['addConsumer']>[0])
        await this.commitOffsets(groupId, offsets, membership)
      }
      await txn.commit()
    } catch (error) {
      // A fenced producer cannot abort (the coordinator refuses it); the new owner's init did.
      if (sent) await txn.abort().catch(() => {})
      else await txn.cancel().catch(() => {})
      this.broken = this.classify(error)
      throw this.broken
    }
    return [...highest.values()]
  }

  async close(): Promise<void> {
    const txn = this.transaction
    this.transaction = undefined
    this.broken ??= new TransactionError('TRANSACTION', `Producer ${this.transactionalId} is closed.`)
    // A transaction begun and never written to holds nothing on the broker.
    await txn?.cancel().catch(() => {})
    await this.producer.close(true).catch(() => {})
  }

  /** TxnOffsetCommit to the group's coordinator, with the membership the offsets are committed under. */
  private async commitOffsets(
    groupId: string,
    offsets: readonly CommitOffset[],
    membership: Pick<Membership, 'generationId' | 'memberId' | 'groupInstanceId'>,
  ): Promise<void> {
    const { client, coordinator } = this.offsets.coordinator(groupId)
    await coordinator.run(
      (c) =>
        client.call(
          'TxnOffsetCommit',
          c,
          this.transactionalId,
          groupId,
          this.producer.producerId,
          this.producer.producerEpoch,
          membership.generationId,
          membership.memberId,
          membership.groupInstanceId,
          offsetTopics(offsets),
        ),
      30_000,
    )
  }

  private async begin(): Promise<Transaction> {
    try {
      return await this.producer.beginTransaction(NEW_PRODUCER)
    } catch (error) {
      this.broken = this.classify(error)
      throw this.broken
    }
  }

  private classify(error: unknown): TransactionError {
    if (error instanceof TransactionError) return error
    const text = messageOf(error)
    if (isProducerFenced(error)) {
      return new TransactionError(
        'FENCED',
        `Producer ${this.transactionalId} was fenced by a newer producer with the same transactional id ` +
          `(another worker owns its partitions now): ${text}`,
        { cause: error },
      )
    }
    if (isGroupFenced(error)) {
      return new TransactionError(
        'FENCED',
        `The group fenced the transaction of ${this.transactionalId}: its membership is stale (the group ` +
          `rebalanced without it, or another worker took its instance id): ${text}`,
        { cause: error },
      )
    }
    if (error instanceof BrokerError) {
      return new TransactionError(
        'TRANSACTION',
        `The transaction of ${this.transactionalId} failed: ${text}`,
        {
          cause: error,
        },
      )
    }
    return new TransactionError(
      'TRANSACTION',
      `The transaction of ${this.transactionalId} on ${this.url} failed and was aborted: ${text}`,
      { cause: error },
    )
  }
}
