/**
 * kafkajs' log lines into a Mephisto logger, routine ones turned down to debug. It does not
 * configure kafkajs' log level (kafkaTransport.ts does).
 */
import type { logCreator } from 'kafkajs'
import kafkajs from 'kafkajs'
import type { Logger } from '../../base/logger.js'

const { logLevel } = kafkajs

/**
 * Lines kafkajs logs at WARN or ERROR that are routine for us: a rebalance we handle, a consumer
 * we stop on purpose. Logged at info so a healthy worker's output stays quiet.
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

/**
 * A kafkajs `logCreator` that writes to a Mephisto {@link Logger}: one line per kafkajs entry,
 * prefixed with its namespace, with kafkajs' extra fields as structured fields.
 */
export function kafkaLogCreator(logger: Logger): logCreator {
  return () =>
    ({ namespace, level, log }) => {
      const { message, timestamp: _timestamp, logger: _name, ...fields } = log
      const text = `kafkajs ${namespace ? `[${namespace}] ` : ''}${message}`
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
