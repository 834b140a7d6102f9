/**
 * The options of the platformatic transport: every default written once, every option checked when
 * the transport is made (an error names the option), and what the app's kafkajs options share with
 * this client (SASL, TLS, timeouts, fetch sizes) read from them so an app switches client with one
 * setting. It does not create clients.
 */
import type { KafkaOptions } from '@mephisto/core'
import { ConfigurationError } from '@mephisto/core'
import type { CompressionAlgorithmValue, SASLOptions } from '@platformatic/kafka'
import type { ClientOptions } from './client.js'

/** Group membership and fetching. */
export interface PlatformaticConsumerOptions {
  /**
   * The static membership id (KIP-345) of this worker: a member that restarts with the same id
   * within `sessionTimeout` gets its partitions back without a rebalance. `false` joins as a
   * dynamic member. Default: `MEPHISTO_INSTANCE_ID` (`<it>-w<pool index>` in a `--workers` pool),
   * else `<host name>-w<pool index>` (the index from `MEPHISTO_WORKER_INDEX`, 0 for a lone worker).
   * Several consumers of one group in one process get `<id>`, `<id>.2`, `<id>.3`, ...
   */
  groupInstanceId?: string | false
  /** How long the group waits for a silent member before it moves its partitions. Default 30 000 ms. */
  sessionTimeout?: number
  /** How long the group waits for every member to rejoin in a rebalance. Default 60 000 ms. */
  rebalanceTimeout?: number
  /** How often the member heartbeats. Default 3000 ms. */
  heartbeatInterval?: number
  /** How long a fetch may wait for records. Default 500 ms. */
  maxWaitTime?: number
  /** Most bytes per fetch response. Default 16 MiB. */
  maxBytes?: number
  /** Most bytes per partition per fetch. Default 1 MiB. */
  maxBytesPerPartition?: number
}

/** Producing. */
export interface PlatformaticProducerOptions {
  /** Acknowledgements a non-transactional write waits for: -1 (all in-sync replicas, the default), 1 or 0. */
  acks?: number
  /** `'none'` (default), `'gzip'`, `'snappy'`, `'lz4'` or `'zstd'`. */
  compression?: CompressionAlgorithmValue
}

/** Reads outside any group (table recovery). */
export interface PlatformaticReaderOptions {
  /** Most bytes per partition per fetch. Default 4 MiB. */
  maxBytesPerPartition?: number
  /** Most bytes per fetch response. Default 16 MiB. */
  maxBytes?: number
  /** How long a fetch may wait (records of an open transaction). Default 100 ms. */
  maxWaitTime?: number
}

/** `@platformatic/kafka` options, passed through: `AppOptions.platformatic`. */
export interface PlatformaticOptions {
  /**
   * Options of every platformatic client (see its Base Client docs), passed through as they are:
   * `sasl` (`{ mechanism: 'PLAIN' | 'SCRAM-SHA-256' | 'SCRAM-SHA-512' | 'OAUTHBEARER', username,
   * password, token }`), `tls`, `connectTimeout`, `requestTimeout`, `retries`, `retryDelay`,
   * `metadataMaxAge`, `clientId`, ...
   */
  client?: ClientOptions
  consumer?: PlatformaticConsumerOptions
  producer?: PlatformaticProducerOptions
  reader?: PlatformaticReaderOptions
}

/** What the options resolve to. */
export interface Settings {
  client: ClientOptions & { clientId: string }
  consumer: Required<Omit<PlatformaticConsumerOptions, 'groupInstanceId'>> & {
    /** The base static membership id, or undefined for dynamic membership. */
    groupInstanceId: string | undefined
  }
  producer: { acks: number; compression: CompressionAlgorithmValue | undefined }
  reader: Required<PlatformaticReaderOptions>
}

const DEFAULTS = {
  connectTimeout: 5_000,
  sessionTimeout: 30_000,
  rebalanceTimeout: 60_000,
  heartbeatInterval: 3_000,
  maxWaitTime: 500,
  maxBytes: 16 * 1024 * 1024,
  maxBytesPerPartition: 1024 * 1024,
  readerMaxBytesPerPartition: 4 * 1024 * 1024,
  readerMaxWaitTime: 100,
  acks: -1,
  retries: 5,
} as const

