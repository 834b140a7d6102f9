import type { Cluster } from 'kafkajs'
import kafkajs from 'kafkajs'
import { describe, expect, it } from 'vitest'
import { COPARTITIONED_ASSIGNER, decodeAssignmentData } from '../assignmentData.js'
import { copartitionedAssigner } from './copartitionedAssigner.js'

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
    copartitionedAssigner({ onCluster: (c) => (seen = c) })({
      cluster,
      groupId: 'g',
      logger: undefined as never,
    })
    expect(seen).toBe(cluster)
  })

  it('places the standby copies members ask for and sends each member its own in the user data', async () => {
    const { cluster } = fakeCluster({ events: 4 })
    const joining = (memberId: string, data: object) => ({
      memberId,
      memberMetadata: AssignerProtocol.MemberMetadata.encode({
        version: 0,
        topics: ['events'],
        userData: Buffer.from(JSON.stringify(data)),
      }),
    })
    const assigner = copartitionedAssigner()({ cluster, groupId: 'g', logger: undefined as never })
    const result = await assigner.assign({
      members: [
        joining('m-a', { owned: [0, 1], standby: [2], standbyReplicas: 1 }),
        joining('m-b', { owned: [2, 3], standby: [0, 1], standbyReplicas: 1 }),
        joining('m-c', { owned: [], standby: [], standbyReplicas: 0 }),
      ],
      topics: ['events'],
    })
    const decoded = new Map(
      result.map(({ memberId, memberAssignment }) => {
        const a = AssignerProtocol.MemberAssignment.decode(memberAssignment)!
        return [memberId, { owns: a.assignment.events ?? [], standby: decodeAssignmentData(a.userData)! }]
      }),
    )
    // One copy of each number, never on its owner; the copies held before stay where they were.
    const copies = [...decoded.values()].flatMap((m) => m.standby).sort()
    expect(copies).toEqual([0, 1, 2, 3])
    for (const m of decoded.values()) for (const p of m.standby) expect(m.owns).not.toContain(p)
    expect(decoded.get('m-b')!.standby).toEqual(
      expect.arrayContaining([0, 1].filter((p) => !decoded.get('m-b')!.owns.includes(p))),
    )
  })

  it('reads no standby numbers from an assignment without user data (a leader of an older version)', () => {
    expect(decodeAssignmentData(Buffer.alloc(0))).toBeUndefined()
    expect(decodeAssignmentData(Buffer.from('not json'))).toBeUndefined()
    expect(decodeAssignmentData(Buffer.from('{"standby":[1,"x",3]}'))).toEqual([1, 3])
  })
})
