/**
 * Every error Mephisto throws is a {@link MephistoError} with a stable `code` that scripts and
 * `onError` handlers can switch on. Subclasses exist only where callers handle them differently.
 */
export const ErrorCodes = [
  'CONFIGURATION',
  'DECODE',
  'SCHEMA_VALIDATION',
  'ENCODE',
  'NOT_READY',
  'NO_EVENT_CONTEXT',
  'PARTITION_OUT_OF_RANGE',
  'CO_PARTITIONING',
  'AGENT_FAILED',
  'DEAD_LETTER_FAILED',
  'EVENT_TIMEOUT',
  'LATE_EVENT',
  'ASK_TIMEOUT',
  'BROKER',
  'COMMIT_FAILED',
  'RECOVERY_FAILED',
  'STORE_LOCKED',
  'STORE_CORRUPT',
  'STORE_IO',
  'PRODUCER',
  'TRANSACTION',
  'FENCED',
] as const

export type ErrorCode = (typeof ErrorCodes)[number]

/** Options every Mephisto error takes. */
export interface MephistoErrorOptions {
  cause?: unknown
  /** The operation may succeed if tried again (a broker out of reach, a leader moving). */
  retriable?: boolean
}

export class MephistoError extends Error {
  readonly code: ErrorCode
  /** Trying the same operation again may succeed; callers branch on this, never on the message. */
  readonly retriable: boolean
  constructor(code: ErrorCode, message: string, options?: MephistoErrorOptions) {
    super(message, options)
    this.code = code
    this.retriable = options?.retriable ?? false
    this.name = new.target.name
  }

  /** A newer owner of the same work exists: this one is a zombie and must stop writing. */
  get fenced(): boolean {
    return this.code === 'FENCED'
  }
}

/** True when `err` is a Mephisto error that says a newer owner fenced this one. */
export function isFenced(err: unknown): boolean {
  return err instanceof MephistoError && err.fenced
}

/** Invalid options or a definition that cannot work (raised at definition or start time). */
export class ConfigurationError extends MephistoError {
  constructor(message: string, options?: MephistoErrorOptions) {
    super('CONFIGURATION', message, options)
  }
}

/** A message's key or value could not be decoded, or failed schema validation. */
export class DecodeError extends MephistoError {
  readonly field: 'key' | 'value'
  /** Standard Schema issues, when validation (not parsing) failed. */
  readonly issues?: readonly { message: string; path?: readonly unknown[] }[]
  constructor(
    code: 'DECODE' | 'SCHEMA_VALIDATION',
    field: 'key' | 'value',
    message: string,
    options?: { cause?: unknown; issues?: readonly { message: string; path?: readonly unknown[] }[] },
  ) {
    super(code, message, options)
    this.field = field
    if (options?.issues) this.issues = options.issues
  }
}

/** A value could not be encoded for sending. Nothing was sent. */
export class EncodeError extends MephistoError {
  constructor(message: string, options?: MephistoErrorOptions) {
    super('ENCODE', message, options)
  }
}

/** The app (or the part asked for) is not running yet, or no longer. */
export class NotReadyError extends MephistoError {
  constructor(message: string, options?: MephistoErrorOptions) {
    super('NOT_READY', message, options)
  }
}

/** A table was written where no event is being processed and no partition was given. */
export class NoEventContextError extends MephistoError {
  constructor(message: string) {
    super('NO_EVENT_CONTEXT', message)
  }
}

/** The broker (memory or Kafka) failed an operation. */
export class BrokerError extends MephistoError {
  constructor(message: string, options?: MephistoErrorOptions) {
    super('BROKER', message, options)
  }
}

/**
 * An exactly-once transaction failed: nothing of it is visible to read-committed readers. With
 * code `FENCED`, a newer producer with the same transactional id exists (this worker is a zombie
 * whose partitions were given to another worker).
 */
export class TransactionError extends MephistoError {
  constructor(code: 'TRANSACTION' | 'FENCED', message: string, options?: MephistoErrorOptions) {
    super(code, message, options)
  }
}
