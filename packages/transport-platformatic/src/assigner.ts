/**
 * The group leader's side of Mephisto's co-partitioned, sticky, standby-placing assignment on the
 * classic group protocol: what a member announces when it joins and what the leader sends each
 * member, byte for byte what the kafkajs transport's assigner sends (protocol `MephistoCopartitioned`,
 * consumer protocol v0, the same user-data JSON), so kafkajs and platformatic workers can share a
 * group. The dealing rule itself is core's `stickyCopartitionedAssignment`.
 */
import type { MemberData, TopicPartition } from '@mephisto/core'
import {
  decodeAssignmentData,
  decodeMemberData,
  encodeAssignmentData,
  encodeMemberData,
  stickyCopartitionedAssignment,
} from '@mephisto/core'
import {
  decodeConsumerProtocolAssignment,
  decodeConsumerProtocolSubscription,
  encodeConsumerProtocolAssignment,
  encodeConsumerProtocolSubscription,
} from '@platformatic/kafka'

const PROTOCOL_VERSION = 0

/** A member of the group as the JoinGroup response lists it to the leader. */
export interface JoinedMember {
  memberId: string
  metadata: Buffer
}

/** What a member receives: its partitions and the standby copies the leader placed on it. */
export interface MemberAssignment {
  partitions: TopicPartition[]
  /** Undefined when the leader sent none (a leader that does not place standbys). */
  standby: number[] | undefined
}

/** The subscription a member joins with. */
export function encodeSubscription(topics: readonly string[], data: MemberData): Buffer {
  return encodeConsumerProtocolSubscription({
    version: PROTOCOL_VERSION,
    topics: [...topics],
    userData: encodeMemberData(data),
  })
}

/** Every topic some member subscribes to: the leader needs their partition counts. */
export function subscribedTopics(members: readonly JoinedMember[]): string[] {
  const topics = new Set<string>()
  for (const { metadata } of members)
    for (const t of decodeConsumerProtocolSubscription(metadata).topics) topics.add(t)
  return [...topics]
}

/**
 * The leader's plan for the group: each member's SyncGroup assignment. `partitionsOf` gives a
 * subscribed topic's partition numbers (from fresh metadata).
 */
export function assignGroup(
  members: readonly JoinedMember[],
  partitionsOf: (topic: string) => readonly number[],
): { memberId: string; assignment: Buffer }[] {
  const subscriptions = members.map(({ memberId, metadata }) => {
    const subscription = decodeConsumerProtocolSubscription(metadata)
    return { memberId, topics: subscription.topics, ...decodeMemberData(subscription.userData) }
  })
  const plan = stickyCopartitionedAssignment(
    subscriptions,
    partitionsOf,
    Math.max(0, ...subscriptions.map((s) => s.standbyReplicas)),
  )
  return [...plan.active].map(([memberId, partitions]) => {
    const byTopic = new Map<string, number[]>()
    for (const { topic, partition } of partitions) {
      let list = byTopic.get(topic)
      if (list === undefined) byTopic.set(topic, (list = []))
      list.push(partition)
    }
    return {
      memberId,
      assignment: encodeConsumerProtocolAssignment({
        version: PROTOCOL_VERSION,
        assignedPartitions: [...byTopic].map(([topic, list]) => ({ topic, partitions: list })),
        userData: encodeAssignmentData(plan.standby.get(memberId) ?? []),
      }),
    }
  })
}

/** A member's SyncGroup answer: its partitions (topic by topic, ascending) and standby numbers. */
export function decodeAssignment(buffer: Buffer): MemberAssignment {
  const { assignedPartitions, userData } = decodeConsumerProtocolAssignment(buffer)
  const partitions: TopicPartition[] = []
  for (const { topic, partitions: list } of assignedPartitions) {
    for (const partition of [...list].sort((a, b) => a - b)) partitions.push({ topic, partition })
  }
  return { partitions, standby: decodeAssignmentData(userData) }
}
