export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent'

/** Structured logging: a message plus fields. pino's and console's shapes both fit. */
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void
  info(msg: string, fields?: Record<string, unknown>): void
  warn(msg: string, fields?: Record<string, unknown>): void
  error(msg: string, fields?: Record<string, unknown>): void
}

const order: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 }

/**
 * A logger writing one line per entry to stderr, at `level` and above:
 * `<ISO time> <LEVEL> [<name>] <message> <fields as JSON>`. Control characters in the message
 * are escaped (see {@link escapeControl}) and the fields are JSON with every control character
 * escaped, so each line break in the output ends an entry: bytes from bad input cannot start a
 * line of their own. An `Error` in the fields keeps its name, message, `code` and stack, and its
 * `cause` chain by name, message and `code`.
 */
export function consoleLogger(level: LogLevel = 'info', name = 'mephisto'): Logger {
  const min = order[level]
  const label = escapeControl(name)
  const line =
    (lvl: Exclude<LogLevel, 'silent'>) =>
    (msg: string, fields?: Record<string, unknown>): void => {
      if (order[lvl] < min) return
      const extra = fields && Object.keys(fields).length ? ` ${fieldsJson(fields)}` : ''
      process.stderr.write(
        `${new Date().toISOString()} ${lvl.toUpperCase().padEnd(5)} [${label}] ${escapeControl(String(msg))}${extra}\n`,
      )
    }
  return { debug: line('debug'), info: line('info'), warn: line('warn'), error: line('error') }
}

/** C0 controls (line feed, carriage return, escape, ...), DEL, C1 controls, and U+2028/U+2029. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g
/** The ones `JSON.stringify` leaves as they are: DEL, C1 (NEL, CSI, ...), U+2028/U+2029. */
const CONTROL_JSON_KEEPS = /[\u007f-\u009f\u2028\u2029]/g

const unicodeEscape = (c: string): string => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`
const SHORT: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' }

/**
 * `text` with every control character written as an escape: `\n`, `\r`, `\t`, else `\u001b`
 * and the like. For log text meant for a terminal or a line-based collector, where a raw line
 * feed would start a fake entry and an escape sequence would rewrite the screen.
 */
export function escapeControl(text: string): string {
  return text.replace(CONTROL, (c) => SHORT[c] ?? unicodeEscape(c))
}

/**
 * `json` (the output of `JSON.stringify`) with the control characters JSON leaves raw written as
 * `\uXXXX` escapes; they occur only inside strings, so the JSON still means the same.
 */
export function escapeJsonControl(json: string): string {
  return json.replace(CONTROL_JSON_KEEPS, unicodeEscape)
}

function fieldsJson(fields: Record<string, unknown>): string {
  try {
    const json = JSON.stringify(fields, (_k, v: unknown) =>
      v instanceof Error ? errorFields(v) : typeof v === 'bigint' ? v.toString() : v,
    )
    return escapeJsonControl(json)
  } catch {
    return '[unserialisable fields]'
  }
}

/** How many causes below an error are logged. */
const MAX_CAUSES = 5

/** An error as log fields: what it is, where it was thrown, and briefly what caused it. */
function errorFields(err: Error): Record<string, unknown> {
  const out = briefError(err)
  if (typeof err.stack === 'string') out.stack = err.stack
  const seen = new Set<unknown>([err])
  let at = out
  let cause: unknown = err.cause
  for (let depth = 0; cause !== undefined && depth < MAX_CAUSES && !seen.has(cause); depth++) {
    seen.add(cause)
    const brief = cause instanceof Error ? briefError(cause) : { message: String(cause) }
    at.cause = brief
    at = brief
    cause = cause instanceof Error ? cause.cause : undefined
  }
  return out
}

function briefError(err: Error): Record<string, unknown> {
  const out: Record<string, unknown> = { name: err.name, message: err.message }
  const code = (err as { code?: unknown }).code
  if (code !== undefined) out.code = code
  return out
}
