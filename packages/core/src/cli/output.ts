/** Where a command writes: stdout for results, stderr for messages. Swappable in tests. */
export interface Output {
  out(text: string): void
  err(text: string): void
}

export const processOutput: Output = {
  out: (text) => void process.stdout.write(text.endsWith('\n') ? text : `${text}\n`),
  err: (text) => void process.stderr.write(text.endsWith('\n') ? text : `${text}\n`),
}

/**
 * Resolves once everything written to stdout and stderr so far has been handed to the OS, so that
 * `process.exit` right after cannot cut a piped banner or result short (pipes are asynchronous on
 * some platforms).
 */
export function drainOutput(): Promise<void> {
  const drain = (stream: NodeJS.WriteStream): Promise<void> =>
    new Promise((resolve) => {
      if (stream.destroyed || !stream.writable) return resolve()
      stream.write('', () => resolve())
    })
  return Promise.all([drain(process.stdout), drain(process.stderr)]).then(() => undefined)
}
