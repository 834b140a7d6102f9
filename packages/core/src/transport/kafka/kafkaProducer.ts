/**
 * The batching, non-transactional producer over kafkajs: buffering, linger, one request in flight.
 * It does not do transactions (kafkaTransactions.ts) or pick kafkajs' client options.
 */
import type { CompressionTypes, RecordMetadata as KafkaRecordMetadata, Message, Producer } from 'kafkajs'
import { BrokerError, MephistoError } from '../../base/errors.js'
import { tpKey } from '../../base/topicPartition.js'
import { defaultPartition } from '../partitioner.js'
import type { OutgoingRecord, ProducerOptions, RecordMetadata, TransportProducer } from '../transport.js'
import { messageOf } from './kafkaErrors.js'

const DEFAULT_BATCH_SIZE = 500
const DEFAULT_LINGER_MS = 5
const DEFAULT_MAX_BUFFERED = 10_000
/**
 * Most records in one produce request. kafkajs groups a request's messages per partition with an
 * array spread per message (quadratic in records per partition), so very large requests cost
 * more CPU than they save in round trips.
 */
const MAX_REQUEST_RECORDS = 4_000

/** Options of `sendBatch` itself, not of the kafkajs producer; taken out of `kafka.producer`. */
export interface SendOptions {
  acks?: number
  timeout?: number
  compression?: CompressionTypes
}

interface Waiter {
  resolve: (meta: RecordMetadata) => void
  reject: (error: unknown) => void
}

interface Entry {
  topic: string
  partition: number
  message: Message
  waiter: Waiter | undefined
}

/**
 * A batching producer over kafkajs, which has no linger of its own. Records are buffered, given
 * their partition here (Kafka's default partitioner, as the memory broker does) and sent with
 * `sendBatch` when `batchSize` records are buffered, `lingerMs` has passed, or someone waits
 * (`sendAndWait`, `flush`). One request is in flight at a time: kafkajs retries a failed request
 * on its own, and two requests in flight could then land out of order in a partition. Records
 * buffered meanwhile go out together in the next request.
 *
 * A failed request poisons the producer: every later `send`, `sendAndWait` and `flush` rejects
 * with the failure. Records that were not written must never be followed by a successful flush,
 * or the runtime would commit input offsets whose outputs are lost.
 */
export class KafkaProducer implements TransportProducer {
  private buffer: Entry[] = []
  private inFlight: Promise<void> | null = null
  private inFlightRecords = 0
  private lingerTimer: NodeJS.Timeout | undefined
  /** Someone waits for the buffer to be sent (sendAndWait, flush): send without lingering. */
  private urgent = false
  private failure: MephistoError | undefined
  private closed = false
  private connecting: Promise<void> | undefined
  /** topic -> partition -> highest offset written since the last flush. */
  private written = new Map<string, Map<number, number>>()
  /** `send` calls waiting for room in the buffer. */
  private roomWaiters: (() => void)[] = []
  private readonly batchSize: number
  private readonly lingerMs: number
  private readonly maxBuffered: number

  constructor(
    private readonly producer: Producer,
    private readonly partitionCount: (topic: string) => Promise<number>,
    /** Cached partition counts; `partitionCount` fills it. Read synchronously on the hot path. */
    private readonly knownPartitionCounts: ReadonlyMap<string, number>,
    private readonly url: string,
    options: ProducerOptions = {},
    private readonly sendOptions: SendOptions = {},
  ) {
    this.batchSize = positive('batchSize', options.batchSize ?? DEFAULT_BATCH_SIZE)
    this.lingerMs = Math.max(0, options.lingerMs ?? DEFAULT_LINGER_MS)
    this.maxBuffered = positive('maxBufferedRecords', options.maxBufferedRecords ?? DEFAULT_MAX_BUFFERED)
  }

  async send(record: OutgoingRecord): Promise<void> {
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
      await this.disconnect()
    }
  }

  async abort(): Promise<void> {
    this.closed = true
    this.dropBuffer(new BrokerError('The producer was aborted before the record was sent.'))
    this.written = new Map()
    // A request already on the wire may still land, as after a real crash.
    await this.disconnect()
  }

  // ---- internals ------------------------------------------------------------------------------

  private async entry(record: OutgoingRecord, waiter: Waiter | undefined): Promise<Entry> {
    const { topic } = record
    this.assertUsable(topic)
    const count = this.knownPartitionCounts.get(topic) ?? (await this.partitionCount(topic))
    let partition = record.partition
    if (partition === undefined) partition = defaultPartition(record.key, count)
    else if (!Number.isInteger(partition) || partition < 0 || partition >= count) {
      throw new BrokerError(
        `Partition ${partition} of topic "${topic}" does not exist: it has ${count} partition(s), numbered from 0.`,
      )
    }
    const message: Message = { key: record.key, value: record.value, partition }
    if (record.headers !== undefined) message.headers = record.headers
    if (record.timestamp !== undefined) message.timestamp = String(record.timestamp)
    return { topic, partition, message, waiter }
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
    // Still urgent if what was waiting did not all fit in this request.
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
    const byTopic = new Map<string, Message[]>()
    for (const e of entries) {
      let messages = byTopic.get(e.topic)
      if (messages === undefined) byTopic.set(e.topic, (messages = []))
      messages.push(e.message)
    }
    let response: KafkaRecordMetadata[]
    try {
      await this.connect()
      response = await this.producer.sendBatch({
        ...this.sendOptions,
        topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
      })
    } catch (error) {
      this.fail(entries, error)
      return
    }
    // Records of one partition were appended in request order from its base offset.
    const next = new Map<string, number>()
    for (const r of response) {
      if (r.errorCode !== 0) {
        this.fail(entries, new Error(`${r.topicName}[${r.partition}] error code ${r.errorCode}`))
        return
      }
      next.set(tpKey(r.topicName, r.partition), Number(r.baseOffset))
    }
    for (const e of entries) {
      const key = tpKey(e.topic, e.partition)
      const offset = next.get(key)
      if (offset === undefined) {
        // acks: 0 gives no offsets; nothing can be promised about these records.
        e.waiter?.resolve({ topic: e.topic, partition: e.partition, offset: -1 })
        continue
      }
      next.set(key, offset + 1)
      let partitions = this.written.get(e.topic)
      if (partitions === undefined) this.written.set(e.topic, (partitions = new Map()))
      partitions.set(e.partition, offset)
      e.waiter?.resolve({ topic: e.topic, partition: e.partition, offset })
    }
  }

  private fail(entries: Entry[], cause: unknown): void {
    const topics = [...new Set(entries.map((e) => e.topic))].join(', ')
    this.failure ??= new MephistoError(
      'PRODUCER',
      `Sending ${entries.length} record(s) to ${topics} on ${this.url} failed: ${messageOf(cause)}. ` +
        'kafkajs retried it already; the records were not written. The producer refuses further ' +
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

  private connect(): Promise<void> {
    this.connecting ??= this.producer.connect().catch((error: unknown) => {
      this.connecting = undefined
      throw error
    })
    return this.connecting
  }

  private async disconnect(): Promise<void> {
    if (this.connecting === undefined) return
    this.connecting = undefined
    await this.producer.disconnect().catch(() => {})
  }
}

function positive(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new BrokerError(`Producer option ${name} must be a whole number >= 1 (got ${value}).`)
  }
  return value
}
