import type { Assigner, Cluster, PartitionAssigner } from 'kafkajs'
import kafkajs from 'kafkajs'

const { AssignerProtocol } = kafkajs

/** The protocol name every member of a Mephisto group announces. */
export const COPARTITIONED_ASSIGNER = 'MephistoCopartitioned'

export interface MemberSubscription {
  memberId: string
  topics: readonly string[]
}

/**
 * Co-partitioned assignment, the memory broker's and Faust's: partition p of every subscribed
 * topic goes to the same member, `subscribers[p % subscribers.length]`, members ordered by id.
 * A table and the topic that feeds it must live on one worker, so a key's events and its table
 * shard meet there. Returns member id -> topic -> partitions (every member appears, possibly empty).
 */
export function copartitionedAssignment(
  members: readonly MemberSubscription[],
  partitionsOf: (topic: string) => readonly number[],
): Map<string, Record<string, number[]>> {
  const sorted = [...members].sort((a, b) => (a.memberId < b.memberId ? -1 : a.memberId > b.memberId ? 1 : 0))
  const result = new Map<string, Record<string, number[]>>()
  const subscribers = new Map<string, string[]>()
  for (const { memberId, topics } of sorted) {
    result.set(memberId, {})
    for (const topic of new Set(topics)) {
      let list = subscribers.get(topic)
      if (list === undefined) subscribers.set(topic, (list = []))
      list.push(memberId)
    }
  }
  for (const [topic, list] of subscribers) {
    const partitions = [...partitionsOf(topic)].sort((a, b) => a - b)
    for (const p of partitions) {
      const owner = result.get(list[p % list.length]!)!
      ;(owner[topic] ??= []).push(p)
    }
  }
  return result
}

/**
 * The kafkajs partition assigner for {@link copartitionedAssignment}. kafkajs hands an assigner the
 * consumer's own `Cluster` (a documented part of its `PartitionAssigner` type); `onCluster`
 * receives it, which is the only way to run code before the consumer rejoins its group.
 */
export function copartitionedAssigner(onCluster?: (cluster: Cluster) => void): PartitionAssigner {
  return ({ cluster }) => {
    onCluster?.(cluster)
    const assigner: Assigner = {
      name: COPARTITIONED_ASSIGNER,
      version: 0,
      async assign({ members, topics }) {
        const subscriptions = members.map(({ memberId, memberMetadata }) => ({
          memberId,
          topics: AssignerProtocol.MemberMetadata.decode(memberMetadata)?.topics ?? topics,
        }))
        // The leader refreshed metadata for its own topics only; members may name others.
        const all = [...new Set(subscriptions.flatMap((s) => s.topics))]
        await cluster.addMultipleTargetTopics(all)
        const plan = copartitionedAssignment(subscriptions, (topic) =>
          cluster.findTopicPartitionMetadata(topic).map((p) => p.partitionId),
        )
        return [...plan].map(([memberId, assignment]) => ({
          memberId,
          memberAssignment: AssignerProtocol.MemberAssignment.encode({
            version: assigner.version,
            assignment,
            userData: Buffer.alloc(0),
          }),
        }))
      },
      protocol({ topics }) {
        return {
          name: COPARTITIONED_ASSIGNER,
          metadata: AssignerProtocol.MemberMetadata.encode({
            version: assigner.version,
            topics,
            userData: Buffer.alloc(0),
          }),
        }
      },
    }
    return assigner
  }
}
