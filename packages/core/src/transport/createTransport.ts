import type { AppOptions } from '../app/app.js'
import { ConfigurationError } from '../errors.js'
import { memoryBroker } from './memory/memoryBroker.js'
import { MemoryTransport } from './memory/memoryTransport.js'
import type { Transport } from './transport.js'

/**
 * `memory://` and `memory://name` give the in-process broker of that name; anything else is a
 * Kafka bootstrap list: `kafka://h1:9092,h2:9092`, `h1:9092,h2:9092` or an array of `host:port`.
 */
export function createTransport(broker: string | string[], options: AppOptions): Transport {
  if (typeof broker === 'string' && broker.startsWith('memory://')) {
    const name = broker.slice('memory://'.length) || 'default'
    return new MemoryTransport(memoryBroker(name))
  }
  const brokers = parseKafkaBrokers(broker)
  return createKafkaTransport(brokers, options)
}

export function parseKafkaBrokers(broker: string | string[]): string[] {
  const list = (Array.isArray(broker) ? broker : broker.replace(/^kafka:\/\//, '').split(','))
    .map((b) => b.trim().replace(/^kafka:\/\//, ''))
    .filter(Boolean)
  if (list.length === 0) throw new ConfigurationError('broker: give memory:// or at least one Kafka host:port')
  for (const b of list) {
    if (!/^[^\s:/]+:\d{1,5}$/.test(b) && !/^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(b)) {
      throw new ConfigurationError(`broker ${JSON.stringify(b)} is not host:port (e.g. 127.0.0.1:9092)`)
    }
  }
  return list
}

let kafkaFactory: ((brokers: string[], options: AppOptions) => Transport) | undefined

/** @internal Registered by the Kafka transport module, so memory-only users never load kafkajs. */
export function registerKafkaTransport(factory: (brokers: string[], options: AppOptions) => Transport): void {
  kafkaFactory = factory
}

function createKafkaTransport(brokers: string[], options: AppOptions): Transport {
  if (!kafkaFactory) throw new ConfigurationError('the Kafka transport is not available in this build')
  return kafkaFactory(brokers, options)
}
