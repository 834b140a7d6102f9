/**
 * What a consumer reports when one of the runtime's handlers (onAssign, onRevoke, onBatch) threw:
 * the handler's own error first, so a store that is locked or corrupt arrives as that store error
 * with its code, not as a broker failure. Shared by every transport's consumer.
 */
import { BrokerError, MephistoError } from '../base/errors.js'

/**
 * The error a consumer passes to `onLost` after a handler failed and the member left the group: a
 * Mephisto error as it is (its code says what failed), anything else as a BrokerError whose
 * message starts with the reason.
 */
export function handlerFailure(error: unknown, what: string, group: string): MephistoError {
  if (error instanceof MephistoError) return error
  const reason = error instanceof Error ? error.message : String(error)
  return new BrokerError(
    `${reason} (${what} of a consumer of group "${group}" failed: it left the group as if it had crashed, ` +
      'and its partitions go to the other members from their committed offsets)',
    { cause: error },
  )
}
