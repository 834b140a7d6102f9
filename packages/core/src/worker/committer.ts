/**
 * Commits: when (every `commitIntervalMs` on the app clock, or after `commitEvery` acks), one at a
 * time, and, under at-least-once, how: flush the producer and the table changelogs, then commit
 * each partition up to its highest contiguous acked offset. Exactly-once commits are delegated to
 * the transactions room. Which offsets are acked is the conductor's business.
 */
import type { Clock, TimerHandle } from '../base/clock.js'
import { MephistoError } from '../base/errors.js'
import type { Logger } from '../base/logger.js'
import type { SensorSet } from '../sensors/sensorSet.js'
import type { Table } from '../tables/table.js'
import type { TableState } from '../tables/tableState.js'
import type { CommitOffset, OutgoingRecord, TransportConsumer } from '../transport/transport.js'
import type { WorkerSettings } from './host.js'
import type { Outbox } from './outbox.js'
import { FlushError } from './outbox.js'
import type { AssignedPartitions } from './partitions.js'
import type { WorkerStatus } from './state.js'
import type { Transactions } from './transactions.js'

export interface CommitterDeps {
  readonly settings: WorkerSettings
  readonly clock: Clock
  readonly logger: Logger
  readonly sensors: SensorSet
  readonly status: WorkerStatus
  readonly partitions: AssignedPartitions
  readonly tables: ReadonlyMap<Table<any, any>, TableState<any, any>>
  readonly outbox: Outbox
  /** Exactly-once only. */
  readonly transactions: Transactions | undefined
  /** The group consumer, once the worker joined (none when it reads no topic). */
  consumer(): TransportConsumer | undefined
}

export class Committer {
  private timer: TimerHandle | undefined
  private committing: Promise<void> | null = null
  private again = false
  private acks = 0

  constructor(private readonly deps: CommitterDeps) {}

  /** A commit is running. */
  get busy(): boolean {
    return this.committing !== null
  }

  /** One more event is done; every `commitEvery` of them ask for a commit. */
  acked(): void {
    if (++this.acks >= this.deps.settings.commitEvery) {
      this.acks = 0
      this.request()
    }
  }

  /** Commits in the background; a failure is logged by the commit itself. */
  request(): void {
    this.commit().catch(() => {})
  }

  /** Commits every `commitIntervalMs` while the worker runs. */
  schedule(): void {
    const { clock, settings, status } = this.deps
    this.timer = clock.setTimeout(() => {
      if (status.state !== 'running') return
      // A failed commit was logged and is retried at the next interval.
      this.commit()
        .catch(() => {})
        .finally(() => status.state === 'running' && this.schedule())
    }, settings.commitIntervalMs)
  }

  /** No more scheduled commits (stop, abort). */
  cancel(): void {
    if (this.timer) this.deps.clock.clearTimeout(this.timer)
  }

  /**
   * Flushes the producer and the table changelogs, then commits every partition up to its
   * highest contiguous acked offset. Serialised: a commit asked for during one runs after it.
   */
  commit(): Promise<void> {
    if (this.committing) {
      this.again = true
      return this.committing
    }
    this.committing = (async () => {
      try {
        do {
          this.again = false
          await this.commitOnce()
        } while (this.again && this.deps.status.state !== 'crashed')
      } finally {
        this.committing = null
      }
    })()
    return this.committing
  }

  private async commitOnce(): Promise<void> {
    const { status, partitions, tables, outbox, sensors, logger } = this.deps
    if (status.dead) return
    if (this.deps.transactions && this.deps.consumer()) return this.deps.transactions.commit()
    const offsets: CommitOffset[] = []
    for (const t of partitions.values()) {
      if (t.committable > t.committed)
        offsets.push({ topic: t.tp.topic, partition: t.tp.partition, offset: t.committable })
    }
    const changelog: OutgoingRecord[] = []
    try {
      // A loop, not push(...records): a commit can hold hundreds of thousands of records, and
      // spreading that many arguments overflows the call stack.
      for (const ts of tables.values()) for (const r of ts.beginCommit()) changelog.push(r)
    } catch (err) {
      for (const ts of tables.values()) ts.abortCommit()
      logger.error('commit failed; it is retried at the next interval', { err })
      throw err
    }
    if (offsets.length === 0 && changelog.length === 0 && outbox.pending() === 0) return
    const state = sensors.onCommitInitiated()
    try {
      const flushed = await outbox.flush(changelog)
      for (const ts of tables.values()) await ts.completeCommit(flushed)
      const consumer = this.deps.consumer()
      if (offsets.length > 0 && consumer && !status.dead) {
        await consumer.commit(offsets)
        for (const o of offsets) {
          partitions.committed(o.topic, o.partition, o.offset)
          sensors.onOffsets(o, { committed: o.offset })
        }
      }
      sensors.onCommitCompleted(state, offsets)
    } catch (err) {
      if (err instanceof FlushError) throw err
      for (const ts of tables.values()) ts.abortCommit()
      if (status.dead) return
      logger.error('commit failed; it is retried at the next interval', { err })
      throw new MephistoError('COMMIT_FAILED', `commit failed: ${(err as Error)?.message ?? err}`, {
        cause: err,
      })
    }
  }
}
