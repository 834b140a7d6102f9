/**
 * Exit codes of the `mephisto` command. Scripts may rely on them: they are part of the CLI's
 * contract and documented in docs/cli.md.
 */
export const EXIT = {
  /** Done. For `worker`: stopped cleanly after SIGTERM/SIGINT (drained, flushed, committed). */
  ok: 0,
  /** The command line was right but the work failed: broker, import, a crashed worker, a failed send. */
  failure: 1,
  /** The command line was wrong: unknown command or option, bad JSON, unknown topic, no App in the module. */
  usage: 2,
} as const

/** A mistake in the command line. Reported without a stack trace and exits with {@link EXIT.usage}. */
export class UsageError extends Error {
  override readonly name = 'UsageError'
  constructor(
    message: string,
    /** The command whose `--help` the message points to. */
    readonly command?: string,
  ) {
    super(message)
  }
}

/**
 * A failure the CLI has already explained in words: reported as its message alone and exits with
 * {@link EXIT.failure}. Other errors are reported with their class and cause.
 */
export class CliFailure extends Error {
  override readonly name = 'CliFailure'
  constructor(
    message: string,
    /** What only `-l debug` shows (the stack of what failed); others get a pointer to it. */
    readonly detail?: string,
  ) {
    super(message)
  }
}
