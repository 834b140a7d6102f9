/**
 * From the app's `broker` option to a Transport: `memory://` and `memory://name` give the
 * in-process broker of that name; anything else is a Kafka bootstrap list. A transport of another
 * package is given as a factory (`AppOptions.transport`) and bypasses the URL.
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
}

/** Makes the transport of a third-party package (`AppOptions.transport`). */
export type TransportFactory = (broker: string | string[], options: TransportOptions) => Transport

/**
 * `memory://` and `memory://name` give the in-process broker of that name; anything else is a
 * Kafka bootstrap list: `kafka://h1:9092,h2:9092`, `h1:9092,h2:9092` or an array of `host:port`.
 */
export function createTransport(broker: string | string[], options: TransportOptions): Transport {
  if (typeof broker === 'string' && broker.startsWith('memory://')) {
    const name = broker.slice('memory://'.length) || 'default'
    return new MemoryTransport(memoryBroker(name))
  }
  const kafka: KafkaTransportOptions = { clientId: options.id }
  // The app's logger, or one at its level: kafkajs lines then read like the app's own.
  if (typeof options.logger === 'object') kafka.logger = options.logger
  else kafka.logger = consoleLogger(options.logger ?? 'info', `${options.id} kafka`)
  // Typed loosely here; they are kafkajs' own options, passed through unchanged.
  if (options.kafka !== undefined) kafka.kafka = options.kafka as KafkaTransportOptions['kafka']
  return new KafkaTransport(parseKafkaBrokers(broker), kafka)
}

export function parseKafkaBrokers(broker: string | string[]): string[] {
  const list = (Array.isArray(broker) ? broker : broker.replace(/^kafka:\/\//, '').split(','))
    .map((b) => b.trim().replace(/^kafka:\/\//, ''))
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
