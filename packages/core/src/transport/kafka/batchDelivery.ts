/**
 * Hands fetched batches to the runtime (kafkajs `eachBatch`): in chunks of `maxBatchSize`, without
 * aborted records, one partition's batch at a time. It does not decide assignment or commit.
 */
import type { EachBatchPayload } from 'kafkajs'
import { tpKey } from '../../base/topicPartition.js'
import type { ConsumerHandlers, RawRecord, RecordBatch } from '../transport.js'
import type { Heartbeat } from './heartbeat.js'
import { isMarkedAborted } from './kafkajsPatches.js'
import { toRawRecord } from './kafkaRecords.js'
import type { RebalanceGuard } from './rebalanceGuard.js'

/** What delivery needs of its consumer. */
export interface DeliveryHost {
  handlers(): ConsumerHandlers
  /** A handler failed: the member leaves as if it had crashed. */
  fail(error: unknown, what: string): void
}

/**
 * - Assign before delivery. A batch of a partition whose `onAssign` has not resolved waits
 *   (heartbeating) until it has, and is dropped as stale if `onAssign` moved the position (a seek).
 * - Backpressure. `onBatch` is awaited per partition; while it runs, the consumer heartbeats so a
 *   slow runtime does not lose its session, and a heartbeat that reports a rebalance starts the
 *   revoke at once rather than after the batch (the runtime's revoke is what unblocks the batch).
 * - Offsets. A batch's last offset is resolved once `onBatch` took it, which advances kafkajs'
 *   fetch position; nothing is committed here.
 */
export class BatchDelivery {
  constructor(
    private readonly host: DeliveryHost,
    private readonly guard: RebalanceGuard,
    private readonly heartbeat: Heartbeat,
    private readonly maxBatchSize: number,
  ) {}

  async eachBatch({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    this.heartbeat.capture(heartbeat)
    const { topic, partition } = batch
    const key = tpKey(topic, partition)
    const assigning = this.guard.pendingAssign(key)
    // Fetched while onAssign runs (tables recovering): hold it until the partition is ready.
    if (assigning !== undefined) await this.heartbeat.keepAlive(assigning)
    const highWatermark = Number(batch.highWatermark)
    const messages = batch.messages
    for (let i = 0; i < messages.length; i += this.maxBatchSize) {
      if (!this.guard.deliverable(key) || !isRunning() || isStale()) return
      const chunk =
        i === 0 && messages.length <= this.maxBatchSize ? messages : messages.slice(i, i + this.maxBatchSize)
      const records: RawRecord[] = []
      for (const m of chunk) {
        if (!isMarkedAborted(m)) records.push(toRawRecord(topic, partition, m))
      }
      if (records.length === 0) {
        resolveOffset(chunk[chunk.length - 1]!.offset)
        continue
      }
      const batchOut: RecordBatch = { topic, partition, records, highWatermark }
      const taken = this.host
        .handlers()
        .onBatch(batchOut)
        .then(
          () => true,
          (error: unknown) => {
            this.host.fail(error, `onBatch(${topic}[${partition}])`)
            return false
          },
        )
      if (!(await this.heartbeat.keepAlive(taken, () => void this.guard.revokeAll()))) return
      // The next fetch of this partition starts after what the runtime has taken.
      resolveOffset(chunk[chunk.length - 1]!.offset)
    }
  }
}
