import type { DestinationStream, Logger as PinoLogger } from 'pino'
import { pino } from 'pino'
import type { Logger, LogLevel } from '../base/logger.js'

export interface CliLoggerOptions {
  level: LogLevel
  /** `auto`: pretty when stderr is a terminal, JSON lines otherwise. */
  format: 'auto' | 'pretty' | 'json'
  /** Shown as pino's `name` (the app id). */
  name: string
}

/** A Mephisto {@link Logger} on top of a pino logger, plus what the CLI needs to exit cleanly. */
export interface CliLogger extends Logger {
  readonly pino: PinoLogger
  readonly pretty: boolean
  /** Writes out whatever is buffered; call before `process.exit`. */
  flush(): void
}

/**
 * The CLI's structured logs: pino writing to stderr (stdout carries the banner and command
 * results, which scripts read). Pretty (pino-pretty, colour) on a terminal, JSON lines
 * otherwise, for log collectors. Writes are synchronous: a worker that exits right after
 * `stop()` must not lose its last lines, and the log rate of a worker is low.
 */
export async function createCliLogger(options: CliLoggerOptions): Promise<CliLogger> {
  const pretty = options.format === 'pretty' || (options.format === 'auto' && process.stderr.isTTY === true)
  let destination: DestinationStream
  if (pretty) {
    // Loaded only when needed: JSON output, the production case, never pays for it.
    const { default: pinoPretty } = await import('pino-pretty')
    destination = pinoPretty({
      destination: 2,
      sync: true,
      colorize: process.stderr.isTTY === true,
      translateTime: 'SYS:HH:MM:ss.l',
      ignore: 'pid,hostname',
    })
  } else {
    destination = pino.destination({ dest: 2, sync: true })
  }
  const logger = pino({ level: options.level, name: options.name }, destination)
  const wrap =
    (method: 'debug' | 'info' | 'warn' | 'error') =>
    (msg: string, fields?: Record<string, unknown>): void => {
      if (fields && Object.keys(fields).length > 0) logger[method](fields, msg)
      else logger[method](msg)
    }
  return {
    pino: logger,
    pretty,
    debug: wrap('debug'),
    info: wrap('info'),
    warn: wrap('warn'),
    error: wrap('error'),
    flush: () => {
      try {
        logger.flush()
      } catch {
        // A closed stderr (a killed pipe) must not turn a clean exit into a crash.
      }
    },
  }
}
