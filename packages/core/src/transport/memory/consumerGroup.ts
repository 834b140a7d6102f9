/**
 * A memory consumer group: its members in join order, its committed offsets, and its rebalances,
 * serialized, dealing partitions by co-partitioned assignment (../assignment.ts). It does not
 * deliver records (fetcher.ts) or police a member's commits (groupMember.ts).
 */
import { stickyCopartitionedAssignment } from '../assignment.js'
import { Fetcher } from './fetcher.js'
import type { Member, MemberGroup } from './groupMember.js'
import { type PartitionLog, sortedPartitions, type Topic } from './partitionLog.js'

export class Group implements MemberGroup {
  /** Members in join order, which is the order partitions are dealt in. */
  members: Member[] = []
  /** topic -> partition -> next offset to read. */
  readonly committed = new Map<string, Map<number, number>>()
  rebalancing = false
  /** A rebalance was asked for and has not started yet. */
  dirty = false

  constructor(
    /** The broker's topics, to deal partitions from. */
    readonly topics: ReadonlyMap<string, Topic>,
    readonly id: string,
  ) {}

  committedOffset(topic: string, partition: number): number {
    return this.committed.get(topic)?.get(partition) ?? -1
  }

  setCommitted(topic: string, partition: number, offset: number): void {
    let byPartition = this.committed.get(topic)
    if (byPartition === undefined) this.committed.set(topic, (byPartition = new Map()))
    byPartition.set(partition, offset)
  }

  remove(member: Member): void {
    const i = this.members.indexOf(member)
    if (i >= 0) this.members.splice(i, 1)
  }

  subscribesTo(topic: string): boolean {
    return this.members.some((m) => m.topics.includes(topic))
  }

  /**
   * True when the group has nothing more to deliver right now: no rebalance running or pending,
   * no handler in flight, every assigned, unpaused partition read to its end.
   */
  idle(): boolean {
    if (this.rebalancing || this.dirty) return false
    for (const member of this.members) {
      if (member.inFlight > 0) return false
      for (const fetcher of member.fetchers.values()) if (!fetcher.caughtUp()) return false
    }
    return true
  }

  requestRebalance(): void {
    this.dirty = true
    if (!this.rebalancing) {
      this.rebalancing = true
      void this.runRebalances()
    }
  }

  private async runRebalances(): Promise<void> {
    try {
      // Members that join (or leave) in the same tick share one rebalance, as Kafka's
      // initial rebalance delay would have them.
      await null
      for (;;) {
        this.dirty = false
        const assigned = await this.rebalance()
        if (!this.dirty) this.rebalancing = false
        // Reported ready only now, so that a consumer whose start() resolved sees an idle group
        // (when nothing else is pending) rather than one still finishing its rebalance.
        for (const member of assigned) member.markAssigned()
        if (!this.rebalancing) return
      }
    } catch (error) {
      this.rebalancing = false
      throw error
    }
  }

  /**
   * One rebalance: every member's lost partitions are revoked (awaited, concurrently) before any
   * member is assigned what it gained. Partitions a member keeps are not touched.
   */
  private async rebalance(): Promise<Member[]> {
    const members = this.members.slice()
    const target = this.assign(members.filter((m) => m.state === 'active'))

    await Promise.all(
      members.map(async (member) => {
        const keep = target.get(member)
        const lost: Fetcher[] = []
        for (const [log, fetcher] of member.fetchers) if (!keep?.has(log)) lost.push(fetcher)
        if (lost.length === 0) return
        // No record of a revoked partition is delivered once onRevoke runs; an in-flight batch may finish.
        for (const fetcher of lost) fetcher.stop()
        const partitions = sortedPartitions(lost.map((f) => f.log))
        await member.invoke(() => member.handlers.onRevoke(partitions), 'onRevoke')
        for (const fetcher of lost) member.fetchers.delete(fetcher.log)
      }),
    )
    // A member that began leaving after the target was computed may still own partitions: the
    // rebalance its leave() asked for revokes them.
    for (const member of members)
      if (member.state === 'leaving' && member.fetchers.size === 0) member.markGone()

    const assigned: Member[] = []
    await Promise.all(
      members.map(async (member) => {
        // A member that crashed or began leaving meanwhile gets nothing; the rebalance its
        // departure asked for hands its share to the others.
        if (member.state !== 'active') return
        const gained: PartitionLog[] = []
        for (const log of target.get(member) ?? []) if (!member.fetchers.has(log)) gained.push(log)
        // Kafka calls the assignment listener after joining even with nothing assigned, so a
        // member with no partitions still reports ready.
        if (gained.length === 0 && member.assignedOnce) return
        const fetchers = gained.map((log) => new Fetcher(member, log))
        for (const fetcher of fetchers) member.fetchers.set(fetcher.log, fetcher)
        const ok = await member.invoke(() => member.handlers.onAssign(sortedPartitions(gained)), 'onAssign')
        if (!ok) return
        for (const fetcher of fetchers) {
          if (fetcher.stopped) continue
          // Read now, after every revoke of this rebalance committed what it had.
          const committed = this.committedOffset(fetcher.log.topic, fetcher.log.partition)
          const log = fetcher.log
          fetcher.start(committed >= 0 ? committed : member.fromBeginning ? log.startOffset : log.endOffset)
        }
        member.assignedOnce = true
        assigned.push(member)
      }),
    )
    return assigned
  }

  /**
   * Each active member's target partitions: co-partitioned and sticky (a member keeps what it
   * holds when the plan stays balanced), a new group dealt in join order (Kafka's assigner orders
   * members by id instead; join order is what the memory broker has always used). Also places
   * standby copies (the largest `standbyReplicas` the members ask for). Logs are listed in dealing
   * order, which is the order their fetchers start in.
   */
  private assign(members: Member[]): Map<Member, Set<PartitionLog>> {
    const { active, standby } = stickyCopartitionedAssignment(
      members.map((member) => ({
        memberId: member.id,
        topics: member.topics,
        owned: [...member.fetchers.keys()].map((log) => log.partition),
        standby: member.standby,
      })),
      (topic) => this.topics.get(topic)?.partitions.map((_, p) => p) ?? [],
      Math.max(0, ...members.map((m) => m.standbyReplicas)),
      'given',
    )
    const target = new Map<Member, Set<PartitionLog>>()
    for (const member of members) {
      const logs = new Set<PartitionLog>()
      for (const { topic, partition } of active.get(member.id)!)
        logs.add(this.topics.get(topic)!.partitions[partition]!)
      target.set(member, logs)
      member.standby = standby.get(member.id) ?? []
    }
    return target
  }
}
