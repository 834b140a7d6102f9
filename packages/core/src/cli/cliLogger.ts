import type { DestinationStream, Logger as PinoLogger } from 'pino'
import { pino } from 'pino'
import type { Logger, LogLevel } from '../base/logger.js'
import { escapeControl, escapeJsonControl } from '../base/logger.js'

export interface CliLoggerOptions {
  level: LogLevel
  /** `auto`: pretty when stderr is a terminal, JSON lines otherwise. */
  format: 'auto' | 'pretty' | 'json'
  /** Shown as pino's `name` (the app id). */
  name: string
  /** Fields every line carries (a pool's worker: its index). */
  bindings?: Record<string, unknown>
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
  const root = pino(
    {
      level: options.level,
      name: options.name,
      // JSON escapes C0 controls; DEL, C1 and U+2028/9 it leaves raw (some readers take NEL or
      // U+2028 for a line break). Escaped, they still mean the same in the JSON.
      hooks: { streamWrite: escapeJsonControl },
      // pino's err serializer keeps the stack and the cause chain; pino-pretty prints the stack
      // as it is, line by line, indented: escape everything in it but its line feeds.
      ...(pretty && { serializers: { err: errForTerminal } }),
    },
    destination,
  )
  const logger = options.bindings ? root.child(options.bindings) : root
  const wrap =
    (method: 'debug' | 'info' | 'warn' | 'error') =>
    (msg: string, fields?: Record<string, unknown>): void => {
      // pino-pretty prints the message as it is, and other strings as JSON (C1 left raw).
      const text = pretty ? escapeControl(String(msg)) : msg
      if (fields && Object.keys(fields).length > 0)
        logger[method](pretty ? (forTerminal(fields) as Record<string, unknown>) : fields, text)
      else logger[method](text)
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

/** pino's serialized error (a fresh object of its own class), its strings escaped for pino-pretty. */
function errForTerminal(err: Error): unknown {
  const serialized = pino.stdSerializers.err(err) as unknown as Record<string, unknown>
  for (const [k, v] of Object.entries(serialized)) serialized[k] = forTerminal(v, k)
  return serialized
}

/**
 * `value` with the control characters that pino-pretty would print raw escaped: in strings the
 * ones JSON leaves raw, in a `stack` everything but its line feeds. Errors are left for pino's
 * serializer, other class instances (buffers, dates) as they are.
 */
function forTerminal(value: unknown, key = '', seen = new WeakSet<object>()): unknown {
  if (typeof value === 'string')
    return key === 'stack' ? value.split('\n').map(escapeControl).join('\n') : escapeJsonControl(value)
  if (typeof value !== 'object' || value === null || value instanceof Error || seen.has(value)) return value
  seen.add(value)
  if (Array.isArray(value)) return value.map((v) => forTerminal(v, '', seen))
  const proto = Object.getPrototypeOf(value)
  if (proto !== Object.prototype && proto !== null) return value
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, forTerminal(v, k, seen)]))
}
