/**
 * Read-committed filtering of raw fetch responses, by the Java client's rule: which records belong
 * to aborted transactions. It does not fetch or patch anything (see kafkajsPatches.ts for that).
 */

/** A record as kafkajs' fetch response decodes it. */
export interface FetchedMessage {
  offset: string
  key: Buffer | null
  value: Buffer | null
  timestamp: string
  headers?: Record<string, unknown>
  isControlRecord?: boolean
  batchContext?: { producerId: string; inTransaction: boolean }
}

/** What a fetch response lists of a partition's aborted transactions. */
export interface AbortedTransaction {
  producerId: string
  firstOffset: string
}

/**
 * With read-committed isolation the broker still returns aborted transactional records, and lists
 * where the aborted transactions start; the client drops their records, up to each producer's
 * abort marker. The list is in the order the transactions were aborted, not by first offset, and
 * several can start before one record: kafkajs 2.2.4 assumes neither and lets records of an
 * aborted transaction through when transactions of several producers interleave (as exactly-once
 * workers' do in a shared output partition). This is the Java client's rule. The returned
 * predicate is true for records to drop, control records included; call it on every record of a
 * partition's response, in offset order.
 */
export function abortedFilter(
  abortedTransactions: readonly AbortedTransaction[] | undefined,
): (m: FetchedMessage) => boolean {
  if (abortedTransactions === undefined || abortedTransactions.length === 0) return () => false
  const remaining = [...abortedTransactions].sort((a, b) => Number(a.firstOffset) - Number(b.firstOffset))
  const abortedProducers = new Set<string>()
  return (m) => {
    while (remaining.length > 0 && Number(m.offset) >= Number(remaining[0]!.firstOffset)) {
      abortedProducers.add(remaining.shift()!.producerId)
    }
    const producerId = m.batchContext?.producerId
    if (producerId === undefined) return false
    if (m.isControlRecord) {
      abortedProducers.delete(producerId)
      return true
    }
    return abortedProducers.has(producerId) && m.batchContext?.inTransaction === true
  }
}
