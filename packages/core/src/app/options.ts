/**
 * The app's options: their types, every default written once, and the validation done when the
 * App is constructed (a message names the option and says what it takes). The worker reads the
 * resolved values (`AppSettings`), never `?? default` of its own.
 */
import { ConfigurationError } from '../base/errors.js'
import type { Logger, LogLevel } from '../base/logger.js'
import type { MonitorOptions } from '../sensors/monitor.js'
import type { Store } from '../stores/store.js'
import type { KafkaOptions, TransportFactory } from '../transport/createTransport.js'
import type { WebOptions } from '../web/page.js'
import { DEFAULT_WEB_HOST, DEFAULT_WEB_PORT } from '../web/webServer.js'
import type { WorkerSettings } from '../worker/host.js'

export type { KafkaOptions, TransportFactory } from '../transport/createTransport.js'

export type ProcessingGuarantee = 'at_least_once' | 'exactly_once'

export interface AppOptions {
  /** The app's name; also the consumer group id and the prefix of its internal topics. */
  id: string
  /** `memory://` (default), `memory://name`, `kafka://host:9092,...`, `host:9092,...` or an array of hosts. */
  broker?: string | string[]
  /**
   * The Kafka client: `'kafkajs'`, the name of a transport package that registered itself (such
   * as `'platformatic'` from `@mephisto/transport-platformatic`), or a factory of a transport
   * made from `broker` and the app's id, logger and kafka options. Default: `MEPHISTO_TRANSPORT`
   * when set, else kafkajs (or the client a `<name>://` broker URL names). `memory://` brokers
   * ignore it.
   */
  transport?: TransportFactory | string
  /** Default table store: `memory://` (default) or a Store such as `rocksdbStore({ path })`. */
  store?: Store | string
  /** Default `'at_least_once'`. */
  processingGuarantee?: ProcessingGuarantee
  /** Commit offsets this often (ms, app clock). Default 2800. */
  commitIntervalMs?: number
  /** ...or after this many acks, whichever comes first. Default 10 000. */
  commitEvery?: number
  /** Partitions of topics Mephisto creates when none are given. Default 8. */
  topicPartitions?: number
  /** Replication factor of topics Mephisto creates. Default 1. */
  topicReplicas?: number
  /** Events buffered per agent before the consumer waits. Default 1000. */
  maxBufferedEvents?: number
  /** How long a rebalance or stop waits for events in progress to finish. Default 30 000 ms. */
  drainTimeoutMs?: number
  /** A logger, or the level of the built-in stderr logger. Default `'info'`. */
  logger?: Logger | LogLevel
  /** Where new partitions start when the group has no committed offset. Default `'earliest'`. */
  autoOffsetReset?: 'earliest' | 'latest'
  /** How often standby replicas read their changelogs' new records (ms, app clock). Default 1000. */
  standbyIntervalMs?: number
  /** kafkajs options for `kafka://` brokers. */
  kafka?: KafkaOptions
  /**
   * Options of the `platformatic` transport (`@mephisto/transport-platformatic`), passed to it as they
   * are: `client` (SASL, TLS, timeouts), `consumer` (static membership id, session timeout, fetch
   * sizes), `producer`, `reader`. See that package's README.
   */
  platformatic?: Record<string, unknown>
  /**
   * The worker's web server (`/health`, `/stats`, `/tables/...`, the dashboard at `/`, custom pages):
   * `false` turns it off. Default: on, at 127.0.0.1:6066, unless `start()` is given a transport (the
   * testkit, tests), where it is off unless asked for here, so tests never open ports by accident.
   */
  web?: false | WebOptions
  /**
   * Options of `app.monitor`, the monitor behind `/stats` and the dashboard: `rateWindowMs`,
   * `maxLatencySamples`, `eventTimingsPerSec` (default 10 000 event runtimes timed a second), `now`.
   */
  monitor?: MonitorOptions
}

/** Every default, once. */
export const DEFAULTS = {
  broker: 'memory://',
  store: 'memory://',
  processingGuarantee: 'at_least_once',
  commitIntervalMs: 2800,
  commitEvery: 10_000,
  topicPartitions: 8,
  maxBufferedEvents: 1000,
  drainTimeoutMs: 30_000,
  logLevel: 'info',
  autoOffsetReset: 'earliest',
  standbyIntervalMs: 1000,
  webPort: DEFAULT_WEB_PORT,
  webHost: DEFAULT_WEB_HOST,
} as const

