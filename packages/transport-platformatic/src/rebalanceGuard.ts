/**
 * The rebalance protocol of one group member around the runtime's onAssign and onRevoke: which
 * partitions it holds, may deliver or may commit. It does not join, fetch, deliver or commit.
 */
import type { ConsumerHandlers, Logger, TopicPartition } from '@mephisto/core'
import { messageOf } from './errors.js'

/** Where a consumer is in its life. */
export type ConsumerPhase = 'new' | 'running' | 'stopping' | 'stopped' | 'aborted' | 'failed'

/** What the guard needs of the consumer it guards. */
export interface GuardHost {
  readonly groupId: string
  readonly logger: Logger
  phase(): ConsumerPhase
  /** The runtime's handlers; set by start(), before the group is joined. */
  handlers(): ConsumerHandlers
  /** A handler failed: the member leaves as if it had crashed. */
  fail(error: unknown, what: string): void
  /** An onAssign resolved: start() may return. */
  assigned(): void
  /** These partitions' onAssign resolved: fetch them. */
  ready(partitions: TopicPartition[]): void
  /** These partitions are no longer held: stop fetching them and forget their positions. */
  released(partitions: TopicPartition[]): void
  /** A paused partition was resumed: fetch it again. */
  resumed(): void
}

export const tpKey = (topic: string, partition: number): string => `${topic}\u0000${partition}`

function sorted(list: TopicPartition[]): TopicPartition[] {
  return [...list].sort((a, b) =>
    a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition,
  )
}

/**
 * - Revoke before rejoin: the member's join loop awaits {@link revokeAll} before every JoinGroup,
 *   so the runtime drains and commits while the member still belongs to the old generation, and
 *   the group cannot hand the partitions to anyone before this member rejoins (eager rebalancing,
 *   as the Java client does).
 * - Assign before delivery: a partition is fetched and delivered only once its `onAssign` resolved;
 *   a generation bumped meanwhile (a revoke) keeps a late `onAssign` from readying stale partitions.
 * - Rebalance handlers never overlap: a revoke waits for the onAssign in progress, an onAssign for
 *   the revoke in progress.
 */
export class RebalanceGuard {
  /** Partition numbers of the last assignment (see lastHeld). */
  private held = new Set<number>()
  /** True while the member belongs to the group: commits mean something only then. */
  member = false
  /** The onAssign in progress (or the last one); a stop waits for it. */
  assigning: Promise<unknown> | undefined
  private readonly assignedTps = new Map<string, TopicPartition>()
  /** Assigned partitions whose onAssign resolved: only these are delivered. */
  private readonly ready = new Set<string>()
  /** Partitions whose onRevoke runs now: the runtime may still commit them. */
  private readonly revoking = new Set<string>()
  private readonly userPaused = new Set<string>()
  private revocation: Promise<void> | undefined
  private generation = 0
  private assignedOnce = false

  constructor(private readonly host: GuardHost) {}

  assignment(): TopicPartition[] {
    return sorted([...this.assignedTps.values()])
  }

  /**
   * The partition numbers of the last assignment, kept through the revoke that precedes every
   * join: what the member tells the group leader it held, so a sticky plan can give them back.
   */
  lastHeld(): number[] {
    return [...this.held]
  }

  /** The runtime may commit a partition it holds or is revoking. */
  mayCommit(topic: string, partition: number): boolean {
    const key = tpKey(topic, partition)
    return this.assignedTps.has(key) || this.revoking.has(key)
  }

  /** The partition's records go to the runtime now: the consumer runs, onAssign resolved, not paused. */
  deliverable(key: string): boolean {
    return this.host.phase() === 'running' && this.ready.has(key) && !this.userPaused.has(key)
  }

  pause(partitions: TopicPartition[]): void {
    for (const tp of partitions) {
      const key = tpKey(tp.topic, tp.partition)
      if (this.assignedTps.has(key)) this.userPaused.add(key)
    }
  }

  resume(partitions: TopicPartition[]): void {
    let any = false
    for (const tp of partitions) any = this.userPaused.delete(tpKey(tp.topic, tp.partition)) || any
    if (any) this.host.resumed()
  }

  /** Revokes every assigned partition (once, however many callers ask); resolves when onRevoke did. */
  revokeAll(): Promise<void> {
    if (this.revocation !== undefined) return this.revocation
    const partitions = sorted([...this.assignedTps.values()])
    const phase = this.host.phase()
    if (partitions.length === 0 || phase === 'aborted' || phase === 'failed') return Promise.resolve()
    const keys = partitions.map((tp) => tpKey(tp.topic, tp.partition))
    this.generation++
    this.assignedTps.clear()
    this.ready.clear()
    for (const key of keys) {
      this.revoking.add(key)
      this.userPaused.delete(key)
    }
    this.host.released(partitions)
    const lost = !this.member
    const pending = this.assigning
    this.revocation = (async () => {
      try {
        // Rebalance handlers never overlap: an onAssign in progress finishes first.
        await pending
        await this.host.handlers().onRevoke(partitions)
      } catch (error) {
        if (lost) {
          // The group moved on without this member (its session expired): the runtime could not
          // commit, which is expected; its uncommitted work is delivered again to the new owner.
          this.host.logger.warn(`partitions of group "${this.host.groupId}" were lost: ${messageOf(error)}`)
        } else this.host.fail(error, 'onRevoke')
      } finally {
        for (const key of keys) this.revoking.delete(key)
        this.revocation = undefined
      }
    })()
    return this.revocation
  }

  /** A join completed with these partitions: onAssign, then they are fetched. */
  onAssigned(partitions: TopicPartition[]): void {
    if (this.host.phase() !== 'running') return
    if (this.assignedTps.size > 0) {
      // Not expected (every join passes revokeAll), but never deliver without revoking.
      this.host.logger.warn(`group "${this.host.groupId}" rejoined without a revoke; revoking now`)
      void this.revokeAll()
    }
    this.member = true
    const list = sorted(partitions)
    const generation = ++this.generation
    for (const tp of list) this.assignedTps.set(tpKey(tp.topic, tp.partition), tp)
    this.held = new Set(list.map((tp) => tp.partition))
    if (list.length === 0 && this.assignedOnce) return
    const previous = this.revocation
    this.assigning = (async () => {
      try {
        await previous
        await this.host.handlers().onAssign(list)
      } catch (error) {
        this.host.fail(error, 'onAssign')
        return
      }
      this.assignedOnce = true
      this.host.assigned()
      if (generation !== this.generation || this.host.phase() !== 'running') return
      for (const tp of list) this.ready.add(tpKey(tp.topic, tp.partition))
      this.host.ready(list)
    })()
  }
}
