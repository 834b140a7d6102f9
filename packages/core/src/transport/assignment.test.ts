import { describe, expect, it } from 'vitest'
import type { TopicPartition } from '../base/topicPartition.js'
import { copartitionedAssignment } from './assignment.js'

const partitions = (counts: Record<string, number>) => (topic: string) =>
  Array.from({ length: counts[topic] ?? 0 }, (_, i) => i)

/** A member's partitions as topic -> partition numbers, in dealing order. */
const byTopic = (list: TopicPartition[] | undefined): Record<string, number[]> => {
  const result: Record<string, number[]> = {}
  for (const { topic, partition } of list ?? []) (result[topic] ??= []).push(partition)
  return result
}

describe('copartitionedAssignment', () => {
  it('gives partition p of every topic to the same member, members ordered by id', () => {
    const plan = copartitionedAssignment(
      [
        { memberId: 'm-b', topics: ['events', 'changelog'] },
        { memberId: 'm-a', topics: ['events', 'changelog'] },
      ],
      partitions({ events: 4, changelog: 4 }),
    )
    expect(byTopic(plan.get('m-a'))).toEqual({ events: [0, 2], changelog: [0, 2] })
    expect(byTopic(plan.get('m-b'))).toEqual({ events: [1, 3], changelog: [1, 3] })
  })

  it('deals a topic only among its subscribers and lists members that get nothing', () => {
    const plan = copartitionedAssignment(
      [
        { memberId: 'a', topics: ['x'] },
        { memberId: 'b', topics: ['x', 'y'] },
        { memberId: 'c', topics: ['x'] },
      ],
      partitions({ x: 2, y: 3 }),
    )
    expect(byTopic(plan.get('a'))).toEqual({ x: [0] })
    expect(byTopic(plan.get('b'))).toEqual({ x: [1], y: [0, 1, 2] })
    expect(plan.get('c')).toEqual([])
  })

  it("with memberOrder 'given' deals in the order members are listed (the memory broker's join order)", () => {
    // Sorted by id, 'g-10' would come before 'g-9'.
    const members = [
      { memberId: 'g-9', topics: ['t'] },
      { memberId: 'g-10', topics: ['t'] },
    ]
    const given = copartitionedAssignment(members, partitions({ t: 3 }), { memberOrder: 'given' })
    expect(given.get('g-9')).toEqual([
      { topic: 't', partition: 0 },
      { topic: 't', partition: 2 },
    ])
    expect(given.get('g-10')).toEqual([{ topic: 't', partition: 1 }])
    const byId = copartitionedAssignment(members, partitions({ t: 3 }))
    expect(byId.get('g-10')).toEqual([
      { topic: 't', partition: 0 },
      { topic: 't', partition: 2 },
    ])
  })

  it('lists partitions topic by topic in subscription order, each ascending, by partition number', () => {
    const plan = copartitionedAssignment(
      [
        { memberId: 'a', topics: ['z', 'a', 'z'] },
        { memberId: 'b', topics: ['a'] },
      ],
      (topic) => (topic === 'z' ? [3, 0, 2, 1] : [1, 0]),
      { memberOrder: 'given' },
    )
    // 'a' owns every partition of 'z' (its only subscriber) and even partitions of topic 'a'.
    expect(plan.get('a')).toEqual([
      { topic: 'z', partition: 0 },
      { topic: 'z', partition: 1 },
      { topic: 'z', partition: 2 },
      { topic: 'z', partition: 3 },
      { topic: 'a', partition: 0 },
    ])
    expect(plan.get('b')).toEqual([{ topic: 'a', partition: 1 }])
  })

  it('gives nothing for a topic without partitions (one that was deleted) and members with no topics', () => {
    const plan = copartitionedAssignment(
      [
        { memberId: 'a', topics: ['gone', 'x'] },
        { memberId: 'b', topics: [] },
      ],
      partitions({ x: 1 }),
    )
    expect(plan.get('a')).toEqual([{ topic: 'x', partition: 0 }])
    expect(plan.get('b')).toEqual([])
    expect([...plan.keys()]).toEqual(['a', 'b'])
  })
})
