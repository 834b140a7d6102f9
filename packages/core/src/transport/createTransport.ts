/**
 * From the app's `broker` option to a Transport: `memory://` and `memory://name` give the
 * in-process broker of that name; anything else is a Kafka bootstrap list, served by kafkajs or by
 * a Kafka client of another package that registered itself under a name (`registerTransport`),
 * chosen by `client` or by the scheme of the broker URL (`<name>://host:port`). A transport of
 * another package may also be given as a factory (`AppOptions.transport`), bypassing all this.
 */
import { ConfigurationError } from '../base/errors.js'
import type { Logger, LogLevel } from '../base/logger.js'
import { consoleLogger } from '../base/logger.js'
import type { KafkaTransportOptions } from './kafka/kafkaTransport.js'
import { KafkaTransport } from './kafka/kafkaTransport.js'
import { memoryBroker } from './memory/memoryBroker.js'
import { MemoryTransport } from './memory/memoryTransport.js'
import type { Transport } from './transport.js'

/** kafkajs options passed through as they are (see the kafkajs docs for each). */
export interface KafkaOptions {
  client?: Record<string, unknown>
  consumer?: Record<string, unknown>
  producer?: Record<string, unknown>
  run?: Record<string, unknown>
}

/** What a transport is made from, besides the broker address. */
export interface TransportOptions {
  /** The app id: the client id on the broker. */
  id: string
  /** The app's logger, or the level of the built-in one. */
  logger?: Logger | LogLevel
  /** kafkajs options for `kafka://` brokers. */
  kafka?: KafkaOptions
  /** Options of the `platformatic` transport package, passed through to its factory. */
  platformatic?: Record<string, unknown>
  /**
   * The Kafka client: `kafkajs` (the default) or the name of a registered transport (see
   * `registerTransport`; `MEPHISTO_TRANSPORT` sets it for apps that do not).
   */
  client?: string
}

/** Makes the transport of a third-party package (`AppOptions.transport`). */
export type TransportFactory = (broker: string | string[], options: TransportOptions) => Transport

const registered = new Map<string, TransportFactory>()

/** The Kafka client every app uses unless told otherwise. */
export const DEFAULT_KAFKA_CLIENT = 'kafkajs'

/**
 * Makes a transport package's Kafka client available by `name`: to `AppOptions.transport` as a
 * string, to `MEPHISTO_TRANSPORT`, and as the broker URL scheme `<name>://host:port`. A package
 * calls it when it is imported; registering a name again replaces the factory.
 */
export function registerTransport(name: string, factory: TransportFactory): void {
  if (
    !/^[a-z][a-z0-9-]*$/.test(name) ||
    name === 'memory' ||
    name === 'kafka' ||
    name === DEFAULT_KAFKA_CLIENT
  ) {
    throw new ConfigurationError(
      `registerTransport: ${JSON.stringify(name)} is not a usable name (lowercase letters, digits and -; not memory, kafka or kafkajs)`,
    )
  }
  registered.set(name, factory)
}

/** The names `registerTransport` was called with. */
export function registeredTransports(): string[] {
  return [...registered.keys()]
}

function registeredFactory(name: string, why: string): TransportFactory {
  const factory = registered.get(name)
  if (factory !== undefined) return factory
  const known = [DEFAULT_KAFKA_CLIENT, ...registered.keys()].join(', ')
  throw new ConfigurationError(
    `${why} names the Kafka client "${name}", which is not registered (known: ${known}). Install ` +
      `@mephisto/transport-${name} and import it before the app starts; the mephisto CLI imports it for ` +
      'you when MEPHISTO_TRANSPORT names it.',
  )
}

/**
 * `memory://` and `memory://name` give the in-process broker of that name; anything else is a
 * Kafka bootstrap list: `kafka://h1:9092,h2:9092`, `h1:9092,h2:9092` or an array of `host:port`,
 * served by kafkajs unless `options.client` or a `<name>://` scheme names a registered client.
 */
export function createTransport(broker: string | string[], options: TransportOptions): Transport {
  if (typeof broker === 'string' && broker.startsWith('memory://')) {
    const name = broker.slice('memory://'.length) || 'default'
    return new MemoryTransport(memoryBroker(name))
  }
  const scheme = typeof broker === 'string' ? /^([a-z][a-z0-9-]*):\/\//.exec(broker)?.[1] : undefined
  if (scheme !== undefined && scheme !== 'kafka') {
    return registeredFactory(scheme, `broker ${JSON.stringify(broker)}`)(broker, options)
  }
  const client = options.client ?? DEFAULT_KAFKA_CLIENT
  if (client !== DEFAULT_KAFKA_CLIENT) return registeredFactory(client, 'the app')(broker, options)
  const kafka: KafkaTransportOptions = { clientId: options.id }
  // The app's logger, or one at its level: kafkajs lines then read like the app's own.
  if (typeof options.logger === 'object') kafka.logger = options.logger
  else kafka.logger = consoleLogger(options.logger ?? 'info', `${options.id} kafka`)
  // Typed loosely here; they are kafkajs' own options, passed through unchanged.
  if (options.kafka !== undefined) kafka.kafka = options.kafka as KafkaTransportOptions['kafka']
  return new KafkaTransport(parseKafkaBrokers(broker), kafka)
}

export function parseKafkaBrokers(broker: string | string[]): string[] {
  // Any `<client>://` scheme names the client, not the address.
  const scheme = /^[a-z][a-z0-9-]*:\/\//
  const list = (Array.isArray(broker) ? broker : broker.replace(scheme, '').split(','))
    .map((b) => b.trim().replace(scheme, ''))
    .filter(Boolean)
  if (list.length === 0)
    throw new ConfigurationError('broker: give memory:// or at least one Kafka host:port')
  for (const b of list) {
    if (!/^[^\s:/]+:\d{1,5}$/.test(b) && !/^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(b)) {
      throw new ConfigurationError(`broker ${JSON.stringify(b)} is not host:port (e.g. 127.0.0.1:9092)`)
    }
  }
  return list
}
