import type { ParsedArgs } from './args.js'
import { parseCommandLine, workersOption } from './args.js'
import type { CommandContext } from './context.js'
import { prepare } from './context.js'
import { dlqCommand } from './dlqCommand.js'
import { CliFailure, EXIT, UsageError } from './exitCodes.js'
import { failureLine, stackOf } from './failure.js'
import { COMMAND_HELP, MAIN_HELP } from './help.js'
import { agentsCommand, tablesCommand, topicsCommand } from './listCommands.js'
import type { Output } from './output.js'
import { processOutput } from './output.js'
import { resetCommand } from './resetCommand.js'
import { sendCommand } from './sendCommand.js'
import { tableValuesCommand } from './tableValues.js'
import { cliVersion } from './version.js'
import { webOverrides, workerCommand } from './workerCommand.js'

/**
 * Runs the `mephisto` command line and resolves with the exit code. Never throws: every error
 * becomes a message on stderr and a code from {@link EXIT}.
 */
export async function runCli(argv: readonly string[], output: Output = processOutput): Promise<number> {
  let parsed: ParsedArgs | undefined
  let ctx: CommandContext | undefined
  try {
    parsed = parseCommandLine(argv)
    if (parsed.version) {
      output.out(cliVersion())
      return EXIT.ok
    }
    if (parsed.help || parsed.command === undefined) {
      // `mephisto` alone is a usage error (a script that forgot the command): help to stderr, exit 2.
      const text = parsed.command ? COMMAND_HELP[parsed.command] : MAIN_HELP
      if (parsed.help) output.out(text)
      else output.err(text)
      return parsed.help ? EXIT.ok : EXIT.usage
    }
    const command = parsed.command
    const extra = parsed.args
    if (
      extra.length > 0 &&
      (command === 'worker' ||
        command === 'agents' ||
        command === 'topics' ||
        (command === 'tables' && !parsed.options.values))
    ) {
      // Most often a '--' that a script runner passed on, which ends the options: say so.
      throw new UsageError(
        `${command} takes no arguments (got ${extra.map((a) => JSON.stringify(a)).join(' ')}); a '--' before options ends them`,
        command,
      )
    }
    const web = command === 'worker' ? webOverrides(parsed) : undefined
    // Checked before the module loads, like the web flags: a usage error needs no app.
    const workers =
      command === 'worker' || command === 'reset' ? workersOption(parsed.options, command) : undefined
    ctx = await prepare(parsed, output, web === undefined ? {} : { web })
    switch (command) {
      case 'worker':
        return await workerCommand(ctx, workers, argv)
      case 'send':
        return await sendCommand(ctx)
      case 'agents':
        return agentsCommand(ctx)
      case 'topics':
        return topicsCommand(ctx)
      case 'tables':
        return parsed.options.values ? await tableValuesCommand(ctx) : tablesCommand(ctx)
      case 'reset':
        return await resetCommand(ctx, workers?.count)
      case 'dlq':
        return await dlqCommand(ctx)
      default:
        return command satisfies never
    }
  } catch (err) {
    if (err instanceof UsageError) {
      const command = err.command ?? parsed?.command
      output.err(`mephisto: ${err.message}`)
      output.err(`Run 'mephisto ${command ? `${command} ` : ''}--help' for usage.`)
      return EXIT.usage
    }
    // One line that says what failed and what to do; the stack only at -l debug.
    const debug = parsed?.logLevel === 'debug'
    if (err instanceof CliFailure) {
      output.err(`mephisto: ${err.message}`)
      if (err.detail) output.err(debug ? err.detail : '  (-l debug shows the stack)')
      return EXIT.failure
    }
    output.err(`mephisto: ${failureLine(err)}`)
    if (debug) output.err(stackOf(err))
    return EXIT.failure
  } finally {
    ctx?.logger.flush()
  }
}
