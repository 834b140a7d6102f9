/**
 * The kafkajs adapter of co-partitioned assignment: a `PartitionAssigner` that decodes members'
 * subscriptions, deals partitions by `copartitionedAssignment` (../assignment.ts) and encodes
 * the plan. The dealing rule itself lives there, shared with the memory broker.
 */
import type { Assigner, Cluster, PartitionAssigner } from 'kafkajs'
import kafkajs from 'kafkajs'
import { stickyCopartitionedAssignment } from '../assignment.js'

const { AssignerProtocol } = kafkajs

/** The protocol name every member of a Mephisto group announces. */
export const COPARTITIONED_ASSIGNER = 'MephistoCopartitioned'

/** What a member tells the group leader when it joins, in its subscription's user data. */
interface MemberData {
  /** Partition numbers it holds now (so the plan can leave them where they are). */
  owned: number[]
  /** Partition numbers it keeps standby copies of now (a promoted copy has the table's state). */
  standby: number[]
  /** Standby copies per partition number the member's app asks for. */
  standbyReplicas: number
}

/** What the leader tells each member beside its partitions, in its assignment's user data. */
interface AssignmentData {
  /** Partition numbers the member keeps standby copies of. */
  standby: number[]
}

const numbers = (v: unknown): number[] => (Array.isArray(v) ? v.filter(Number.isInteger) : [])

function decodeMemberData(userData: Buffer | undefined): MemberData {
  try {
    const data = JSON.parse(userData?.toString() || '{}') as Partial<Record<keyof MemberData, unknown>>
    const replicas = data.standbyReplicas
    return {
      owned: numbers(data.owned),
      standby: numbers(data.standby),
      standbyReplicas: Number.isInteger(replicas) && (replicas as number) > 0 ? (replicas as number) : 0,
    }
  } catch {
    // A member of another version (or another client): it holds nothing we know of.
    return { owned: [], standby: [], standbyReplicas: 0 }
  }
}

/**
 * The standby partition numbers in a member assignment's user data, or undefined when the leader
 * sent none (a leader of an older version: then the member follows every partition it lacks).
 */
export function decodeAssignmentData(userData: Buffer | null | undefined): number[] | undefined {
  if (!userData || userData.length === 0) return undefined
  try {
    const data = JSON.parse(userData.toString()) as Partial<Record<keyof AssignmentData, unknown>>
    return Array.isArray(data.standby) ? numbers(data.standby) : undefined
  } catch {
    return undefined
  }
}

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
          const data: AssignmentData = { standby: plan.standby.get(memberId) ?? [] }
          return {
            memberId,
            memberAssignment: AssignerProtocol.MemberAssignment.encode({
              version: assigner.version,
              assignment,
              userData: Buffer.from(JSON.stringify(data)),
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
            userData: Buffer.from(JSON.stringify(data)),
          }),
        }
      },
    }
    return assigner
  }
}
