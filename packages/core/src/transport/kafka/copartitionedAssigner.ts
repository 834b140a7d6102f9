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
}

function decodeMemberData(userData: Buffer | undefined): MemberData {
  try {
    const data = JSON.parse(userData?.toString() || '{}') as Partial<MemberData>
    return { owned: Array.isArray(data.owned) ? data.owned.filter(Number.isInteger) : [] }
  } catch {
    // A member of another version (or another client): it holds nothing we know of.
    return { owned: [] }
  }
}

/**
 * The kafkajs partition assigner for {@link stickyCopartitionedAssignment}: each member sends the
 * partition numbers it holds when it joins, and the leader's plan leaves them where they are when
 * balance allows. kafkajs hands an assigner the consumer's own `Cluster` (a documented part of
 * its `PartitionAssigner` type); `onCluster` receives it, which is the only way to run code
 * before the consumer rejoins its group. `owned` reads what the consumer holds at each join.
 */
export function copartitionedAssigner(
  onCluster?: (cluster: Cluster) => void,
  owned: () => readonly number[] = () => [],
): PartitionAssigner {
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
        const plan = stickyCopartitionedAssignment(subscriptions, (topic) =>
          cluster.findTopicPartitionMetadata(topic).map((p) => p.partitionId),
        ).active
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
            userData: Buffer.from(JSON.stringify({ owned: [...new Set(owned())] } satisfies MemberData)),
          }),
        }
      },
    }
    return assigner
  }
}
