/**
 * `@mephisto/transport-platformatic`: a Mephisto transport on @platformatic/kafka. Importing it
 * registers the Kafka client name `platformatic`, so `transport: 'platformatic'`,
 * `MEPHISTO_TRANSPORT=platformatic` and `platformatic://host:9092` brokers choose it.
 */
import type { TransportOptions } from '@mephisto/core'
import { consoleLogger, parseKafkaBrokers, registerTransport } from '@mephisto/core'
import type { PlatformaticOptions } from './options.js'
import { PlatformaticTransport } from './transport.js'

export type { InstanceIdClaim } from './instanceId.js'
export { defaultInstanceId, INSTANCE_ENV } from './instanceId.js'
export type {
  PlatformaticConsumerOptions,
  PlatformaticOptions,
  PlatformaticProducerOptions,
  PlatformaticReaderOptions,
} from './options.js'
export type { PlatformaticTransportOptions } from './transport.js'
export { PlatformaticTransport } from './transport.js'

/** The name this package registers its transport under. */
export const TRANSPORT_NAME = 'platformatic'

/**
 * Makes the platformatic transport for `broker` (`'h1:9092,h2:9092'`, `'platformatic://h:9092'`
 * or an array of `host:port`) with an app's id, logger, `platformatic` options and kafkajs options
 * (what they share with this client is read from them). The factory `registerTransport` is given.
 */
export function platformaticTransport(
  broker: string | string[],
  options: TransportOptions & { platformatic?: PlatformaticOptions },
): PlatformaticTransport {
  const logger =
    typeof options.logger === 'object'
      ? options.logger
      : consoleLogger(options.logger ?? 'info', `${options.id} kafka`)
  const transportOptions: ConstructorParameters<typeof PlatformaticTransport>[1] = {
    clientId: options.id,
    logger,
  }
  if (options.platformatic !== undefined)
    transportOptions.platformatic = options.platformatic as PlatformaticOptions
  if (options.kafka !== undefined) transportOptions.kafka = options.kafka
  return new PlatformaticTransport(parseKafkaBrokers(broker), transportOptions)
}

registerTransport(TRANSPORT_NAME, platformaticTransport)
