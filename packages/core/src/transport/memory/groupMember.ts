/**
 * A member of a memory consumer group: its fetchers, pause and resume, fenced commits, leaving
 * and crashing, and running its rebalance handlers. It does not decide what it is assigned: the
 * group's rebalance (consumerGroup.ts) does, and calls back in here.
 */
import { deferred } from '../../base/deferred.js'
import { BrokerError, MephistoError, TransactionError } from '../../base/errors.js'
import { handlerFailure } from '../handlerFailure.js'
import type { CommitOffset, ConsumerHandlers, TopicPartition } from '../transport.js'
import type { Fetcher, FetchingMember } from './fetcher.js'
import { type PartitionLog, sortedPartitions, type Topic } from './partitionLog.js'

export const DEFAULT_MAX_BATCH_SIZE = 500

export interface JoinOptions {
  /** Where a partition without a committed offset starts. Default: `true` (the log start). */
  fromBeginning?: boolean
  /** Most records per `onBatch`. Default: 500. */
  maxBatchSize?: number
  /** Standby copies per partition number the group places (see ConsumerOptions). */
  standbyReplicas?: number
}

/**
 * A member of a consumer group, as returned by {@link MemoryBroker.join}. The memory transport's
 * consumer is a thin wrapper around it.
 */
export interface GroupMember {
  readonly id: string
  readonly groupId: string
  /** Resolves once the first assignment's `onAssign` resolved (or the member left first). */
  readonly ready: Promise<void>
  /** The handler error that made the member leave the group, if one did. */
  readonly failure: unknown
  /** Currently assigned partitions, by topic then partition. */
  assignment(): TopicPartition[]
  /** Partition numbers the group's last plan gave this member standby copies of. */
  readonly standby: readonly number[]
  /** Stops delivering these partitions until resumed; a batch already in `onBatch` finishes. */
  pause(partitions: readonly TopicPartition[]): void
  resume(partitions: readonly TopicPartition[]): void
  /**
   * Stores committed offsets for the group. Like a Kafka broker fencing a stale generation, it
   * refuses commits from a member that left or crashed and for partitions the member does not
   * own (during `onRevoke` it still owns the revoked ones), so a zombie never overwrites the
   * progress of a partition's new owner.
   */
  commit(offsets: readonly CommitOffset[]): void
  /**
   * For a transaction that commits `offsets` with this member's group membership (KIP-447): throws
   * a `FENCED` TransactionError when the member left or crashed, or does not own one of them (the
   * group moved on without it), as a Kafka group coordinator refuses a stale generation.
   */
  checkMembership(offsets: readonly CommitOffset[]): void
  /**
   * Leaves the group: revokes every partition (awaiting `onRevoke`), then lets the others take
   * them. Rejects with `failure` when a handler failure had already made the member leave.
   */
  leave(): Promise<void>
  /**
   * Leaves at once without revoking (a crash): nothing is drained or committed, and whatever was
   * processed past the committed offsets is delivered again to the partitions' next owners.
   */
  crash(error?: unknown): void
}

export type MemberState = 'active' | 'leaving' | 'left' | 'crashed'

/** What a member needs of its group; consumerGroup.ts's `Group` is it. */
export interface MemberGroup {
  readonly id: string
  /** The broker's topics, to find a partition's log. */
  readonly topics: ReadonlyMap<string, Topic>
  remove(member: Member): void
  requestRebalance(): void
  setCommitted(topic: string, partition: number, offset: number): void
}

export class Member implements GroupMember, FetchingMember {
  readonly id: string
  readonly groupId: string
  readonly ready: Promise<void>
  failure: unknown = undefined

  readonly topics: readonly string[]
  readonly handlers: ConsumerHandlers
  readonly fromBeginning: boolean
  readonly maxBatchSize: number
  readonly standbyReplicas: number
  /** Partition numbers the group's last plan gave this member standby copies of. */
  standby: number[] = []
  /** Assigned partitions, keyed by log (a recreated topic is a different log). */
  readonly fetchers = new Map<PartitionLog, Fetcher>()
  state: MemberState = 'active'
  /** Handlers (onBatch, onAssign, onRevoke) running now. */
  inFlight = 0
  assignedOnce = false
  /** Resolves (to false) when the member crashes, to stop waiting on its handlers. */
  readonly crashed: Promise<false>
  /** Resolves once the member is out of the group. */
  readonly left: Promise<void>

  private readonly group: MemberGroup
  private settleReady: (error?: unknown) => void
  private markCrashed: (value: false) => void
  private markLeft: () => void

  constructor(
    group: MemberGroup,
    id: string,
    topics: readonly string[],
    handlers: ConsumerHandlers,
    options: JoinOptions,
  ) {
    this.group = group
    this.groupId = group.id
    this.id = id
    this.topics = topics
    this.handlers = handlers
    this.fromBeginning = options.fromBeginning ?? true
    this.maxBatchSize = options.maxBatchSize ?? DEFAULT_MAX_BATCH_SIZE
    this.standbyReplicas = options.standbyReplicas ?? 0
    const ready = deferred()
    this.ready = ready.promise
    // Callers who never await `ready` must not see an unhandled rejection; those who do still do.
    this.ready.catch(() => {})
    let settled = false
    this.settleReady = (error?: unknown): void => {
      if (settled) return
      settled = true
      if (error === undefined) ready.resolve()
      else ready.reject(error)
    }
    const crashed = deferred<false>()
    this.crashed = crashed.promise
    this.markCrashed = crashed.resolve
    const left = deferred()
    this.left = left.promise
    this.markLeft = left.resolve
  }

