/**
 * kafkajs' log lines into a Mephisto logger: at debug unless the user asked for kafkajs' own
 * levels, with one readable line of ours for each failed attempt to reach a broker. It does not
 * configure kafkajs' log level (kafkaTransport.ts does).
 */
import type { logCreator } from 'kafkajs'
import kafkajs from 'kafkajs'
import type { Logger } from '../../base/logger.js'

const { logLevel } = kafkajs

/**
 * Lines kafkajs logs at WARN or ERROR that are routine for us: a rebalance we handle, a consumer
 * we stop on purpose. Logged at debug even when kafkajs' own levels are asked for.
 */
const ROUTINE = [
  'The group is rebalancing, re-joining',
  'Consumer has joined the group',
  'consumer not running, exiting',
  'Stopped',
  // Exactly-once: a transactional producer whose send fails after its retries is thrown away
  // with its transaction (the worker restarts), so no later send can reuse its sequence numbers.
  'Limiting retries for the idempotent producer may invalidate EoS guarantees',
]

/** What kafkajs' BrokerPool logs each time an attempt to reach a bootstrap broker fails. */
const SEED_FAILED = 'Failed to connect to seed broker, trying another broker from the list: '

/**
 * A kafkajs `logCreator` that writes to a Mephisto {@link Logger}.
 *
 * By default every kafkajs entry goes to `logger.debug` (prefixed with its namespace, kafkajs'
 * extra fields as structured fields): kafkajs logs each failed attempt to reach a broker twice, as
 * JSON with a stack, and Mephisto reports what those failures mean itself (a start that fails, a
 * consumer that restarts). What it adds instead is one warning per failed attempt to reach a
 * bootstrap broker: `cannot reach Kafka broker h:9092 (attempt 2): Connection error: ...`.
 *
 * kafkajs' own levels are kept when they were asked for: a client `logLevel` other than
 * Mephisto's default `WARN` (`kafka: { client: { logLevel } }`), or `KAFKAJS_LOG_LEVEL` in the
 * environment (kafkajs' own switch). Routine lines ({@link ROUTINE}) and the error responses
 * kafkajs logs before the operation that sent the request handles them stay at debug then too.
 */
/** kafkajs' line when a fetch finds the group's offset outside the partition's log. */
const OFFSET_RESET = 'Offset out of range, resetting'

export function kafkaLogCreator(logger: Logger, env: NodeJS.ProcessEnv = process.env): logCreator {
  return (clientLevel) => {
    const envLevel = (env.KAFKAJS_LOG_LEVEL ?? '').toUpperCase()
    const asked = clientLevel !== logLevel.WARN || envLevel in logLevel
    // The broker of the last connection error: kafkajs names it there, not in BrokerPool's line.
    let broker: string | undefined
    return ({ namespace, level, log }) => {
      const { message, timestamp: _timestamp, logger: _name, ...fields } = log
      const text = `kafkajs ${namespace ? `[${namespace}] ` : ''}${message}`
      if (namespace === 'ConsumerGroup' && message.startsWith(OFFSET_RESET)) {
        // Never routine: the group's position was outside the log and records are skipped (or read again).
        logger.error(
          `the committed offset of ${fields.topic}[${fields.partition}] lies outside the log (retention ` +
            'deleted records the group had not read, or the topic was made again); kafkajs moves it to ' +
            'the earliest offset (or the latest, with fromBeginning false): records were skipped or are read again',
          fields,
        )
        return
      }
      if (!asked) {
        if (namespace === 'Connection' && typeof fields.broker === 'string') broker = fields.broker
        if (namespace === 'BrokerPool' && message.startsWith(SEED_FAILED)) {
          const attempt = typeof fields.retryCount === 'number' ? ` (attempt ${fields.retryCount + 1})` : ''
          const where = broker === undefined ? 'a Kafka broker' : `Kafka broker ${broker}`
          logger.warn(`cannot reach ${where}${attempt}: ${message.slice(SEED_FAILED.length)}`)
        }
        logger.debug(text, fields)
        return
      }
      // kafkajs logs every error response at ERROR before throwing it to the operation that
      // sent the request, which handles it (a rebalancing heartbeat) or reports it.
      const protocolError = namespace === 'Connection' && message.startsWith('Response ')
      if (protocolError || ROUTINE.includes(message)) {
        logger.debug(text, fields)
        return
      }
      switch (level) {
        case logLevel.ERROR:
        case logLevel.NOTHING:
          logger.error(text, fields)
          break
        case logLevel.WARN:
          logger.warn(text, fields)
          break
        case logLevel.INFO:
          logger.info(text, fields)
          break
        default:
          logger.debug(text, fields)
      }
    }
  }
}