/** The options an app runs by, defaults filled in. */
export interface AppSettings extends WorkerSettings {
  readonly broker: string | string[]
  readonly store: Store | string
  /** Undefined: on unless `start()` is given a transport. */
  readonly web: false | WebOptions | undefined
}

const KNOWN = new Set<string>([
  'id',
  'broker',
  'transport',
  'store',
  'processingGuarantee',
  'commitIntervalMs',
  'commitEvery',
  'topicPartitions',
  'topicReplicas',
  'maxBufferedEvents',
  'drainTimeoutMs',
  'logger',
  'autoOffsetReset',
  'standbyIntervalMs',
  'kafka',
  'platformatic',
  'web',
  'monitor',
] satisfies (keyof AppOptions)[])

const POSITIVE_INTEGERS = [
  'commitIntervalMs',
  'commitEvery',
  'topicPartitions',
  'maxBufferedEvents',
  'topicReplicas',
  'standbyIntervalMs',
] as const

/** Checks the options as given and fills in the defaults. Throws a ConfigurationError naming the option. */
export function resolveAppOptions(options: AppOptions): AppSettings {
  if (!options || typeof options.id !== 'string' || !/^[a-zA-Z0-9._-]{1,200}$/.test(options.id)) {
    throw new ConfigurationError(
      `App needs an id of letters, digits, '.', '_' and '-' (got ${JSON.stringify(options?.id)})`,
    )
  }
  const id = options.id
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) {
      throw new ConfigurationError(
        `App ${id}: unknown option ${JSON.stringify(key)}. Known options: ${[...KNOWN].join(', ')}`,
      )
    }
  }
  for (const k of POSITIVE_INTEGERS) {
    const v = options[k]
    if (v !== undefined && !(Number.isInteger(v) && v > 0)) {
      throw new ConfigurationError(`App ${id}: ${k} must be a positive integer (got ${v})`)
    }
  }
  const drain = options.drainTimeoutMs
  if (drain !== undefined && !(Number.isFinite(drain) && drain >= 0)) {
    throw new ConfigurationError(`App ${id}: drainTimeoutMs must be a number of ms, 0 or more (got ${drain})`)
  }
  if (
    options.processingGuarantee &&
    !['at_least_once', 'exactly_once'].includes(options.processingGuarantee)
  ) {
    throw new ConfigurationError(`App ${id}: processingGuarantee must be 'at_least_once' or 'exactly_once'`)
  }
  if (options.autoOffsetReset && !['earliest', 'latest'].includes(options.autoOffsetReset)) {
    throw new ConfigurationError(`App ${id}: autoOffsetReset must be 'earliest' or 'latest'`)
  }
  if (
    options.transport !== undefined &&
    typeof options.transport !== 'function' &&
    typeof options.transport !== 'string'
  ) {
    throw new ConfigurationError(
      `App ${id}: transport must be a client name ('kafkajs', 'platformatic', ...) or a function (broker, options) => Transport`,
    )
  }
  return {
    broker: options.broker ?? DEFAULTS.broker,
    store: options.store ?? DEFAULTS.store,
    processingGuarantee: options.processingGuarantee ?? DEFAULTS.processingGuarantee,
    commitIntervalMs: options.commitIntervalMs ?? DEFAULTS.commitIntervalMs,
    commitEvery: options.commitEvery ?? DEFAULTS.commitEvery,
    topicPartitions: options.topicPartitions ?? DEFAULTS.topicPartitions,
    topicReplicas: options.topicReplicas,
    maxBufferedEvents: options.maxBufferedEvents ?? DEFAULTS.maxBufferedEvents,
    drainTimeoutMs: options.drainTimeoutMs ?? DEFAULTS.drainTimeoutMs,
    autoOffsetReset: options.autoOffsetReset ?? DEFAULTS.autoOffsetReset,
    standbyIntervalMs: options.standbyIntervalMs ?? DEFAULTS.standbyIntervalMs,
    web: options.web,
  }
}
