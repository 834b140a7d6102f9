/**
 * The batching, non-transactional producer over platformatic's: buffering, linger, one request in
 * flight, each record's partition chosen by core's partitioner. It does not do transactions
 * (transactions.ts) or pick client options.
 */
import type { OutgoingRecord, ProducerOptions, RecordMetadata, TransportProducer } from '@mephisto/core'
import { BrokerError, defaultPartition, MephistoError } from '@mephisto/core'
import type { MessageToProduce, Producer } from '@platformatic/kafka'
import { messageOf } from './errors.js'
import { fromHeaders } from './records.js'

const DEFAULT_BATCH_SIZE = 500
const DEFAULT_LINGER_MS = 5
const DEFAULT_MAX_BUFFERED = 10_000
/** What {@link PlatformaticProducer.send} answers once the record is buffered. */
const SENT: Promise<void> = Promise.resolve()
/** Most records in one produce request. */
export const MAX_REQUEST_RECORDS = 4_000

interface Waiter {
  resolve: (meta: RecordMetadata) => void
  reject: (error: unknown) => void
}

interface Entry {
  message: MessageToProduce
  partition: number
  waiter: Waiter | undefined
}

/**
 * The partition `record` goes to in a topic of `count` partitions: its own, checked, or Kafka's
 * default partitioner's for its key (core's, so both transports put a key on the same partition).
 */
export function partitionFor(record: OutgoingRecord, count: number): number {
  const { partition } = record
  if (partition === undefined) return defaultPartition(record.key, count)
  if (!Number.isInteger(partition) || partition < 0 || partition >= count) {
    throw new BrokerError(
      `Partition ${partition} of topic "${record.topic}" does not exist: it has ${count} partition(s), numbered from 0.`,
    )
  }
  return partition
}

/** A record as platformatic produces it, on its partition. */
export function toMessage(record: OutgoingRecord, partition: number): MessageToProduce {
  const message: MessageToProduce = { topic: record.topic, partition }
  if (record.key !== null) message.key = record.key
  if (record.value !== null) message.value = record.value
  const headers = fromHeaders(record.headers)
  if (headers !== undefined) message.headers = headers
  if (record.timestamp !== undefined) message.timestamp = BigInt(record.timestamp)
  return message
}

/**
 * A batching producer. Records are buffered, given their partition here and sent when `batchSize`
 * records are buffered, `lingerMs` has passed, or someone waits (`sendAndWait`, `flush`). One
 * request is in flight at a time: platformatic retries a failed request on its own, and two in
 * flight could then land out of order in a partition.
 *
 * A failed request poisons the producer: every later `send`, `sendAndWait` and `flush` rejects with
 * the failure. Records that were not written must never be followed by a successful flush, or the
 * runtime would commit input offsets whose outputs are lost.
 */
export class PlatformaticProducer implements TransportProducer {
  private buffer: Entry[] = []
  private inFlight: Promise<void> | null = null
  private inFlightRecords = 0
  private lingerTimer: NodeJS.Timeout | undefined
  private urgent = false
  private failure: MephistoError | undefined
  private closed = false
  private written = new Map<string, Map<number, number>>()
  private roomWaiters: (() => void)[] = []
  private readonly batchSize: number
  private readonly lingerMs: number
  private readonly maxBuffered: number

  constructor(
    private readonly producer: Producer,
    private readonly partitionCount: (topic: string) => Promise<number>,
    private readonly knownPartitionCounts: ReadonlyMap<string, number>,
    private readonly url: string,
    private readonly acks: number,
    options: ProducerOptions = {},
  ) {
    this.batchSize = positive('batchSize', options.batchSize ?? DEFAULT_BATCH_SIZE)
    this.lingerMs = Math.max(0, options.lingerMs ?? DEFAULT_LINGER_MS)
    this.maxBuffered = positive('maxBufferedRecords', options.maxBufferedRecords ?? DEFAULT_MAX_BUFFERED)
  }

  send(record: OutgoingRecord): Promise<void> {
    // The common case without a promise of its own: the topic's partition count is known and
    // there is room in the buffer.
    const count = this.knownPartitionCounts.get(record.topic)
    if (count === undefined || this.buffer.length + this.inFlightRecords >= this.maxBuffered) {
      return this.sendWhenReady(record)
    }
    try {
      this.assertUsable(record.topic)
      this.buffer.push(entryOf(record, count, undefined))
    } catch (error) {
      return Promise.reject(error)
    }
    this.schedule()
    return SENT
  }

  /** {@link send} after learning the topic's partition count, or after waiting for room. */
  private async sendWhenReady(record: OutgoingRecord): Promise<void> {
    const entry = await this.entry(record, undefined)
    while (this.buffer.length + this.inFlightRecords >= this.maxBuffered) {
      await new Promise<void>((resolve) => this.roomWaiters.push(resolve))
      this.assertUsable(record.topic)
    }
    this.buffer.push(entry)
    this.schedule()
  }

  async sendAndWait(record: OutgoingRecord): Promise<RecordMetadata> {
    let waiter!: Waiter
    const acked = new Promise<RecordMetadata>((resolve, reject) => {
      waiter = { resolve, reject }
    })
    // Not subject to the buffer bound: the caller waits for this record anyway.
    this.buffer.push(await this.entry(record, waiter))
    this.urgent = true
    this.schedule()
    return acked
  }

