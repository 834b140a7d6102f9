import type { Cluster } from 'kafkajs'
import kafkajs from 'kafkajs'
import { describe, expect, it } from 'vitest'
import { COPARTITIONED_ASSIGNER, copartitionedAssigner } from './copartitionedAssigner.js'

const { AssignerProtocol } = kafkajs

/** The two calls the assigner makes on kafkajs' cluster, over fixed partition counts. */
function fakeCluster(counts: Record<string, number>): { cluster: Cluster; refreshed: string[][] } {
  const refreshed: string[][] = []
  const cluster = {
    async addMultipleTargetTopics(topics: string[]) {
      refreshed.push(topics)
    },
    findTopicPartitionMetadata(topic: string) {
      return Array.from({ length: counts[topic] ?? 0 }, (_, partitionId) => ({ partitionId }))
    },
  }
  return { cluster: cluster as unknown as Cluster, refreshed }
}

const member = (memberId: string, topics: string[]) => ({
  memberId,
  memberMetadata: AssignerProtocol.MemberMetadata.encode({ version: 0, topics, userData: Buffer.alloc(0) }),
})

describe('copartitionedAssigner', () => {
  it('deals co-partitioned by member id and encodes topic -> partitions for every member', async () => {
    const { cluster, refreshed } = fakeCluster({ events: 4, changelog: 4, other: 1 })
    const assigner = copartitionedAssigner()({ cluster, groupId: 'g', logger: undefined as never })
    expect(assigner.name).toBe(COPARTITIONED_ASSIGNER)
    const result = await assigner.assign({
      members: [
        member('m-c', ['other']),
        member('m-b', ['events', 'changelog']),
        member('m-a', ['events', 'changelog']),
      ],
      topics: ['events', 'changelog'],
    })
    // Metadata is refreshed for every member's topics, not only the leader's.
    expect(refreshed).toEqual([['other', 'events', 'changelog']])
    const plan = Object.fromEntries(
      result.map(({ memberId, memberAssignment }) => [
        memberId,
        AssignerProtocol.MemberAssignment.decode(memberAssignment)?.assignment,
      ]),
    )
    expect(plan).toEqual({
      'm-a': { events: [0, 2], changelog: [0, 2] },
      'm-b': { events: [1, 3], changelog: [1, 3] },
      'm-c': { other: [0] },
    })
  })

  it('hands the consumer its cluster before any assignment', () => {
    const { cluster } = fakeCluster({})
    let seen: Cluster | undefined
    copartitionedAssigner((c) => (seen = c))({ cluster, groupId: 'g', logger: undefined as never })
    expect(seen).toBe(cluster)
  })
})
