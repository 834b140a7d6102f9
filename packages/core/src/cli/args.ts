import { availableParallelism } from 'node:os'
import { parseArgs } from 'node:util'
import type { LogLevel } from '../base/logger.js'
import { UsageError } from './exitCodes.js'
import { didYouMean } from './suggest.js'

/** The commands, in the order `mephisto --help` lists them. */
export const COMMANDS = ['worker', 'send', 'agents', 'tables', 'topics', 'reset', 'dlq'] as const
export type CommandName = (typeof COMMANDS)[number]

type OptionSpec = { type: 'string' | 'boolean'; short?: string }

/** Options every command takes. */
const GLOBAL: Record<string, OptionSpec> = {
  app: { type: 'string', short: 'A' },
  loglevel: { type: 'string', short: 'l' },
  'log-format': { type: 'string' },
  broker: { type: 'string', short: 'b' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
}

/** Options of each command, on top of the global ones. */
const PER_COMMAND: Record<CommandName, Record<string, OptionSpec>> = {
  worker: {
    'web-port': { type: 'string' },
    'web-host': { type: 'string' },
    'without-web': { type: 'boolean' },
    'stop-timeout': { type: 'string' },
    workers: { type: 'string' },
  },
  send: {
    key: { type: 'string', short: 'k' },
    repeat: { type: 'string', short: 'r' },
    partition: { type: 'string', short: 'p' },
    json: { type: 'boolean' },
  },
  agents: { json: { type: 'boolean' } },
  tables: { json: { type: 'boolean' }, values: { type: 'boolean' } },
  topics: { json: { type: 'boolean' } },
  reset: { topics: { type: 'boolean' }, yes: { type: 'boolean', short: 'y' }, workers: { type: 'string' } },
  dlq: { to: { type: 'string' }, limit: { type: 'string' }, json: { type: 'boolean' } },
}

/** The command line, parsed and checked against the command's options. */
export interface ParsedArgs {
  command: CommandName | undefined
  /** Positionals after the command name. */
  args: string[]
  /** Global options. */
  app: string | undefined
  logLevel: LogLevel
  /** Whether `--loglevel` was given (commands other than `worker` default to `warn`). */
  logLevelGiven: boolean
  logFormat: 'auto' | 'pretty' | 'json'
  broker: string | undefined
  help: boolean
  version: boolean
  /** The command's own options, by long name. */
  options: Record<string, string | boolean | undefined>
}

const LEVELS: Record<string, LogLevel> = {
  debug: 'debug',
  info: 'info',
  warn: 'warn',
  warning: 'warn',
  error: 'error',
  crit: 'error',
  critical: 'error',
  silent: 'silent',
}

/**
 * Parses `argv` (without `node` and the script). Options may come before or after the command,
 * as in Faust (`mephisto -A app.ts worker -l info` and `mephisto worker -A app.ts` both work).
 * Throws {@link UsageError} for anything it cannot make sense of.
 */
export function parseCommandLine(argv: readonly string[]): ParsedArgs {
  const all: Record<string, OptionSpec> = { ...GLOBAL }
  for (const opts of Object.values(PER_COMMAND)) Object.assign(all, opts)
  let parsed: ReturnType<typeof parseArgs<{ options: typeof all; allowPositionals: true; strict: true }>>
  try {
    parsed = parseArgs({ args: [...argv], options: all, allowPositionals: true, strict: true })
  } catch (err) {
    // node's messages are good ("Unknown option '--x'"); drop its advice about '--' for negatives.
    const message = ((err as Error).message ?? String(err)).replace(/\. To specify a positional.*$/s, '')
    const command = commandIn(argv)
    throw new UsageError(`${message}${suggestOption(message, command)}`, command)
  }
  const [first, ...rest] = parsed.positionals
  let command: CommandName | undefined
  if (first !== undefined) {
    if (first === 'help') {
      // `mephisto help send` is `mephisto send --help`.
      const target = rest[0]
      if (target !== undefined && !isCommand(target)) throw new UsageError(unknownCommand(target))
      return { ...emptyArgs(), command: target as CommandName | undefined, help: true }
    }
    if (!isCommand(first)) throw new UsageError(unknownCommand(first))
    command = first
  }
  const values = parsed.values as Record<string, string | boolean | undefined>
  const options: Record<string, string | boolean | undefined> = {}
  for (const [name, value] of Object.entries(values)) {
    if (name in GLOBAL || value === undefined) continue
    if (!command || !(name in PER_COMMAND[command])) {
      const owners = COMMANDS.filter((c) => name in PER_COMMAND[c])
      throw new UsageError(
        `option --${name} does not apply to ${command ? `'${command}'` : 'mephisto without a command'}` +
          ` (it is an option of ${owners.join(', ')})`,
        command,
      )
    }
    options[name] = value
  }
  const rawLevel = values.loglevel as string | undefined
  let logLevel: LogLevel = 'info'
  if (rawLevel !== undefined) {
    const level = LEVELS[rawLevel.toLowerCase()]
    if (!level)
      throw new UsageError(
        `--loglevel must be one of debug, info, warn, error, silent (got ${JSON.stringify(rawLevel)})`,
        command,
      )
    logLevel = level
  }
  const rawFormat = (values['log-format'] as string | undefined) ?? 'auto'
  if (rawFormat !== 'auto' && rawFormat !== 'pretty' && rawFormat !== 'json') {
    throw new UsageError(
      `--log-format must be auto, pretty or json (got ${JSON.stringify(rawFormat)})`,
      command,
    )
  }
  return {
    command,
    args: rest,
    app: values.app as string | undefined,
    logLevel,
    logLevelGiven: rawLevel !== undefined,
    logFormat: rawFormat,
    broker: values.broker as string | undefined,
    help: values.help === true,
    version: values.version === true,
    options,
  }
}

function emptyArgs(): ParsedArgs {
  return {
    command: undefined,
    args: [],
    app: undefined,
    logLevel: 'info',
    logLevelGiven: false,
    logFormat: 'auto',
    broker: undefined,
    help: false,
    version: false,
    options: {},
  }
}

function isCommand(name: string): name is CommandName {
  return (COMMANDS as readonly string[]).includes(name)
}

/** An unknown command: the nearest known one when there is one, else the list. */
function unknownCommand(name: string): string {
  const hint = didYouMean(name, COMMANDS)
  return hint
    ? `unknown command ${JSON.stringify(name)}${hint}`
    : `unknown command ${JSON.stringify(name)}; commands: ${COMMANDS.join(', ')}`
}

/**
 * The nearest option to the one node's parser did not know (`Unknown option '--reapet'`): among
 * the command's and the global options when the command is known, else among all.
 */
function suggestOption(message: string, command: CommandName | undefined): string {
  const typed = /^Unknown option '--([^'=]+)'/.exec(message)?.[1]
  if (typed === undefined) return ''
  const scopes = command ? [GLOBAL, PER_COMMAND[command]] : [GLOBAL, ...Object.values(PER_COMMAND)]
  const known = scopes.flatMap((scope) => Object.keys(scope))
  return didYouMean(typed, known, (name) => `--${name}`)
}

