export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent'

/** Structured logging: a message plus fields. pino's and console's shapes both fit. */
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void
  info(msg: string, fields?: Record<string, unknown>): void
  warn(msg: string, fields?: Record<string, unknown>): void
  error(msg: string, fields?: Record<string, unknown>): void
}

const order: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 }

/** A logger writing one line per entry to stderr, at `level` and above. */
export function consoleLogger(level: LogLevel = 'info', name = 'mephisto'): Logger {
  const min = order[level]
  const line =
    (lvl: Exclude<LogLevel, 'silent'>) =>
    (msg: string, fields?: Record<string, unknown>): void => {
      if (order[lvl] < min) return
      const extra = fields && Object.keys(fields).length ? ` ${safeJson(fields)}` : ''
      process.stderr.write(
        `${new Date().toISOString()} ${lvl.toUpperCase().padEnd(5)} [${name}] ${msg}${extra}\n`,
      )
    }
  return { debug: line('debug'), info: line('info'), warn: line('warn'), error: line('error') }
}

function safeJson(fields: Record<string, unknown>): string {
  try {
    return JSON.stringify(fields, (_k, v) =>
      v instanceof Error ? { name: v.name, message: v.message, code: (v as { code?: unknown }).code } : v,
    )
  } catch {
    return '[unserialisable fields]'
  }
}