/**
 * The default wait before a retry: 50 ms, doubling up to 1 s (50, 100, 200, 400, 800 over the
 * five retries: 1.55 s in all, about the 5 x 300 ms it replaced). Exponential like the Java
 * client's (KIP-580), so the common short hiccup, a partition created a moment ago that has no
 * leader yet, costs 50 ms and not 300 (one in two app start-ups on a fresh cluster hit it).
 */
export function defaultRetryDelay(_client: unknown, _operation: string, attempt: number): number {
  return Math.min(50 * 2 ** Math.max(0, attempt - 1), 1_000)
}

const SECTIONS = ['client', 'consumer', 'producer', 'reader']
const CONSUMER_KEYS = [
  'groupInstanceId',
  'sessionTimeout',
  'rebalanceTimeout',
  'heartbeatInterval',
  'maxWaitTime',
  'maxBytes',
  'maxBytesPerPartition',
]
const PRODUCER_KEYS = ['acks', 'compression']
const READER_KEYS = ['maxBytesPerPartition', 'maxBytes', 'maxWaitTime']
const COMPRESSIONS = ['none', 'gzip', 'snappy', 'lz4', 'zstd']

/**
 * Resolves the options: `platformatic` first, then what `kafka` (the app's kafkajs options) says of
 * the same things, then the defaults. `instanceId` is the default static membership id.
 */
export function resolveSettings(
  clientId: string,
  platformatic: PlatformaticOptions | undefined,
  kafka: KafkaOptions | undefined,
  defaultInstanceId: () => string,
): Settings {
  const p = platformatic ?? {}
  checkKeys('platformatic', p, SECTIONS)
  checkKeys('platformatic.consumer', p.consumer ?? {}, CONSUMER_KEYS)
  checkKeys('platformatic.producer', p.producer ?? {}, PRODUCER_KEYS)
  checkKeys('platformatic.reader', p.reader ?? {}, READER_KEYS)
  const kjsClient = (kafka?.client ?? {}) as Record<string, unknown>
  const kjsConsumer = (kafka?.consumer ?? {}) as Record<string, unknown>
  const fromKafkajs: ClientOptions = {}
  const sasl = kafkajsSasl(kjsClient.sasl)
  if (sasl !== undefined) fromKafkajs.sasl = sasl
  if (kjsClient.ssl !== undefined && kjsClient.ssl !== false) {
    fromKafkajs.tls = kjsClient.ssl === true ? {} : (kjsClient.ssl as NonNullable<ClientOptions['tls']>)
  }
  if (typeof kjsClient.connectionTimeout === 'number')
    fromKafkajs.connectTimeout = kjsClient.connectionTimeout
  if (typeof kjsClient.requestTimeout === 'number') fromKafkajs.requestTimeout = kjsClient.requestTimeout
  const client = {
    connectTimeout: DEFAULTS.connectTimeout,
    retries: DEFAULTS.retries,
    retryDelay: defaultRetryDelay as NonNullable<ClientOptions['retryDelay']>,
    ...fromKafkajs,
    ...p.client,
    clientId: p.client?.clientId ?? clientId,
  }
  const c = p.consumer ?? {}
  const kjs = (name: string): number | undefined =>
    typeof kjsConsumer[name] === 'number' ? (kjsConsumer[name] as number) : undefined
  const consumer = {
    sessionTimeout: positive(
      'consumer.sessionTimeout',
      c.sessionTimeout ?? kjs('sessionTimeout'),
      DEFAULTS.sessionTimeout,
    ),
    rebalanceTimeout: positive(
      'consumer.rebalanceTimeout',
      c.rebalanceTimeout ?? kjs('rebalanceTimeout'),
      DEFAULTS.rebalanceTimeout,
    ),
    heartbeatInterval: positive(
      'consumer.heartbeatInterval',
      c.heartbeatInterval ?? kjs('heartbeatInterval'),
      DEFAULTS.heartbeatInterval,
    ),
    maxWaitTime: positive(
      'consumer.maxWaitTime',
      c.maxWaitTime ?? kjs('maxWaitTimeInMs'),
      DEFAULTS.maxWaitTime,
    ),
    maxBytes: positive('consumer.maxBytes', c.maxBytes ?? kjs('maxBytes'), DEFAULTS.maxBytes),
    maxBytesPerPartition: positive(
      'consumer.maxBytesPerPartition',
      c.maxBytesPerPartition ?? kjs('maxBytesPerPartition'),
      DEFAULTS.maxBytesPerPartition,
    ),
    groupInstanceId: instanceIdOption(c.groupInstanceId, defaultInstanceId),
  }
  if (consumer.heartbeatInterval >= consumer.sessionTimeout) {
    throw new ConfigurationError(
      `platformatic.consumer.heartbeatInterval (${consumer.heartbeatInterval} ms) must be less than sessionTimeout (${consumer.sessionTimeout} ms)`,
    )
  }
  const acks = p.producer?.acks ?? DEFAULTS.acks
  if (![-1, 0, 1].includes(acks)) {
    throw new ConfigurationError(`platformatic.producer.acks must be -1, 0 or 1 (got ${acks})`)
  }
  const compression = p.producer?.compression
  if (compression !== undefined && !COMPRESSIONS.includes(compression)) {
    throw new ConfigurationError(
      `platformatic.producer.compression must be one of ${COMPRESSIONS.join(', ')} (got ${JSON.stringify(compression)})`,
    )
  }
  const r = p.reader ?? {}
  return {
    client,
    consumer,
    producer: { acks, compression },
    reader: {
      maxBytesPerPartition: positive(
        'reader.maxBytesPerPartition',
        r.maxBytesPerPartition,
        DEFAULTS.readerMaxBytesPerPartition,
      ),
      maxBytes: positive('reader.maxBytes', r.maxBytes, DEFAULTS.maxBytes),
      maxWaitTime: positive('reader.maxWaitTime', r.maxWaitTime, DEFAULTS.readerMaxWaitTime),
    },
  }
}