  assignment(): TopicPartition[] {
    return sortedPartitions(this.fetchers.keys())
  }

  pause(partitions: readonly TopicPartition[]): void {
    for (const tp of partitions) {
      const fetcher = this.fetcherOf(tp)
      if (fetcher) fetcher.paused = true
    }
  }

  resume(partitions: readonly TopicPartition[]): void {
    for (const tp of partitions) {
      const fetcher = this.fetcherOf(tp)
      if (fetcher?.paused) {
        fetcher.paused = false
        fetcher.wake()
      }
    }
  }

  commit(offsets: readonly CommitOffset[]): void {
    if (this.state === 'left' || this.state === 'crashed') {
      throw new MephistoError(
        'COMMIT_FAILED',
        `Commit refused: consumer ${this.id} is no longer a member of group "${this.groupId}". ` +
          'Offsets can only be committed while the consumer runs; start a new consumer to continue.',
        this.failure === undefined ? undefined : { cause: this.failure },
      )
    }
    for (const { topic, partition, offset } of offsets) {
      if (!Number.isInteger(offset) || offset < 0) {
        throw new BrokerError(
          `Commit refused: offset ${offset} for ${topic}[${partition}] is not a valid offset.`,
        )
      }
      if (!this.fetcherOf({ topic, partition })) {
        throw new MephistoError(
          'COMMIT_FAILED',
          `Commit refused: ${topic}[${partition}] is not assigned to consumer ${this.id} of group ` +
            `"${this.groupId}" (it was revoked or never assigned). Commit only partitions you own.`,
        )
      }
    }
    for (const { topic, partition, offset } of offsets) this.group.setCommitted(topic, partition, offset)
  }

  checkMembership(offsets: readonly CommitOffset[]): void {
    const gone = this.state === 'left' || this.state === 'crashed'
    const lost = offsets.find((o) => !this.fetcherOf(o))
    if (gone || lost) {
      throw new TransactionError(
        'FENCED',
        `Transaction refused: consumer ${this.id} ` +
          (gone
            ? `is no longer a member of group "${this.groupId}"`
            : `no longer owns ${lost!.topic}[${lost!.partition}] in group "${this.groupId}"`) +
          '; the group fenced it.',
      )
    }
  }

  async leave(): Promise<void> {
    if (this.state === 'active') {
      this.state = 'leaving'
      this.group.requestRebalance()
    }
    await this.left
    if (this.failure !== undefined) throw this.failure
  }

  crash(error?: unknown): void {
    if (this.state === 'left' || this.state === 'crashed') return
    this.state = 'crashed'
    if (error !== undefined) this.failure = error
    for (const fetcher of this.fetchers.values()) fetcher.stop()
    this.fetchers.clear()
    this.group.remove(this)
    this.markCrashed(false)
    this.settleReady(error)
    this.markLeft()
    this.group.requestRebalance()
  }

  /** A handler failed: the member leaves like a crash so its partitions move on. */
  fail(error: unknown, what: string): void {
    if (this.state === 'left' || this.state === 'crashed') return
    const lost = handlerFailure(error, `${what} of consumer ${this.id}`, this.groupId)
    this.crash(lost)
    // After the crash bookkeeping, so the runtime sees a consumer that is already gone.
    try {
      this.handlers.onLost?.(lost)
    } catch {}
  }

  /** The rebalance has taken every partition away: the member is out. */
  markGone(): void {
    this.state = 'left'
    this.group.remove(this)
    this.settleReady()
    this.markLeft()
  }

  /** The first assignment has been handled. */
  markAssigned(): void {
    this.settleReady()
  }

  /**
   * Runs a rebalance handler. Resolves to false when it failed or the member crashed
   * meanwhile (a crashed member's handler is not waited for: it may never finish).
   */
  async invoke(call: () => Promise<void>, what: string): Promise<boolean> {
    if (this.state === 'crashed' || this.state === 'left') return false
    this.inFlight++
    try {
      let done: Promise<boolean>
      try {
        done = Promise.resolve(call()).then(
          () => true,
          (error: unknown) => {
            this.fail(error, what)
            return false
          },
        )
      } catch (error) {
        this.fail(error, what)
        return false
      }
      const ok = await Promise.race([done, this.crashed])
      // The state may have changed while awaiting; TypeScript still narrows it from above.
      return ok && (this.state as MemberState) !== 'crashed'
    } finally {
      this.inFlight--
    }
  }

  private fetcherOf(tp: TopicPartition): Fetcher | undefined {
    const log = this.group.topics.get(tp.topic)?.partitions[tp.partition]
    return log === undefined ? undefined : this.fetchers.get(log)
  }
}
