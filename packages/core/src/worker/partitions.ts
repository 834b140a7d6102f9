/**
 * The input partitions assigned to a worker and their offsets: what has been delivered and
 * acked (an OffsetTracker each), what was last committed, and whether a revoke is under way.
 * Rebalance adds and removes them; the conductor tracks deliveries; the committers read them.
 */
import type { TopicPartition } from '../base/topicPartition.js'
import { tpKey } from '../base/topicPartition.js'
import { OffsetTracker } from '../streams/offsetTracker.js'

/** A partition's offsets and what the worker knows of it. */
export type PartitionTracker = OffsetTracker & { tp: TopicPartition; committed: number; revoked: boolean }

export class AssignedPartitions {
  private readonly trackers = new Map<string, PartitionTracker>()

  /** Starts tracking a newly assigned partition whose committed offset is `committed` (-1: none). */
  add(tp: TopicPartition, committed: number): PartitionTracker {
    const t = Object.assign(new OffsetTracker(), { tp, committed, revoked: false })
    this.trackers.set(tpKey(tp.topic, tp.partition), t)
    return t
  }

  get(topic: string, partition: number): PartitionTracker | undefined {
    return this.trackers.get(tpKey(topic, partition))
  }

  has(topic: string, partition: number): boolean {
    return this.trackers.has(tpKey(topic, partition))
  }

  delete(topic: string, partition: number): void {
    this.trackers.delete(tpKey(topic, partition))
  }

  values(): IterableIterator<PartitionTracker> {
    return this.trackers.values()
  }

  /** Partition numbers still assigned under any topic (table shards follow them). */
  partitionNumbers(): Set<number> {
    return new Set([...this.trackers.values()].map((t) => t.tp.partition))
  }

  /** Topic-partitions assigned and not being revoked. */
  assignment(): TopicPartition[] {
    return [...this.trackers.values()].filter((t) => !t.revoked).map((t) => t.tp)
  }

  /** Records that `offset` (the next offset to read) is committed for the partition, if still tracked. */
  committed(topic: string, partition: number, offset: number): void {
    const t = this.trackers.get(tpKey(topic, partition))
    if (t) t.committed = Math.max(t.committed, offset)
  }
}