function checkKeys(where: string, value: object, known: readonly string[]): void {
  if (typeof value !== 'object' || value === null) {
    throw new ConfigurationError(`${where} must be an object`)
  }
  if (where === 'platformatic.client') return
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) {
      throw new ConfigurationError(
        `${where}: unknown option ${JSON.stringify(key)}. Known options: ${known.join(', ')}`,
      )
    }
  }
}

function positive(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback
  if (!Number.isInteger(v) || v < 1) {
    throw new ConfigurationError(`platformatic.${name} must be a whole number >= 1 (got ${value})`)
  }
  return v
}

function instanceIdOption(value: string | false | undefined, fallback: () => string): string | undefined {
  if (value === false) return undefined
  const id = value ?? fallback()
  if (typeof id !== 'string' || !/^[\w.:-]{1,200}$/.test(id)) {
    throw new ConfigurationError(
      `platformatic.consumer.groupInstanceId must be letters, digits, '.', ':', '_' and '-' (got ${JSON.stringify(id)}), or false for dynamic membership`,
    )
  }
  return id
}

/** kafkajs' `sasl` option as platformatic's, for the mechanisms both name alike. */
function kafkajsSasl(sasl: unknown): SASLOptions | undefined {
  if (sasl === undefined || sasl === null) return undefined
  const { mechanism, username, password } = sasl as {
    mechanism?: string
    username?: string
    password?: string
  }
  const upper = String(mechanism ?? '').toUpperCase()
  if (upper !== 'PLAIN' && upper !== 'SCRAM-SHA-256' && upper !== 'SCRAM-SHA-512') {
    throw new ConfigurationError(
      `kafka.client.sasl mechanism ${JSON.stringify(mechanism)} cannot be carried over to @platformatic/kafka: ` +
        'set platformatic.client.sasl instead (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER or GSSAPI)',
    )
  }
  const result: SASLOptions = { mechanism: upper as SASLOptions['mechanism'] }
  if (username !== undefined) result.username = username
  if (password !== undefined) result.password = password
  return result
}
