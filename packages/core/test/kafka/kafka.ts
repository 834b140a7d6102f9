import { randomUUID } from 'node:crypto'
import { describe, inject } from 'vitest'
import { consoleLogger } from '../../src/base/logger.js'
import { KafkaTransport } from '../../src/index.js'
import type { KafkaTransportOptions } from '../../src/transport/kafka/kafkaTransport.js'

/** The test broker's bootstrap list (from globalSetup), or '' when there is none. */
export function kafkaBrokers(): string {
  return inject('kafkaBrokers')
}

/** The SASL_PLAINTEXT listener of the test broker, or '' when it has none. */
export function kafkaSaslBrokers(): string {
  return inject('kafkaSaslBrokers')
}

/** The docker/kafka-local state dir of the test broker, for stopping and restarting it ('' if none). */
export function kafkaLocalDir(): string {
  return inject('kafkaLocalDir')
}

export function kafkaAvailable(): boolean {
  return kafkaBrokers() !== ''
}

/** `describe` when a broker is available, `describe.skip` otherwise (globalSetup warned). */
export const describeKafka: typeof describe = (kafkaAvailable() ? describe : describe.skip) as typeof describe

/** A topic or group name no other test (or earlier run against the same broker) uses. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`
}

/**
 * A transport on the test broker, tuned for tests: short heartbeats so rebalances are noticed
 * within a second rather than three, and kafkajs logging only errors.
 */
export function testTransport(options: KafkaTransportOptions = {}): KafkaTransport {
  const kafka = options.kafka ?? {}
  return new KafkaTransport(kafkaBrokers().split(','), {
    logger: consoleLogger('error', 'kafka-test'),
    ...options,
    kafka: {
      ...kafka,
      consumer: { heartbeatInterval: 300, sessionTimeout: 10_000, maxWaitTimeInMs: 200, ...kafka.consumer },
    },
  })
}
