/**
 * The rebalance protocol of one group member around the runtime's onAssign and onRevoke: which
 * partitions it holds, may deliver or may commit. It does not fetch, deliver or commit records.
 */
import type { Logger } from '../../base/logger.js'
import { sortTopicPartitions, tpKey } from '../../base/topicPartition.js'
import type { ConsumerHandlers, TopicPartition } from '../transport.js'
import type { Heartbeat } from './heartbeat.js'
import { messageOf } from './kafkaErrors.js'

/** Where a consumer is in its life. */
export type ConsumerPhase = 'new' | 'running' | 'stopping' | 'stopped' | 'aborted' | 'failed'

/** What the guard needs of the consumer it guards. */
export interface RebalanceHost {
  readonly groupId: string
  readonly logger: Logger
  phase(): ConsumerPhase
  /** The runtime's handlers; set by start(), before the group is joined. */
  handlers(): ConsumerHandlers
  /** A handler failed: the member leaves as if it had crashed. */
  fail(error: unknown, what: string): void
  /** An onAssign resolved: start() may return. */
  assigned(): void
  /** Pauses or resumes fetching in kafkajs. */
  pause(partitions: TopicPartition[]): void
  resume(partitions: TopicPartition[]): void
}

/**
 * - Revoke before rejoin. kafkajs has no rebalance listener and rejoins on its own when a
 *   heartbeat says the group is rebalancing. {@link beforeJoin} runs before every (re)join (see
 *   `beforeEveryJoin` in kafkajsPatches.ts) and awaits `onRevoke(every assigned partition)`. The
 *   runtime so drains and commits while the member still belongs to the old generation, and the
 *   group cannot hand the partitions to anyone before this member rejoins (eager rebalancing, as
 *   the Java client does).
 * - Assign before delivery. GROUP_JOIN fires before kafkajs fetches; a partition becomes
 *   deliverable once its `onAssign` resolved, and a generation bumped meanwhile (a revoke) keeps a
 *   late `onAssign` from resuming stale partitions.
 * - Rebalance handlers never overlap: a revoke waits for the onAssign in progress, an onAssign for
 *   the revoke in progress.
 */
export class RebalanceGuard {
  /** Partition numbers of the last assignment (see lastHeld). */
  private held = new Set<number>()
  /** True while kafkajs holds a live membership: commits mean something only then. */
  member = false
  /** The onAssign in progress (or the last one); a stop waits for it. */
  assigning: Promise<unknown> | undefined
  /** Partitions of the current assignment (from GROUP_JOIN until revoked). */
  private readonly assigned = new Map<string, TopicPartition>()
  /** Assigned partitions whose onAssign resolved: only these are delivered. */
  private readonly ready = new Set<string>()
  /** Partitions whose onRevoke runs now: the runtime may still commit them. */
  private readonly revoking = new Set<string>()
  private readonly userPaused = new Set<string>()
  private revocation: Promise<void> | undefined
  /** Bumped on every assignment and revocation, so a late onAssign does not resume stale partitions. */
  private generation = 0
  private assignedOnce = false

  constructor(
    private readonly host: RebalanceHost,
    private readonly heartbeat: Heartbeat,
  ) {}

  assignment(): TopicPartition[] {
    return sortTopicPartitions([...this.assigned.values()])
  }

  /**
   * The partition numbers of the last assignment, kept through the revoke that precedes every
   * join (eager rebalancing revokes everything first): what the member tells the group leader it
   * held, so a sticky plan can give them back.
   */
  lastHeld(): number[] {
    return [...this.held]
  }

  /** The runtime may commit a partition (by its `tpKey`) it holds or is revoking. */
  mayCommit(key: string): boolean {
    return this.assigned.has(key) || this.revoking.has(key)
  }

  /** The partition's records go to the runtime now: the consumer runs, onAssign resolved, not paused. */
  deliverable(key: string): boolean {
    return this.host.phase() === 'running' && this.ready.has(key) && !this.userPaused.has(key)
  }

  /** The onAssign that an assigned partition still waits for, if any. */
  pendingAssign(key: string): Promise<unknown> | undefined {
    if (!this.ready.has(key) && this.assigned.has(key) && this.assigning !== undefined) return this.assigning
    return undefined
  }

