/**
 * The kafkajs adapter of co-partitioned assignment: a `PartitionAssigner` that decodes members'
 * subscriptions, deals partitions by `copartitionedAssignment` (../assignment.ts) and encodes
 * the plan. The dealing rule itself lives there, shared with the memory broker.
 */
import type { Assigner, Cluster, PartitionAssigner } from 'kafkajs'
import kafkajs from 'kafkajs'
import { stickyCopartitionedAssignment } from '../assignment.js'
import type { MemberData } from '../assignmentData.js'
import {
  COPARTITIONED_ASSIGNER,
  decodeMemberData,
  encodeAssignmentData,
  encodeMemberData,
} from '../assignmentData.js'

const { AssignerProtocol } = kafkajs

export interface CopartitionedAssignerOptions {
  /**
   * Receives the consumer's own `Cluster`: kafkajs hands it to the assigner factory (a documented
   * part of its `PartitionAssigner` type), the only way to run code before the consumer rejoins.
   */
  onCluster?: (cluster: Cluster) => void
  /** The partition numbers the member holds, read at each join. */
  owned?: () => readonly number[]
  /** The partition numbers it keeps standby copies of, read at each join. */
  standby?: () => readonly number[]
  /** Standby copies of each partition number the member's app asks the group to place. */
  standbyReplicas?: number
}

/**
 * The kafkajs partition assigner for {@link stickyCopartitionedAssignment}: each member sends the
 * partition numbers it holds and keeps standby copies of when it joins; the leader's plan leaves
 * them where they are when balance allows, places the largest `standbyReplicas` any member asks
 * for, and sends each member its standby numbers in the assignment's user data (read on the
 * member by `receiveAssignmentUserData` in kafkajsPatches.ts: kafkajs drops it).
 */
export function copartitionedAssigner(options: CopartitionedAssignerOptions = {}): PartitionAssigner {
  const { onCluster, owned = () => [], standby = () => [], standbyReplicas = 0 } = options
  return ({ cluster }) => {
    onCluster?.(cluster)
    const assigner: Assigner = {
      name: COPARTITIONED_ASSIGNER,
      version: 0,
      async assign({ members, topics }) {
        const subscriptions = members.map(({ memberId, memberMetadata }) => {
          const metadata = AssignerProtocol.MemberMetadata.decode(memberMetadata)
          return { memberId, topics: metadata?.topics ?? topics, ...decodeMemberData(metadata?.userData) }
        })
        // The leader refreshed metadata for its own topics only; members may name others.
        const all = [...new Set(subscriptions.flatMap((s) => s.topics))]
        await cluster.addMultipleTargetTopics(all)
        const plan = stickyCopartitionedAssignment(
          subscriptions,
          (topic) => cluster.findTopicPartitionMetadata(topic).map((p) => p.partitionId),
          Math.max(0, ...subscriptions.map((s) => s.standbyReplicas)),
        )
        return [...plan.active].map(([memberId, partitions]) => {
          // kafkajs wants topic -> partitions; a member's partitions come topic by topic.
          const assignment: Record<string, number[]> = {}
          for (const { topic, partition } of partitions) (assignment[topic] ??= []).push(partition)
          return {
            memberId,
            memberAssignment: AssignerProtocol.MemberAssignment.encode({
              version: assigner.version,
              assignment,
              userData: encodeAssignmentData(plan.standby.get(memberId) ?? []),
            }),
          }
        })
      },
      protocol({ topics }) {
        const data: MemberData = {
          owned: [...new Set(owned())],
          standby: [...new Set(standby())],
          standbyReplicas,
        }
        return {
          name: COPARTITIONED_ASSIGNER,
          metadata: AssignerProtocol.MemberMetadata.encode({
            version: assigner.version,
            topics,
            userData: encodeMemberData(data),
          }),
        }
      },
    }
    return assigner
  }
}