  async flush(): Promise<RecordMetadata[]> {
    this.throwIfFailed()
    while (this.buffer.length > 0 || this.inFlight !== null) {
      this.urgent = true
      this.schedule()
      await this.inFlight
    }
    this.throwIfFailed()
    const written = this.written
    this.written = new Map()
    const result: RecordMetadata[] = []
    for (const [topic, partitions] of written) {
      for (const [partition, offset] of partitions) result.push({ topic, partition, offset })
    }
    return result
  }

  pending(): number {
    return this.buffer.length + this.inFlightRecords
  }

  async close(): Promise<void> {
    if (this.closed) return
    try {
      if (this.failure === undefined) await this.flush()
    } finally {
      this.closed = true
      this.dropBuffer(new BrokerError('The producer was closed before the record was sent.'))
      await this.producer.close(true).catch(() => {})
    }
  }

  async abort(): Promise<void> {
    this.closed = true
    this.dropBuffer(new BrokerError('The producer was aborted before the record was sent.'))
    this.written = new Map()
    // A request already on the wire may still land, as after a real crash.
    await this.producer.close(true).catch(() => {})
  }

  private async entry(record: OutgoingRecord, waiter: Waiter | undefined): Promise<Entry> {
    this.assertUsable(record.topic)
    const count = this.knownPartitionCounts.get(record.topic) ?? (await this.partitionCount(record.topic))
    return entryOf(record, count, waiter)
  }

  private assertUsable(topic: string): void {
    this.throwIfFailed()
    if (this.closed) {
      throw new BrokerError(`Cannot send to "${topic}": the producer is closed. Create a new producer.`)
    }
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure
  }

  private schedule(): void {
    if (this.inFlight !== null || this.buffer.length === 0) return
    if (this.urgent || this.buffer.length >= this.batchSize || this.lingerMs === 0) {
      this.sendNow()
      return
    }
    this.lingerTimer ??= setTimeout(() => {
      this.lingerTimer = undefined
      this.urgent = true
      this.schedule()
    }, this.lingerMs)
  }

  private sendNow(): void {
    if (this.lingerTimer !== undefined) {
      clearTimeout(this.lingerTimer)
      this.lingerTimer = undefined
    }
    const entries =
      this.buffer.length <= MAX_REQUEST_RECORDS ? this.buffer : this.buffer.slice(0, MAX_REQUEST_RECORDS)
    this.buffer = entries === this.buffer ? [] : this.buffer.slice(MAX_REQUEST_RECORDS)
    this.urgent = this.urgent && this.buffer.length > 0
    this.inFlightRecords = entries.length
    this.inFlight = this.request(entries).finally(() => {
      this.inFlight = null
      this.inFlightRecords = 0
      this.wakeRoomWaiters()
      this.schedule()
    })
  }

  private async request(entries: Entry[]): Promise<void> {
    let offsets: { topic: string; partition: number; offset: bigint }[]
    try {
      const result = await this.producer.send({ messages: entries.map((e) => e.message), acks: this.acks })
      offsets = result.offsets ?? []
    } catch (error) {
      this.fail(entries, error)
      return
    }
    // Records of one partition were appended in request order from its base offset.
    const next = new Map<string, number>()
    for (const o of offsets) next.set(`${o.topic}\u0000${o.partition}`, Number(o.offset))
    for (const e of entries) {
      const topic = e.message.topic
      const key = `${topic}\u0000${e.partition}`
      const offset = next.get(key)
      if (offset === undefined || offset < 0) {
        // acks 0 gives no offsets; nothing can be promised about these records.
        e.waiter?.resolve({ topic, partition: e.partition, offset: -1 })
        continue
      }
      next.set(key, offset + 1)
      let partitions = this.written.get(topic)
      if (partitions === undefined) this.written.set(topic, (partitions = new Map()))
      partitions.set(e.partition, offset)
      e.waiter?.resolve({ topic, partition: e.partition, offset })
    }
  }

  private fail(entries: Entry[], cause: unknown): void {
    const topics = [...new Set(entries.map((e) => e.message.topic))].join(', ')
    this.failure ??= new MephistoError(
      'PRODUCER',
      `Sending ${entries.length} record(s) to ${topics} on ${this.url} failed: ${messageOf(cause)}. ` +
        '@platformatic/kafka retried it already; the records were not written. The producer refuses further ' +
        'sends so that no offset past them is committed: restart the worker.',
      { cause },
    )
    for (const e of entries) e.waiter?.reject(this.failure)
    this.dropBuffer(this.failure)
  }

  private dropBuffer(error: unknown): void {
    if (this.lingerTimer !== undefined) {
      clearTimeout(this.lingerTimer)
      this.lingerTimer = undefined
    }
    const dropped = this.buffer
    this.buffer = []
    for (const e of dropped) e.waiter?.reject(error)
    this.wakeRoomWaiters()
  }

  private wakeRoomWaiters(): void {
    const waiters = this.roomWaiters
    this.roomWaiters = []
    for (const wake of waiters) wake()
  }
}

/** `record` buffered for a topic of `count` partitions. */
function entryOf(record: OutgoingRecord, count: number, waiter: Waiter | undefined): Entry {
  const partition = partitionFor(record, count)
  return { message: toMessage(record, partition), partition, waiter }
}

function positive(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new BrokerError(`Producer option ${name} must be a whole number >= 1 (got ${value}).`)
  }
  return value
}
