/**
 * The `kafka://` transport: kafkajs clients with Mephisto's defaults, and the admin, reader,
 * consumers and producers made from them. It does not implement any of those itself.
 */
import type { Admin, ConsumerConfig, ConsumerRunConfig, KafkaConfig, ProducerConfig } from 'kafkajs'
import kafkajs from 'kafkajs'
import { BrokerError } from '../../base/errors.js'
import type { Logger } from '../../base/logger.js'
import { consoleLogger } from '../../base/logger.js'
import type {
  ConsumerOptions,
  PartitionRange,
  ProducerOptions,
  RawRecord,
  TransactionalProducer,
  Transport,
  TransportAdmin,
  TransportConsumer,
  TransportProducer,
} from '../transport.js'
import { KafkaAdmin } from './kafkaAdmin.js'
import { KafkaConsumer } from './kafkaConsumer.js'
import { mayRetry, messageOf } from './kafkaErrors.js'
import { kafkaLogCreator } from './kafkaLogger.js'
import type { SendOptions } from './kafkaProducer.js'
import { KafkaProducer } from './kafkaProducer.js'
import type { ReaderOptions } from './kafkaReader.js'
import { KafkaReader } from './kafkaReader.js'
import { KafkaTransactionalProducer } from './kafkaTransactions.js'

const { Kafka, logLevel } = kafkajs

/**
 * kafkajs options, passed through as they are and merged over Mephisto's defaults. See the
 * kafkajs docs for each: https://kafka.js.org/docs/configuration (client),
 * /docs/consuming (consumer, run), /docs/producing (producer).
 */
export interface KafkaClientOptions {
  /** `new Kafka(...)`: `ssl`, `sasl`, `connectionTimeout`, `requestTimeout`, `retry`, `logLevel`, ... */
  client?: Partial<KafkaConfig>
  /** `kafka.consumer(...)`: `sessionTimeout`, `rebalanceTimeout`, `heartbeatInterval`, fetch sizes, `maxWaitTimeInMs`, ... */
  consumer?: Partial<ConsumerConfig>
  /**
   * `kafka.producer(...)`, plus the per-request `acks`, `timeout` and `compression` that kafkajs
   * takes on each send (e.g. `compression: CompressionTypes.GZIP`).
   */
  producer?: ProducerConfig & SendOptions
  /** `consumer.run(...)`: `partitionsConsumedConcurrently`. Mephisto sets `eachBatch` and commits itself. */
  run?: Partial<ConsumerRunConfig>
  /** Table-recovery reads ({@link KafkaTransport.read}): fetch sizes and wait. */
  reader?: ReaderOptions
}

export interface KafkaTransportOptions {
  /** The kafkajs client id (seen in broker logs and quotas). Default `'mephisto'`. */
  clientId?: string
  /** Where kafkajs' log lines go. Default: stderr at warn. */
  logger?: Logger
  kafka?: KafkaClientOptions
}

/**
 * The `kafka://` transport: a Kafka cluster through kafkajs. One admin client and one reader
 * (table recovery) per transport; each consumer and producer gets a kafkajs client of its own.
 *
 * ```ts
 * const transport = new KafkaTransport(['127.0.0.1:9092'], {
 *   kafka: { client: { sasl: { mechanism: 'plain', username, password } } },
 * })
 * ```
 */
export class KafkaTransport implements Transport {
  readonly kind = 'kafka'
  readonly url: string
  readonly admin: TransportAdmin
  readonly brokers: readonly string[]
  private readonly logger: Logger
  private readonly kafkaOptions: KafkaClientOptions
  private readonly clientConfig: KafkaConfig
  private readonly kafkaAdmin: Admin
  private readonly reader: KafkaReader
  private readonly consumers = new Set<KafkaConsumer>()
  private readonly producers = new Set<KafkaProducer>()
  private readonly transactional = new Set<KafkaTransactionalProducer>()
  private readonly partitionCounts = new Map<string, number>()
  private connecting: Promise<void> | undefined

