/**
 * How this transport reads @platformatic/kafka's errors: by the Kafka error id (`apiId`) and the
 * `canRetry` flag platformatic puts on them, never by message text. One place for every such test.
 * It does not throw; the modules that do wrap what they find in Mephisto's error classes.
 */
import { findErrorBy, GenericError, protocolErrorsCodesById } from '@platformatic/kafka'

/** The message of anything thrown, with the Kafka errors a platformatic aggregate carries. */
export function messageOf(error: unknown): string {
  if (!(error instanceof Error)) return String(error)
  const ids = new Set<string>()
  const leaves = new Set<string>()
  collect(error, ids, leaves, 0)
  const detail = [...ids, ...[...leaves].filter((m) => m !== error.message)]
  return detail.length > 0 ? `${error.message} (${detail.join('; ')})` : error.message
}

function collect(error: unknown, ids: Set<string>, leaves: Set<string>, depth: number): void {
  if (depth > 6 || !(error instanceof Error)) return
  const apiId = (error as { apiId?: unknown }).apiId
  if (typeof apiId === 'string') ids.add(apiId)
  const nested = (error as { errors?: unknown }).errors
  if (Array.isArray(nested) && nested.length > 0) {
    for (const e of nested) collect(e, ids, leaves, depth + 1)
  } else if (typeof apiId !== 'string') {
    leaves.add(error.message)
  }
  if (error.cause !== undefined) collect(error.cause, ids, leaves, depth + 1)
}

/** The Kafka error id of an error code in a response (`'OFFSET_OUT_OF_RANGE'`, ...). */
export function kafkaErrorId(code: number): string {
  return (protocolErrorsCodesById as Record<number, string>)[code] ?? `KAFKA_ERROR_${code}`
}

/** The Kafka error `id` (`'REBALANCE_IN_PROGRESS'`, ...) is this error or one it aggregates. */
export function hasKafkaError(error: unknown, ...ids: string[]): boolean {
  if (!(error instanceof Error)) return false
  return ids.some((id) => findErrorBy(error, 'apiId', id) !== null)
}

/** The topic or partition does not exist (or the topic id is unknown: it was deleted). */
export function isUnknownTopic(error: unknown): boolean {
  if (hasKafkaError(error, 'UNKNOWN_TOPIC_OR_PARTITION', 'UNKNOWN_TOPIC_ID')) return true
  // Metadata for a missing topic fails with a UserError of its own.
  return error instanceof Error && /^Unknown topic /.test(error.message)
}

/** A partition's leader moved or is not serving yet: refresh metadata and try again. */
export const LEADER_MOVED = [
  'NOT_LEADER_OR_FOLLOWER',
  'LEADER_NOT_AVAILABLE',
  'FENCED_LEADER_EPOCH',
  'UNKNOWN_LEADER_EPOCH',
  'REPLICA_NOT_AVAILABLE',
  'KAFKA_STORAGE_ERROR',
  'OFFSET_NOT_AVAILABLE',
] as const

/** The group coordinator moved or is loading: find it again and retry. */
export const COORDINATOR_MOVED = [
  'NOT_COORDINATOR',
  'COORDINATOR_NOT_AVAILABLE',
  'COORDINATOR_LOAD_IN_PROGRESS',
] as const

/** The error came from the network (a broker out of reach, a timeout, a closed socket). */
export function isNetworkError(error: unknown): boolean {
  return error instanceof Error && findErrorBy(error, 'code', 'PLT_KFK_NETWORK') !== null
}

/**
 * Trying again may work: a network error, or platformatic errors all flagged `canRetry` (a leader
 * or coordinator moving). What a Mephisto error's `retriable` is set from.
 */
export function mayRetry(error: unknown): boolean {
  if (!(error instanceof Error)) return false
  if (isNetworkError(error) || hasKafkaError(error, ...LEADER_MOVED, ...COORDINATOR_MOVED)) return true
  return GenericError.isGenericError(error) && findErrorBy(error, 'canRetry', false) === null
}

/** A newer producer with the same transactional id fenced this one. */
export function isProducerFenced(error: unknown): boolean {
  return hasKafkaError(error, 'INVALID_PRODUCER_EPOCH', 'PRODUCER_FENCED', 'TRANSACTIONAL_ID_NOT_FOUND')
}

/** The group no longer knows this membership: it rebalanced without it, or another took its instance id. */
export function isGroupFenced(error: unknown): boolean {
  return hasKafkaError(error, 'ILLEGAL_GENERATION', 'UNKNOWN_MEMBER_ID', 'FENCED_INSTANCE_ID')
}

/** The group is rebalancing or moved on: a commit of the old generation is refused. */
export function isRebalancing(error: unknown): boolean {
  return hasKafkaError(error, 'REBALANCE_IN_PROGRESS', 'ILLEGAL_GENERATION', 'UNKNOWN_MEMBER_ID')
}
