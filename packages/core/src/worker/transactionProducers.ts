/**
 * Who commits the transaction of a partition number under exactly-once: one transactional
 * producer per partition number (the model every transport has; kafkajs' only one), or one per
 * worker whose commits carry the consumer's group membership (KIP-447), when the transport's
 * consumer offers it. Transactions (transactions.ts) decides what goes into a commit; this room
 * decides which producers write it.
 */
import { TransactionError } from '../base/errors.js'
import type {
  CommitOffset,
  OutgoingRecord,
  RecordMetadata,
  TransactionalProducer,
  Transport,
  TransportConsumer,
} from '../transport/transport.js'

/** What one transaction unit (a partition number) commits. */
export interface TransactionBatch {
  records: OutgoingRecord[]
  offsets: CommitOffset[]
}

export interface TransactionProducers {
  /** `'partition'`: one producer per partition number; `'worker'`: one for the worker. */
  readonly model: 'partition' | 'worker'
  /**
   * Makes sure the newly assigned partition numbers can commit. Per partition number, that
   * registers their producers, fencing the previous owners' (their open transactions are aborted
   * before this resolves); per worker, the group fences them, and the one producer is registered
   * once.
   */
  fence(numbers: readonly number[]): Promise<void>
  /** Partition number `p` can commit here. */
  has(p: number): boolean
  /** Partition number `p` no longer belongs here. */
  release(p: number): Promise<void>
  /**
   * Commits the batches of the given partition numbers: one transaction each, or one for all.
   * Resolves with what was written; rejects with the first failure once every transaction settled.
   */
  commit(batches: ReadonlyMap<number, TransactionBatch>, groupId: string): Promise<RecordMetadata[]>
  /** Closes every producer (stop); an open transaction is aborted by the broker. */
  closeAll(): Promise<void>
  /** Closes every producer at once, failures ignored (abort). */
  abortAll(): Promise<unknown>[]
  /** How many transactional producers this worker holds (for /stats and the bench). */
  count(): number
}

/** The transactional id of partition number `p` of app `appId`. */
export function transactionalIdOf(appId: string, p: number): string {
  return `${appId}-tx-${p}`
}

/**
 * The base of the one transactional id of a worker of app `appId`: the transport completes it
 * with the worker's stable instance id (see `TransportConsumer.transactionalProducer`).
 */
export function workerTransactionalIdOf(appId: string): string {
  return `${appId}-tx-worker`
}

/** The producers for `consumer`: per worker when it offers that, else per partition number. */
export function transactionProducers(
  appId: string,
  transport: Transport,
  consumer: TransportConsumer | undefined,
): TransactionProducers {
  return consumer?.transactionalProducer
    ? new WorkerProducer(appId, consumer)
    : new PartitionProducers(appId, transport)
}

class PartitionProducers implements TransactionProducers {
  readonly model = 'partition'
  private readonly producers = new Map<number, TransactionalProducer>()

  constructor(
    private readonly appId: string,
    private readonly transport: Transport,
  ) {}

  async fence(numbers: readonly number[]): Promise<void> {
    await Promise.all(
      numbers
        .filter((p) => !this.producers.has(p))
        .map(async (p) => {
          this.producers.set(p, await this.transport.transactionalProducer(transactionalIdOf(this.appId, p)))
        }),
    )
  }

  has(p: number): boolean {
    return this.producers.has(p)
  }

  async release(p: number): Promise<void> {
    const producer = this.producers.get(p)
    this.producers.delete(p)
    await producer?.close()
  }

  async commit(batches: ReadonlyMap<number, TransactionBatch>, groupId: string): Promise<RecordMetadata[]> {
    const results = await Promise.allSettled(
      [...batches].map(([p, batch]) => {
        const producer = this.producers.get(p)
        if (!producer)
          throw new TransactionError('TRANSACTION', `no transactional producer for partition ${p}`)
        return producer.commit(batch.records, batch.offsets, groupId)
      }),
    )
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
    if (failed) throw failed.reason
    return results.flatMap((r) => (r as PromiseFulfilledResult<RecordMetadata[]>).value)
  }

  async closeAll(): Promise<void> {
    for (const p of this.producers.values()) await p.close()
  }

  abortAll(): Promise<unknown>[] {
    return [...this.producers.values()].map((p) => p.close())
  }

  count(): number {
    return this.producers.size
  }
}

class WorkerProducer implements TransactionProducers {
  readonly model = 'worker'
  private producer: Promise<TransactionalProducer> | undefined
  private readonly numbers = new Set<number>()

  constructor(
    private readonly appId: string,
    private readonly consumer: TransportConsumer,
  ) {}

  async fence(numbers: readonly number[]): Promise<void> {
    this.producer ??= this.consumer.transactionalProducer!(workerTransactionalIdOf(this.appId))
    // A failed registration is tried again by the next assignment.
    await this.producer.catch((err: unknown) => {
      this.producer = undefined
      throw err
    })
    for (const p of numbers) this.numbers.add(p)
  }

  has(p: number): boolean {
    return this.numbers.has(p)
  }

  async release(p: number): Promise<void> {
    this.numbers.delete(p)
  }

  async commit(batches: ReadonlyMap<number, TransactionBatch>, groupId: string): Promise<RecordMetadata[]> {
    if (batches.size === 0) return []
    if (this.producer === undefined)
      throw new TransactionError('TRANSACTION', 'no transactional producer yet')
    const producer = await this.producer
    const records: OutgoingRecord[] = []
    const offsets: CommitOffset[] = []
    // Loops, not push(...): spreading a large array overflows the call stack.
    for (const batch of batches.values()) {
      for (const r of batch.records) records.push(r)
      for (const o of batch.offsets) offsets.push(o)
    }
    return producer.commit(records, offsets, groupId)
  }

  async closeAll(): Promise<void> {
    const producer = this.producer
    this.producer = undefined
    await (await producer?.catch(() => undefined))?.close()
  }

  abortAll(): Promise<unknown>[] {
    const producer = this.producer
    this.producer = undefined
    return producer ? [producer.then((p) => p.close())] : []
  }

  count(): number {
    return this.producer === undefined ? 0 : 1
  }
}
