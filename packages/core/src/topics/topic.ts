import type { Headers, RecordMetadata } from '../transport/transport.js'
import type { Codec, CodecLike } from './codec.js'
import { json, resolveCodec, string } from './codec.js'

/** A message to send: the key picks the partition unless `partition` is given. */
export interface Message<K, V> {
  key?: K | null
  value: V
  headers?: Record<string, string | Buffer>
  partition?: number
  timestamp?: number
}

export interface TopicOptions<K, V> {
  /** Key codec or Standard Schema (default: UTF-8 strings). */
  key?: CodecLike<K>
  /** Value codec or Standard Schema (default: JSON). */
  value?: CodecLike<V>
  /** Partitions when Mephisto creates the topic (default: the app's `topicPartitions`). */
  partitions?: number
  /** Replication factor when Mephisto creates the topic (default: the app's `topicReplicas`). */
  replicas?: number
  /** Owned by this app (repartition, reply or output topics): created and reset with it. */
  internal?: boolean
  /** Compacted (`cleanup.policy=compact`). */
  compacted?: boolean
  retentionMs?: number
  /** Extra broker topic configs. */
  config?: Record<string, string>
  /**
   * Agents receive tombstones (records whose value is null, deletes on a compacted topic) as
   * `null`, without the value codec or schema. Default false: a tombstone is acked and skipped,
   * counted in {@link Topic.tombstonesSkipped} and logged at debug. Only for a topic whose value
   * type includes null: `app.topic<string, Order | null>('orders', { value: order, tombstones: true })`.
   */
  tombstones?: null extends V ? boolean : false
}

/** How a topic or channel reaches the running app. Implemented by the app. */
export interface TopicSender {
  sendTo(
    topic: Topic<any, any> | Channel<any>,
    message: Message<any, any>,
    wait: boolean,
  ): Promise<RecordMetadata | undefined>
}

const VALIDATE_ON_ENCODE = { validateOnEncode: true } as const

/** A Kafka topic (or a memory-broker topic) with typed keys and values. */
export class Topic<K = string, V = unknown> {
  readonly kind = 'topic' as const
  readonly keyCodec: Codec<K>
  readonly valueCodec: Codec<V>
  /**
   * Tombstones (null values) skipped on this topic since the app was built, because the topic
   * does not take them ({@link TopicOptions.tombstones}).
   */
  tombstonesSkipped = 0
  /** @internal */
  constructor(
    readonly name: string,
    readonly options: Readonly<TopicOptions<K, V>>,
    /** @internal */ readonly sender: TopicSender,
  ) {
    if (!name || typeof name !== 'string') throw new TypeError('a topic needs a name')
    if (!/^[a-zA-Z0-9._-]{1,249}$/.test(name)) {
      throw new TypeError(`invalid topic name ${JSON.stringify(name)}: use letters, digits, '.', '_' and '-'`)
    }
    // A schema checks what is sent, so a value the readers would dead-letter is refused at send.
    this.keyCodec = resolveCodec(options.key, string() as unknown as Codec<K>, 'key', VALIDATE_ON_ENCODE)
    this.valueCodec = resolveCodec(options.value, json<V>(), 'value', VALIDATE_ON_ENCODE)
  }

  /** Buffers the message for sending; resolves once buffered (waits when the buffer is full). */
  async send(message: Message<K, V>): Promise<void> {
    await this.sender.sendTo(this, message, false)
  }

  /** Sends the message and resolves with its partition and offset once the broker acked it. */
  async sendAndWait(message: Message<K, V>): Promise<RecordMetadata> {
    return (await this.sender.sendTo(this, message, true))!
  }
}

/** An in-process topic: same interface, no broker, no offsets to commit. */
export class Channel<V = unknown, K = unknown> {
  readonly kind = 'channel' as const
  /** @internal */
  constructor(
    readonly name: string,
    /** @internal */ readonly sender: TopicSender,
  ) {}

  async send(message: Message<K, V>): Promise<void> {
    await this.sender.sendTo(this, message, false)
  }

  async sendAndWait(message: Message<K, V>): Promise<RecordMetadata> {
    return (await this.sender.sendTo(this, message, true))!
  }
}

export function toHeaders(h: Record<string, string | Buffer> | undefined): Headers {
  const out: Headers = {}
  if (!h) return out
  for (const k of Object.keys(h)) {
    const v = h[k]
    if (v === undefined) continue
    out[k] = Buffer.isBuffer(v) ? v : Buffer.from(String(v), 'utf8')
  }
  return out
}
