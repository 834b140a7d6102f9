/**
 * Delivers one assigned partition to one group member: fetch, await `onBatch`, repeat; sleep
 * when caught up until an append wakes it. It does not decide what is assigned or where to start
 * (the group's rebalance does) and never commits offsets.
 */
import { deferred } from '../../base/deferred.js'
import type { ConsumerHandlers } from '../transport.js'
import type { LogWaiter, PartitionLog } from './partitionLog.js'

/** What a fetcher needs of the member it delivers to; groupMember.ts's `Member` is one. */
export interface FetchingMember {
  readonly handlers: ConsumerHandlers
  /** Where an out-of-range position resets to: the log start, or its end. */
  readonly fromBeginning: boolean
  readonly maxBatchSize: number
  /** Handlers running now; a fetcher counts its `onBatch` in. */
  inFlight: number
  /** A handler failed: the member leaves the group. */
  fail(error: unknown, what: string): void
}

export class Fetcher implements LogWaiter {
  position = 0
  paused = false
  stopped = false
  private wakeUp: (() => void) | null = null

  constructor(
    readonly member: FetchingMember,
    readonly log: PartitionLog,
  ) {}

  start(position: number): void {
    this.position = position
    void this.run()
  }

  wake(): void {
    const wakeUp = this.wakeUp
    if (wakeUp !== null) {
      this.wakeUp = null
      wakeUp()
    }
  }

  stop(): void {
    this.stopped = true
    this.log.waiters.delete(this)
    this.wake()
  }

  /** True when this fetcher has nothing left to deliver right now. */
  caughtUp(): boolean {
    return this.stopped || this.paused || this.position >= this.log.endOffset
  }

  private sleep(): Promise<void> {
    const woken = deferred()
    this.wakeUp = woken.resolve
    return woken.promise
  }

  private async run(): Promise<void> {
    const log = this.log
    const member = this.member
    const { topic, partition } = log
    while (!this.stopped) {
      if (this.paused) {
        await this.sleep()
        continue
      }
      const end = log.endOffset
      // Out of range (the log was recreated or a committed offset points past its end):
      // Kafka's auto.offset.reset.
      if (this.position > end) this.position = member.fromBeginning ? log.startOffset : end
      if (this.position < end) {
        const records = log.read(this.position, end, member.maxBatchSize)
        // Compaction can leave the rest of the log empty past our position.
        this.position = records.length === 0 ? end : records[records.length - 1]!.offset + 1
        if (records.length === 0) continue
        member.inFlight++
        try {
          await member.handlers.onBatch({ topic, partition, records, highWatermark: end })
        } catch (error) {
          member.fail(error, `onBatch(${topic}[${partition}])`)
          return
        } finally {
          member.inFlight--
        }
        continue
      }
      log.waiters.add(this)
      await this.sleep()
      // Let the writer finish its turn first: records appended one by one (a producer awaiting
      // each send) then arrive as one batch instead of one batch per record.
      if (!this.stopped) await new Promise<void>((resolve) => setImmediate(resolve))
    }
  }
}
