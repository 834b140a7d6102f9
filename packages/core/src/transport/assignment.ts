/**
 * Co-partitioned assignment (Faust's), the one rule both brokers deal partitions by. Pure: it
 * reads no metadata and talks to no broker; the memory broker's group and the kafkajs assigner
 * (kafka/copartitionedAssigner.ts) feed it members and partition numbers and apply its plan.
 */
import type { TopicPartition } from '../base/topicPartition.js'

export interface MemberSubscription {
  memberId: string
  topics: readonly string[]
}

export interface CopartitionedOptions {
  /**
   * The order members are dealt partitions in. `'memberId'` sorts them by id, which every Kafka
   * group leader agrees on whatever order the members joined in; `'given'` keeps the order of
   * `members` (the memory broker's join order). Default: `'memberId'`.
   */
  memberOrder?: 'memberId' | 'given'
}

/**
 * Partition p of every subscribed topic goes to the same member, `subscribers[p % subscribers.length]`
 * where `subscribers` are the topic's subscribers in dealing order. A table and the topic that
 * feeds it must live on one worker, so a key's events and its table shard meet there; a topic
 * with fewer partitions simply has fewer to deal.
 *
 * Returns member id -> its partitions in dealing order: topic by topic (in the order topics were
 * first subscribed to), each topic's partitions ascending. Every member appears, possibly with none.
 */
export function copartitionedAssignment(
  members: readonly MemberSubscription[],
  partitionsOf: (topic: string) => readonly number[],
  options: CopartitionedOptions = {},
): Map<string, TopicPartition[]> {
  const dealt =
    options.memberOrder === 'given'
      ? members
      : [...members].sort((a, b) => (a.memberId < b.memberId ? -1 : a.memberId > b.memberId ? 1 : 0))
  const result = new Map<string, TopicPartition[]>()
  const subscribers = new Map<string, string[]>()
  for (const { memberId, topics } of dealt) {
    result.set(memberId, [])
    for (const topic of new Set(topics)) {
      let list = subscribers.get(topic)
      if (list === undefined) subscribers.set(topic, (list = []))
      list.push(memberId)
    }
  }
  for (const [topic, list] of subscribers) {
    const partitions = [...partitionsOf(topic)].sort((a, b) => a - b)
    for (const partition of partitions) result.get(list[partition % list.length]!)!.push({ topic, partition })
  }
  return result
}
