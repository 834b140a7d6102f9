/**
 * How the kafka transport reads kafkajs' errors: by their `name`, `type` and `retriable`, which is
 * kafkajs' own API for them. One place for every such test. It does not wrap or throw errors.
 */

/** The message of anything thrown. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

/** The Kafka protocol error type kafkajs puts on a `KafkaJSProtocolError` (`'LEADER_NOT_AVAILABLE'`, ...). */
export function kafkaErrorType(error: unknown): string | undefined {
  const type = (error as { type?: unknown } | null)?.type
  return typeof type === 'string' ? type : undefined
}

function kafkaErrorName(error: unknown): string {
  const name = (error as { name?: unknown } | null)?.name
  return typeof name === 'string' ? name : ''
}

/** The topic or partition does not exist (KRaft brokers say so in words for a fetch). */
export function isUnknownTopic(error: unknown): boolean {
  return (
    kafkaErrorType(error) === 'UNKNOWN_TOPIC_OR_PARTITION' ||
    messageOf(error).includes('does not host this topic')
  )
}

/** A partition has no leader yet (just created, or its leader is moving). */
export function isLeaderNotAvailable(error: unknown): boolean {
  return kafkaErrorType(error) === 'LEADER_NOT_AVAILABLE'
}

/** A partition's leader is not serving yet, or is no longer this broker. */
export function isLeaderNotReady(error: unknown): boolean {
  return isLeaderNotAvailable(error) || kafkaErrorType(error) === 'NOT_LEADER_FOR_PARTITION'
}

/** kafkajs' own test for "the group moved on": its heartbeat and commits fail with these. */
export function isRebalancing(error: unknown): boolean {
  const type = kafkaErrorType(error)
  return (
    type === 'REBALANCE_IN_PROGRESS' || type === 'NOT_COORDINATOR_FOR_GROUP' || type === 'ILLEGAL_GENERATION'
  )
}

/** kafkajs error types that mean a newer producer holds the transactional id. */
const FENCED_TYPES = new Set(['INVALID_PRODUCER_EPOCH', 'PRODUCER_FENCED', 'TRANSACTIONAL_ID_NOT_FOUND'])

/** A newer producer with the same transactional id fenced this one. */
export function isProducerFenced(error: unknown): boolean {
  return FENCED_TYPES.has(kafkaErrorType(error) ?? '') || /fenced|producer epoch/i.test(messageOf(error))
}

/** Leadership changes that a metadata refresh resolves. */
const LEADER_MOVED_TYPES = [
  'NOT_LEADER_FOR_PARTITION',
  'LEADER_NOT_AVAILABLE',
  'UNKNOWN_LEADER_EPOCH',
  'FENCED_LEADER_EPOCH',
]

/**
 * kafkajs says trying again may work: its own `retriable` flag, a connection, broker-lookup or
 * metadata error, or a partition leader moving. Looks at this error only, not at what it wraps.
 */
export function isRetriable(error: unknown): boolean {
  return (
    (error as { retriable?: boolean } | null)?.retriable === true ||
    /Connection|BrokerNotFound|Metadata/.test(kafkaErrorName(error)) ||
    LEADER_MOVED_TYPES.includes(kafkaErrorType(error) ?? '')
  )
}

/**
 * {@link isRetriable} for this error or one it wraps: once its own retries are spent, kafkajs
 * throws a non-retriable `KafkaJSNumberOfRetriesExceeded` whose `cause` is the last failure (a
 * broker out of reach). What a Mephisto error's `retriable` is set from.
 */
export function mayRetry(error: unknown): boolean {
  let current = error
  for (let depth = 0; depth < 5 && current !== undefined && current !== null; depth++) {
    if (isRetriable(current)) return true
    current = (current as { cause?: unknown }).cause
  }
  return false
}
