import type { MemberData } from '@mephisto/core'
import { decodeConsumerProtocolAssignment, encodeConsumerProtocolSubscription } from '@platformatic/kafka'
import { describe, expect, it } from 'vitest'
import { assignGroup, decodeAssignment, encodeSubscription, subscribedTopics } from './assigner.js'

const member = (memberId: string, topics: string[], data: Partial<MemberData> = {}) => ({
  memberId,
  metadata: encodeSubscription(topics, { owned: [], standby: [], standbyReplicas: 0, ...data }),
})
const partitions = (count: number) => () => Array.from({ length: count }, (_, i) => i)
const plan = (members: ReturnType<typeof member>[], count = 4) =>
  new Map(assignGroup(members, partitions(count)).map((a) => [a.memberId, decodeAssignment(a.assignment)]))
const numbers = (a: { partitions: { partition: number }[] } | undefined) => [
  ...new Set(a!.partitions.map((p) => p.partition)),
]

describe('the co-partitioned assigner', () => {
  it('deals partition p of every topic to one member, and sends each its standby numbers', () => {
    const result = plan([member('m1', ['a', 'b'], { standbyReplicas: 1 }), member('m2', ['a', 'b'])])
    const m1 = result.get('m1')!
    const m2 = result.get('m2')!
    for (const m of [m1, m2]) {
      const byTopic = (t: string) => m.partitions.filter((p) => p.topic === t).map((p) => p.partition)
      expect(byTopic('a')).toEqual(byTopic('b'))
      expect(m.standby).toHaveLength(2)
      expect(m.standby!.some((p) => numbers(m).includes(p))).toBe(false)
    }
    expect([...numbers(m1), ...numbers(m2)].sort()).toEqual([0, 1, 2, 3])
  })

  it('is sticky: what members hold stays, a newcomer takes only its share', () => {
    const result = plan(
      [member('m1', ['a'], { owned: [0, 1] }), member('m2', ['a'], { owned: [2, 3] }), member('m0', ['a'])],
      6,
    )
    expect(numbers(result.get('m0'))).toHaveLength(2)
    expect(numbers(result.get('m1'))).toEqual([0, 1])
    expect(numbers(result.get('m2'))).toEqual([2, 3])
  })

  it('reads members of another client or version as holding nothing, and lists every subscribed topic', () => {
    const foreign = {
      memberId: 'x',
      metadata: encodeConsumerProtocolSubscription({
        version: 0,
        topics: ['a', 'c'],
        userData: Buffer.from('not json'),
      }),
    }
    expect(subscribedTopics([member('m1', ['a', 'b']), foreign]).sort()).toEqual(['a', 'b', 'c'])
    const result = plan([member('m1', ['a']), foreign], 2)
    expect(numbers(result.get('m1'))).toHaveLength(1)
  })

  it("encodes v0 consumer-protocol assignments whose user data is the kafkajs assigner's JSON", () => {
    const [a] = assignGroup([member('m1', ['a'])], partitions(2))
    const raw = decodeConsumerProtocolAssignment(a!.assignment)
    expect(raw.version).toBe(0)
    expect(JSON.parse(raw.userData.toString())).toEqual({ standby: [] })
    expect(decodeAssignment(Buffer.alloc(0))).toEqual({ partitions: [], standby: undefined })
  })
})
