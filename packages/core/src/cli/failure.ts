/**
 * How the CLI words an error it ends on: one line with the error's class, code and message, and
 * only the causes that add something the message does not already say. The stack is for
 * `-l debug`; callers decide where the line goes.
 */

/**
 * `BrokerError [BROKER]: Cannot connect to Kafka at h:9092: ... (cause: ...)`: the error and
 * each cause in its chain whose message is not already part of the text (kafkajs wraps one
 * connection error in two more with the same words, and Mephisto's message quotes it too).
 */
export function failureLine(err: unknown): string {
  const e = err as (Error & { code?: unknown }) | undefined
  if (!(e instanceof Error)) return String(err)
  const code = typeof e.code === 'string' ? ` [${e.code}]` : ''
  let text = `${e.name}${code}: ${e.message}`
  const seen = new Set<unknown>([e])
  for (let cause = e.cause; cause !== undefined && cause !== null && !seen.has(cause); ) {
    seen.add(cause)
    const message = cause instanceof Error ? cause.message : String(cause)
    if (message !== '' && !text.includes(message)) text += ` (cause: ${message})`
    cause = cause instanceof Error ? cause.cause : undefined
  }
  return text
}

/** The stack of `err` and of each error in its cause chain, for `-l debug`. */
export function stackOf(err: unknown): string {
  const parts: string[] = []
  const seen = new Set<unknown>()
  for (let e: unknown = err; e !== undefined && e !== null && !seen.has(e); ) {
    seen.add(e)
    parts.push(e instanceof Error ? (e.stack ?? `${e.name}: ${e.message}`) : String(e))
    e = e instanceof Error ? e.cause : undefined
  }
  return parts.join('\ncaused by: ')
}