  constructor(brokers: string[], options: KafkaTransportOptions = {}) {
    if (brokers.length === 0) throw new BrokerError('KafkaTransport needs at least one broker host:port.')
    this.brokers = [...brokers]
    this.url = `kafka://${brokers.join(',')}`
    this.logger = options.logger ?? consoleLogger('warn', 'kafka')
    this.kafkaOptions = options.kafka ?? {}
    const client = this.kafkaOptions.client ?? {}
    this.clientConfig = {
      clientId: options.clientId ?? 'mephisto',
      brokers: [...brokers],
      // kafkajs' 1 s gives up too early on a loaded machine or a TLS handshake across regions.
      connectionTimeout: 3000,
      logLevel: logLevel.WARN,
      logCreator: kafkaLogCreator(this.logger),
      ...client,
      // About 10 s of retrying (0.3 s doubling, randomised) before an operation fails.
      retry: { initialRetryTime: 300, maxRetryTime: 30_000, retries: 5, ...client.retry },
    }
    this.kafkaAdmin = this.client().admin()
    this.admin = new KafkaAdmin(this.kafkaAdmin, this.url)
    this.reader = new KafkaReader(
      this.client(),
      this.url,
      (topic) => this.admin.startOffsets(topic),
      this.kafkaOptions.reader,
    )
  }

  /**
   * Connects the admin client. Fails with a {@link BrokerError} naming the brokers when none can
   * be reached or authentication fails, after kafkajs' retries with backoff.
   */
  connect(): Promise<void> {
    this.connecting ??= this.kafkaAdmin.connect().catch((error: unknown) => {
      this.connecting = undefined
      throw this.connectError(error)
    })
    return this.connecting
  }

  producer(options?: ProducerOptions): TransportProducer {
    const { acks, timeout, compression, ...config } = this.kafkaOptions.producer ?? {}
    const sendOptions: SendOptions = {}
    if (acks !== undefined) sendOptions.acks = acks
    if (timeout !== undefined) sendOptions.timeout = timeout
    if (compression !== undefined) sendOptions.compression = compression
    const kafkaProducer = this.client().producer({
      // KafkaProducer gives every message its partition; this only passes it on.
      createPartitioner: () => (args) => args.message.partition ?? 0,
      ...config,
      allowAutoTopicCreation: false,
    })
    const producer = new KafkaProducer(
      kafkaProducer,
      (topic) => this.partitionCount(topic),
      this.partitionCounts,
      this.url,
      options,
      sendOptions,
    )
    this.producers.add(producer)
    return producer
  }

  async transactionalProducer(transactionalId: string): Promise<TransactionalProducer> {
    const { acks: _acks, timeout, compression, ...config } = this.kafkaOptions.producer ?? {}
    const sendOptions: SendOptions = {}
    if (timeout !== undefined) sendOptions.timeout = timeout
    if (compression !== undefined) sendOptions.compression = compression
    const kafkaProducer = this.client().producer({
      createPartitioner: () => (args) => args.message.partition ?? 0,
      ...config,
      transactionalId,
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
    })
    const producer = new KafkaTransactionalProducer(
      kafkaProducer,
      transactionalId,
      (topic) => this.partitionCount(topic),
      this.url,
      sendOptions,
    )
    await producer.init()
    this.transactional.add(producer)
    return producer
  }

  consumer(options: ConsumerOptions): TransportConsumer {
    const consumer = new KafkaConsumer(
      {
        kafka: this.client(),
        admin: this.admin,
        logger: this.logger,
        url: this.url,
        consumerConfig: this.kafkaOptions.consumer ?? {},
        runConfig: this.kafkaOptions.run ?? {},
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
    await this.reader.close()
    if (this.connecting !== undefined) {
      this.connecting = undefined
      await this.kafkaAdmin.disconnect().catch(() => {})
    }
  }

  /** A fresh kafkajs client: kafkajs caches committed offsets per client, shared by its consumers. */
  private client(): InstanceType<typeof Kafka> {
    return new Kafka(this.clientConfig)
  }

  /** Partition count of a topic the producer writes to; cached, as topics do not shrink. */
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
    const text = messageOf(error)
    const cause = (error as { cause?: unknown } | null)?.cause
    const detail = cause !== undefined && messageOf(cause) !== text ? `${text} (${messageOf(cause)})` : text
    const sasl = this.clientConfig.sasl
    if (/SASL|authenticat/i.test(detail)) {
      const user = sasl && 'username' in sasl ? ` as "${sasl.username}"` : ''
      return new BrokerError(
        `Kafka at ${this.brokers.join(',')} refused authentication${user}` +
          `${sasl ? ` (SASL ${sasl.mechanism})` : ''}: ${detail}. Check the username and password in ` +
          'kafka.client.sasl and that the mechanism is enabled on the listener.',
        { cause: error },
      )
    }
    return new BrokerError(
      `Cannot connect to Kafka at ${this.brokers.join(',')}: ${detail}. Check that the brokers run, that ` +
        'these host:port pairs are reachable from here (and that advertised.listeners names an address ' +
        `this machine can reach)${sasl || this.clientConfig.ssl ? ', and the SASL/SSL settings' : ''}.`,
      { cause: error, retriable: mayRetry(error) },
    )
  }
}
