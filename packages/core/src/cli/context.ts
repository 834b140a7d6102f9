import type { App, AppOptions } from '../app/app.js'
import type { AppSettings } from '../app/options.js'
import { resolveAppOptions } from '../app/options.js'
import type { Transport } from '../transport/transport.js'
import type { WebOptions } from '../web/page.js'
import type { ParsedArgs } from './args.js'
import type { CliLogger } from './cliLogger.js'
import { createCliLogger } from './cliLogger.js'
import { UsageError } from './exitCodes.js'
import type { LoadedApp } from './loadApp.js'
import { loadApp } from './loadApp.js'
import type { Output } from './output.js'
import { poolMember } from './poolMember.js'

/** What every command that needs the app gets. */
export interface CommandContext {
  argv: ParsedArgs
  output: Output
  loaded: LoadedApp
  app: App
  logger: CliLogger
}

/** What the command line overrides in the app's options. */
export interface AppOverrides {
  broker?: string
  web?: false | WebOptions
}

/**
 * Loads the app named by `-A` (or `$MEPHISTO_APP`), makes the CLI's pino logger its logger and
 * applies `--broker` (and the worker's web flags). The worker logs at `info` unless told; the
 * other commands at `warn`, so their output is their result.
 */
export async function prepare(
  argv: ParsedArgs,
  output: Output,
  overrides: AppOverrides = {},
): Promise<CommandContext> {
  const spec = argv.app ?? process.env.MEPHISTO_APP
  if (!spec) throw new UsageError('no app given: pass -A <module> (or set MEPHISTO_APP)', argv.command)
  const loaded = await loadApp(spec)
  const level = argv.command === 'worker' || argv.logLevelGiven ? argv.logLevel : 'warn'
  // A pool's worker marks its JSON log lines with its index (the supervisor passes them on as they
  // are, so they stay JSON); pretty lines get the supervisor's [w<i>] mark instead.
  const member = argv.command === 'worker' && argv.logFormat === 'json' ? poolMember() : undefined
  const logger = await createCliLogger({
    level,
    format: argv.logFormat,
    name: loaded.app.id,
    ...(member && { bindings: { worker: member.index } }),
  })
  const broker = argv.broker ?? overrides.broker
  configureApp(loaded.app, {
    logger,
    ...(broker !== undefined && { broker }),
    ...(overrides.web !== undefined && { web: overrides.web }),
  })
  return { argv, output, loaded, app: loaded.app, logger }
}

/**
 * Replaces options of an App that is not running yet. App has no setter for them (they are fixed
 * at construction in code), but a worker reads `app.options` and `app.logger` only when it
 * starts, so swapping them (and the settings resolved from them) before `start()` is what passing them to the constructor would do.
 * A new options object: the user's object is left as it was.
 */
export function configureApp(
  app: App,
  changes: Partial<Pick<AppOptions, 'broker' | 'web'>> & { logger: CliLogger },
): void {
  const options: AppOptions = { ...app.options, logger: changes.logger }
  if (changes.broker !== undefined) options.broker = changes.broker
  if (changes.web !== undefined) options.web = mergeWeb(app.options.web, changes.web)
  const writable = app as unknown as { options: AppOptions; settings: AppSettings; logger: CliLogger }
  writable.options = Object.freeze(options)
  writable.settings = resolveAppOptions(options)
  writable.logger = changes.logger
}

/** A connected transport to the app's broker, for commands that talk to it without a worker. */
export async function openTransport(ctx: CommandContext): Promise<Transport> {
  const transport = ctx.app.createTransport()
  await transport.connect()
  return transport
}

/** True when the app runs on the in-process broker, where a separate CLI process sees nothing. */
export function onMemoryBroker(app: App): boolean {
  const b = app.settings.broker
  return typeof b === 'string' && b.startsWith('memory://')
}

/**
 * The app's `web` option with the command line's on top: `--without-web` turns it off; flags
 * (`--web-port`, `--web-host`) turn on a server the app switched off; the environment's token and
 * allowed hosts alone do not, and otherwise add to what the app says.
 */
export function mergeWeb(app: false | WebOptions | undefined, cli: false | WebOptions): false | WebOptions {
  if (cli === false) return false
  if (app === false && cli.port === undefined && cli.host === undefined) return false
  const base = app === false ? {} : (app ?? {})
  const allowedHosts = [...(base.allowedHosts ?? []), ...(cli.allowedHosts ?? [])]
  return { ...base, ...cli, ...(allowedHosts.length > 0 && { allowedHosts: [...new Set(allowedHosts)] }) }
}
