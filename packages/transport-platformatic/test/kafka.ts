import { consoleLogger } from '@mephisto/core'
import type {} from '../../core/test/kafka/globalSetup.js'
import { kafkaBrokers } from '../../core/test/kafka/kafka.js'
import type { PlatformaticTransportOptions } from '../src/index.js'
import { PlatformaticTransport } from '../src/index.js'

export {
  describeKafka,
  kafkaAvailable,
  kafkaBrokers,
  kafkaSaslBrokers,
  uniqueName,
  until,
} from '../../core/test/kafka/kafka.js'

/**
 * A platformatic transport on the test broker (core's globalSetup gives it), tuned for tests: short
 * heartbeats and session timeouts so rebalances settle within a second or two, short fetch waits.
 */
export function testTransport(options: PlatformaticTransportOptions = {}): PlatformaticTransport {
  const platformatic = options.platformatic ?? {}
  return new PlatformaticTransport(kafkaBrokers().split(','), {
    logger: consoleLogger('error', 'platformatic-test'),
    ...options,
    platformatic: {
      ...platformatic,
      consumer: {
        heartbeatInterval: 300,
        sessionTimeout: 10_000,
        maxWaitTime: 200,
        ...platformatic.consumer,
      },
    },
  })
}
