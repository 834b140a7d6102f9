/**
 * The record headers Mephisto writes: request/reply correlation, and the provenance of a dead
 * letter (what failed, where it came from). Names only; the writers live in the worker.
 */
export const HEADERS = {
  correlationId: 'mephisto-correlation-id',
  replyTo: 'mephisto-reply-to',
  error: 'mephisto-error',
  errorCode: 'mephisto-error-code',
  errorClass: 'mephisto-error-class',
  sourceTopic: 'mephisto-source-topic',
  sourcePartition: 'mephisto-source-partition',
  sourceOffset: 'mephisto-source-offset',
  sourceTimestamp: 'mephisto-source-timestamp',
  agent: 'mephisto-agent',
  failedAt: 'mephisto-failed-at',
  /** Set when the value could not be encoded as it was: the dead letter holds a readable rendering. */
  valueRendering: 'mephisto-value-rendering',
  /** Why the value could not be encoded. */
  encodeError: 'mephisto-encode-error',
} as const
