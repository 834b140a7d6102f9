/**
 * The `platformatic` transport: @platformatic/kafka clients with Mephisto's defaults, and the
 * admin, reader, consumers and producers made from them. It does not implement any of those itself.
 */

import { setTimeout as sleep } from 'node:timers/promises'
import type {
  ConsumerOptions,
  KafkaOptions,
  Logger,
  PartitionRange,
  ProducerOptions,
  RawRecord,
  TransactionalProducer,
  Transport,
  TransportConsumer,
  TransportProducer,
} from '@mephisto/core'
import { BrokerError, consoleLogger } from '@mephisto/core'
import type { ProducerOptions as PlatformaticProducerOptions } from '@platformatic/kafka'
import { PlatformaticAdmin } from './admin.js'
import { KafkaClient } from './client.js'
import { PlatformaticConsumer } from './consumer.js'
import { GroupCoordinator } from './coordinator.js'
import { EncodingProducer } from './encodingProducer.js'
import { hasKafkaError, mayRetry, messageOf } from './errors.js'
import { defaultInstanceId } from './instanceId.js'
import type { PlatformaticOptions, Settings } from './options.js'
import { resolveSettings } from './options.js'
import { PlatformaticProducer } from './producer.js'
import { RangeReader } from './reader.js'
import type { OffsetCommitter } from './transactions.js'
import { PlatformaticTransactionalProducer } from './transactions.js'

/** Kafka's default transaction timeout, which platformatic takes from its request `timeout`. */
const TRANSACTION_TIMEOUT_MS = 60_000
/** How long registering a transactional id waits for the previous holder's transaction to end. */
const FENCE_WAIT_MS = 30_000

export interface PlatformaticTransportOptions {
  /** The client id (seen in broker logs and quotas). Default `'mephisto'`. */
  clientId?: string
  /** Where the transport's warnings go. Default: stderr at warn. */
  logger?: Logger
  /** @platformatic/kafka options, passed through (see {@link PlatformaticOptions}). */
  platformatic?: PlatformaticOptions
  /**
   * The app's kafkajs options: what they share with this client is read from them when
   * `platformatic` does not say it (SASL PLAIN/SCRAM, SSL, connection and request timeouts, the
   * consumer's session, rebalance and heartbeat timeouts, wait time and fetch sizes).
   */
  kafka?: KafkaOptions
}

/**
 * A Kafka cluster through @platformatic/kafka. One admin client and one reader per transport; each
 * consumer gets clients of its own (group coordination, fetching), each producer one.
 *
 * ```ts
 * const transport = new PlatformaticTransport(['127.0.0.1:9092'], {
 *   platformatic: { client: { sasl: { mechanism: 'PLAIN', username, password } } },
 * })
 * ```
 */
export class PlatformaticTransport implements Transport {
  readonly kind = 'platformatic'
  readonly url: string
  readonly admin: PlatformaticAdmin
  readonly brokers: readonly string[]
  readonly settings: Settings
  private readonly logger: Logger
  private readonly control: KafkaClient
  private readonly reader: RangeReader
  private readonly coordinators = new Map<string, GroupCoordinator>()
  private readonly consumers = new Set<PlatformaticConsumer>()
  private readonly producers = new Set<PlatformaticProducer>()
  private readonly transactional = new Set<PlatformaticTransactionalProducer>()
  private readonly partitionCounts = new Map<string, number>()
  private connecting: Promise<void> | undefined

  constructor(brokers: string[], options: PlatformaticTransportOptions = {}) {
    if (brokers.length === 0)
      throw new BrokerError('PlatformaticTransport needs at least one broker host:port.')
    this.brokers = [...brokers]
    this.url = `platformatic://${brokers.join(',')}`
    this.logger = options.logger ?? consoleLogger('warn', 'platformatic')
    this.settings = resolveSettings(options.clientId ?? 'mephisto', options.platformatic, options.kafka, () =>
      defaultInstanceId(),
    )
    this.control = new KafkaClient(brokers, this.settings.client)
    this.admin = new PlatformaticAdmin(this.control, this.url)
    this.reader = new RangeReader(this.control, this.url, this.settings.reader, (topic) =>
      this.admin.startOffsets(topic),
    )
  }

  /** Reaches the cluster. Fails with a {@link BrokerError} naming the brokers (and SASL) when it cannot. */
  connect(): Promise<void> {
    this.connecting ??= this.control.metadata([], true).then(
      () => {},
      (error: unknown) => {
        this.connecting = undefined
        throw this.connectError(error)
      },
    )
    return this.connecting
  }

  producer(options?: ProducerOptions): TransportProducer {
    const producer = new PlatformaticProducer(
      new EncodingProducer<Buffer, Buffer, Buffer, Buffer>({
        ...this.producerOptions(),
        autocreateTopics: false,
        // Idempotent when every replica acknowledges (as Kafka's Java client is by default): a request
        // retried after a timeout is not written twice. A loaded machine wrote 37 of 60 records twice
        // in the conformance test without it.
        idempotent: this.settings.producer.acks === -1,
      }),
      (topic) => this.partitionCount(topic),
      this.partitionCounts,
      this.url,
      this.settings.producer.acks,
      options,
    )
    this.producers.add(producer)
    return producer
  }