/** The command named in a command line that failed to parse, for pointing at its help. */
function commandIn(argv: readonly string[]): CommandName | undefined {
  return argv.find(isCommand)
}

/** A non-negative integer option, or `fallback` when absent. */
export function intOption(
  options: ParsedArgs['options'],
  name: string,
  fallback: number,
  command: CommandName,
  min = 0,
): number {
  const raw = options[name]
  if (raw === undefined) return fallback
  const n = Number(raw)
  if (typeof raw !== 'string' || !/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(n) || n < min) {
    throw new UsageError(`--${name} must be an integer >= ${min} (got ${JSON.stringify(raw)})`, command)
  }
  return n
}

/** The string value of an option, if given. */
export function stringOption(options: ParsedArgs['options'], name: string): string | undefined {
  const v = options[name]
  return typeof v === 'string' ? v : undefined
}

/** How many worker processes `--workers` asks for: a count, or `auto` for one per core. */
export interface WorkerCount {
  count: number
  /** Given as `auto` (the count is `os.availableParallelism()`). */
  auto: boolean
}

/**
 * `--workers <n|auto>`: an integer >= 1, or `auto` for the number of cores the process may use
 * (`os.availableParallelism()`). Absent: 1.
 */
export function workersOption(
  options: ParsedArgs['options'],
  command: CommandName,
  cores: () => number = availableParallelism,
): WorkerCount {
  const raw = options.workers
  if (raw === undefined) return { count: 1, auto: false }
  if (typeof raw === 'string' && raw.trim().toLowerCase() === 'auto') return { count: cores(), auto: true }
  const n = Number(raw)
  if (typeof raw !== 'string' || !/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(n) || n < 1) {
    throw new UsageError(`--workers must be an integer >= 1 or auto (got ${JSON.stringify(raw)})`, command)
  }
  return { count: n, auto: false }
}