  pause(partitions: TopicPartition[]): void {
    const toPause: TopicPartition[] = []
    for (const tp of partitions) {
      const key = tpKey(tp.topic, tp.partition)
      if (!this.assigned.has(key)) continue
      this.userPaused.add(key)
      toPause.push(tp)
    }
    this.host.pause(toPause)
  }

  resume(partitions: TopicPartition[]): void {
    const toResume: TopicPartition[] = []
    for (const tp of partitions) {
      const key = tpKey(tp.topic, tp.partition)
      if (!this.userPaused.delete(key)) continue
      // A partition still waiting for onAssign stays paused; onAssign resumes it.
      if (this.ready.has(key)) toResume.push(tp)
    }
    this.host.resume(toResume)
  }

  /** Before every (re)join: revokes what is held, heartbeating meanwhile; undefined when nothing is. */
  beforeJoin(): Promise<unknown> | undefined {
    if (this.assigned.size === 0 && this.revocation === undefined) return undefined
    return this.heartbeat.keepAlive(this.revokeAll())
  }

  /** Revokes every assigned partition (once, however many callers ask); resolves when onRevoke did. */
  revokeAll(): Promise<void> {
    if (this.revocation !== undefined) return this.revocation
    const partitions = sortTopicPartitions([...this.assigned.values()])
    const phase = this.host.phase()
    if (partitions.length === 0 || phase === 'aborted' || phase === 'failed') return Promise.resolve()
    const keys = partitions.map((tp) => tpKey(tp.topic, tp.partition))
    this.generation++
    this.assigned.clear()
    this.ready.clear()
    for (const key of keys) {
      this.revoking.add(key)
      this.userPaused.delete(key)
    }
    const lost = !this.member
    const pending = this.assigning
    this.revocation = (async () => {
      try {
        // Rebalance handlers never overlap: an onAssign in progress finishes first.
        await pending
        await this.host.handlers().onRevoke(partitions)
      } catch (error) {
        if (lost) {
          // The membership was lost before (kafkajs crashed and restarts): the runtime could
          // not commit, which is expected; its uncommitted work is redelivered to the new owner.
          this.host.logger.warn(`partitions of group "${this.host.groupId}" were lost: ${messageOf(error)}`)
        } else this.host.fail(error, 'onRevoke')
      } finally {
        for (const key of keys) this.revoking.delete(key)
        this.revocation = undefined
      }
    })()
    return this.revocation
  }

  /** GROUP_JOIN fires synchronously before kafkajs fetches anything of the new assignment. */
  onGroupJoin(memberAssignment: Record<string, number[]>): void {
    if (this.host.phase() !== 'running') {
      // Joined while stopping: deliver nothing, the disconnect in progress leaves the group.
      this.host.pause(flatten(memberAssignment))
      return
    }
    if (this.assigned.size > 0) {
      // Not expected (every join passes beforeJoin), but never deliver without revoking.
      this.host.logger.warn(`group "${this.host.groupId}" rejoined without a revoke; revoking now`)
      void this.revokeAll()
    }
    this.member = true
    const partitions = sortTopicPartitions(flatten(memberAssignment))
    const generation = ++this.generation
    for (const tp of partitions) this.assigned.set(tpKey(tp.topic, tp.partition), tp)
    this.held = new Set(partitions.map((tp) => tp.partition))
    // Not paused while onAssign runs: kafkajs fetches at once, and eachBatch holds what arrives
    // until onAssign resolved (a seek made there drops it as stale). Pausing every partition made
    // kafkajs sleep its whole maxWaitTime before the first fetch: half a second at every start.
    if (partitions.length === 0 && this.assignedOnce) return
    const previous = this.revocation
    this.assigning = (async () => {
      try {
        await previous
        await this.host.handlers().onAssign(partitions)
      } catch (error) {
        this.host.fail(error, 'onAssign')
        return
      }
      this.assignedOnce = true
      this.host.assigned()
      if (generation !== this.generation || this.host.phase() !== 'running') return
      const resume: TopicPartition[] = []
      for (const tp of partitions) {
        const key = tpKey(tp.topic, tp.partition)
        this.ready.add(key)
        if (!this.userPaused.has(key)) resume.push(tp)
      }
      this.host.resume(resume)
    })()
  }
}

function flatten(assignment: Record<string, number[]>): TopicPartition[] {
  return Object.entries(assignment).flatMap(([topic, partitions]) =>
    partitions.map((partition) => ({ topic, partition })),
  )
}
