import { describe, expect, it } from 'vitest'
import { copartitionedAssignment } from './copartitionedAssigner.js'

const partitions = (counts: Record<string, number>) => (topic: string) =>
  Array.from({ length: counts[topic] ?? 0 }, (_, i) => i)

describe('copartitionedAssignment', () => {
  it('gives partition p of every topic to the same member, members ordered by id', () => {
    const plan = copartitionedAssignment(
      [
        { memberId: 'm-b', topics: ['events', 'changelog'] },
        { memberId: 'm-a', topics: ['events', 'changelog'] },
      ],
      partitions({ events: 4, changelog: 4 }),
    )
    expect(plan.get('m-a')).toEqual({ events: [0, 2], changelog: [0, 2] })
    expect(plan.get('m-b')).toEqual({ events: [1, 3], changelog: [1, 3] })
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
    expect(plan.get('a')).toEqual({ x: [0] })
    expect(plan.get('b')).toEqual({ x: [1], y: [0, 1, 2] })
    expect(plan.get('c')).toEqual({})
  })
})
