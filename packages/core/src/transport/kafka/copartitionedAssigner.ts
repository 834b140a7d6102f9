/**
 * The kafkajs adapter of co-partitioned assignment: a `PartitionAssigner` that decodes members'
 * subscriptions, deals partitions by `copartitionedAssignment` (../assignment.ts) and encodes
 * the plan. The dealing rule itself lives there, shared with the memory broker.
 */
import type { Assigner, Cluster, PartitionAssigner } from 'kafkajs'
import kafkajs from 'kafkajs'
import { copartitionedAssignment } from '../assignment.js'

const { AssignerProtocol } = kafkajs

/** The protocol name every member of a Mephisto group announces. */
export const COPARTITIONED_ASSIGNER = 'MephistoCopartitioned'

/**
 * The kafkajs partition assigner for {@link copartitionedAssignment}, members ordered by id.
 * kafkajs hands an assigner the consumer's own `Cluster` (a documented part of its
 * `PartitionAssigner` type); `onCluster` receives it, which is the only way to run code before
 * the consumer rejoins its group.
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
        const plan = copartitionedAssignment(
          subscriptions,
          (topic) => cluster.findTopicPartitionMetadata(topic).map((p) => p.partitionId),
          { memberOrder: 'memberId' },
        )
        return [...plan].map(([memberId, partitions]) => {
          // kafkajs wants topic -> partitions; a member's partitions come topic by topic.
          const assignment: Record<string, number[]> = {}
          for (const { topic, partition } of partitions) (assignment[topic] ??= []).push(partition)
          return {
            memberId,
            memberAssignment: AssignerProtocol.MemberAssignment.encode({
              version: assigner.version,
              assignment,
              userData: Buffer.alloc(0),
            }),
          }
        })
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
