/**
 * The memory broker's transaction coordinator: transactional ids and the epoch of each id's
 * newest producer, so registering a producer fences the older ones. It writes nothing: the
 * broker checks and applies a committed transaction's records and offsets all at once.
 */
import { ConfigurationError, TransactionError } from '../../base/errors.js'

export class TransactionCoordinator {
  /** Transactional id -> the epoch of its newest producer. */
  private readonly epochs = new Map<string, number>()

  /** Registers a producer under `transactionalId` and returns its epoch, fencing earlier ones. */
  register(transactionalId: string): number {
    if (!transactionalId) throw new ConfigurationError('A transactional producer needs a non-empty id.')
    const epoch = (this.epochs.get(transactionalId) ?? -1) + 1
    this.epochs.set(transactionalId, epoch)
    return epoch
  }

  /** Throws `TransactionError` with code `FENCED` unless `epoch` is the id's newest producer. */
  checkEpoch(transactionalId: string, epoch: number): void {
    const current = this.epochs.get(transactionalId)
    if (current !== epoch) {
      throw new TransactionError(
        'FENCED',
        `Producer ${transactionalId} (epoch ${epoch}) was fenced by a newer producer with the same ` +
          `transactional id (epoch ${current}): another worker owns its partitions now.`,
      )
    }
  }
}