  /** The per-partition-number model: offsets committed without a group membership. */
  transactionalProducer(transactionalId: string): Promise<TransactionalProducer> {
    return this.registerTransactional(transactionalId, {
      coordinator: (groupId) => this.coordinatorOf(groupId),
    })
  }

  consumer(options: ConsumerOptions): TransportConsumer {
    const consumer = new PlatformaticConsumer(
      {
        brokers: this.brokers,
        url: this.url,
        settings: this.settings,
        logger: this.logger,
        admin: this.admin,
        transactional: (id, offsets) => this.registerTransactional(id, offsets),
      },
      options,
    )
    this.consumers.add(consumer)
    return consumer
  }

  read(
    topic: string,
    ranges: PartitionRange[],
    onRecords: (records: RawRecord[]) => void | Promise<void>,
  ): Promise<void> {
    return this.reader.read(topic, ranges, onRecords)
  }

  /** Stops the consumers still running (revoking their partitions), closes producers and clients. */
  async close(): Promise<void> {
    await Promise.all(Array.from(this.consumers, (c) => c.stop().catch(() => {})))
    await Promise.all(Array.from(this.producers, (p) => p.close().catch(() => {})))
    await Promise.all(Array.from(this.transactional, (p) => p.close()))
    this.consumers.clear()
    this.producers.clear()
    this.transactional.clear()
    this.coordinators.clear()
    this.connecting = undefined
    await this.control.close()
  }

  private async registerTransactional(id: string, offsets: OffsetCommitter): Promise<TransactionalProducer> {
    const deadline = Date.now() + FENCE_WAIT_MS
    for (;;) {
      const producer = new PlatformaticTransactionalProducer(
        new EncodingProducer<Buffer, Buffer, Buffer, Buffer>({
          ...this.producerOptions(),
          autocreateTopics: false,
          idempotent: true,
          transactionalId: id,
          timeout: Math.max(this.settings.client.timeout ?? 0, TRANSACTION_TIMEOUT_MS),
        }),
        id,
        (topic) => this.partitionCount(topic),
        this.partitionCounts,
        offsets,
        this.url,
      )
      try {
        await producer.init()
        this.transactional.add(producer)
        return producer
      } catch (error) {
        // The previous holder's transaction is still being aborted: registering again soon succeeds.
        const concurrent = hasKafkaError((error as { cause?: unknown }).cause, 'CONCURRENT_TRANSACTIONS')
        if (!concurrent || Date.now() > deadline) throw error
        await sleep(200)
      }
    }
  }

  private producerOptions(): PlatformaticProducerOptions<Buffer, Buffer, Buffer, Buffer> {
    const { compression } = this.settings.producer
    return {
      ...this.settings.client,
      bootstrapBrokers: [...this.brokers],
      ...(compression === undefined ? {} : { compression }),
    }
  }

  private coordinatorOf(groupId: string): { client: KafkaClient; coordinator: GroupCoordinator } {
    let coordinator = this.coordinators.get(groupId)
    if (coordinator === undefined)
      this.coordinators.set(groupId, (coordinator = new GroupCoordinator(this.control, groupId)))
    return { client: this.control, coordinator }
  }

  /** Partition count of a topic a producer writes to; cached, as topics do not shrink. */
  private async partitionCount(topic: string): Promise<number> {
    const cached = this.partitionCounts.get(topic)
    if (cached !== undefined) return cached
    const count = await this.admin.partitionCount(topic)
    if (count === undefined) {
      throw new BrokerError(
        `Cannot send to topic "${topic}": it does not exist on ${this.url}. ` +
          'Create it first (admin.ensureTopics); Mephisto does not let the broker auto-create topics.',
      )
    }
    this.partitionCounts.set(topic, count)
    return count
  }

  private connectError(error: unknown): BrokerError {
    const detail = messageOf(error)
    const sasl = this.settings.client.sasl
    if (/SASL|authenticat/i.test(detail)) {
      const user = sasl && typeof sasl.username === 'string' ? ` as "${sasl.username}"` : ''
      return new BrokerError(
        `Kafka at ${this.brokers.join(',')} refused authentication${user}` +
          `${sasl ? ` (SASL ${sasl.mechanism})` : ''}: ${detail}. Check the username and password in ` +
          'platformatic.client.sasl (or kafka.client.sasl) and that the mechanism is enabled on the listener.',
        { cause: error },
      )
    }
    return new BrokerError(
      `Cannot connect to Kafka at ${this.brokers.join(',')}: ${detail}. Check that the brokers run, that ` +
        'these host:port pairs are reachable from here (and that advertised.listeners names an address ' +
        `this machine can reach)${sasl || this.settings.client.tls ? ', and the SASL/TLS settings' : ''}.`,
      { cause: error, retriable: mayRetry(error) },
    )
  }
}
