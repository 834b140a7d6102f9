import { describe, expect, it } from 'vitest'
import type { StickyMember } from './assignment.js'
import { copartitionedAssignment, stickyCopartitionedAssignment } from './assignment.js'

const TOPICS = ['hits', 'counts-changelog', 'count_topic']
const partitionsOf = (n: number) => (_topic: string) => Array.from({ length: n }, (_, i) => i)

/** Partition numbers each member holds in a plan (co-partitioned: the same for every topic). */
function numbersOf(plan: Map<string, { topic: string; partition: number }[]>): Map<string, number[]> {
  const out = new Map<string, number[]>()
  for (const [id, tps] of plan) {
    for (const topic of TOPICS) {
      const ps = tps.filter((tp) => tp.topic === topic).map((tp) => tp.partition)
      const first = out.get(id)
      if (first === undefined) out.set(id, ps)
      else expect(ps, `${id} holds the same numbers of ${topic}`).toEqual(first)
    }
  }
  return out
}

function members(held: Map<string, number[]>, add: string[] = [], remove: string[] = []): StickyMember[] {
  const out: StickyMember[] = []
  for (const [memberId, owned] of held)
    if (!remove.includes(memberId)) out.push({ memberId, topics: TOPICS, owned })
  for (const memberId of add) out.push({ memberId, topics: TOPICS, owned: [] })
  return out
}

function moved(before: Map<string, number[]>, after: Map<string, number[]>): number {
  const was = new Map<number, string>()
  for (const [id, ps] of before) for (const p of ps) was.set(p, id)
  let n = 0
  for (const [id, ps] of after) for (const p of ps) if (was.get(p) !== id) n++
  return n
}

function balanced(plan: Map<string, number[]>, n: number): void {
  const counts = [...plan.values()].map((ps) => ps.length)
  expect(counts.reduce((a, b) => a + b, 0)).toBe(n)
  expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1)
}

describe('sticky co-partitioned assignment', () => {
  it('deals a new group as the co-partitioned rule does', () => {
    const fresh = [0, 1, 2].map((i) => ({ memberId: `w${i}`, topics: TOPICS }))
    expect(stickyCopartitionedAssignment(fresh, partitionsOf(8)).active).toEqual(
      copartitionedAssignment(fresh, partitionsOf(8)),
    )
  })

  for (const n of [8, 12, 64]) {
    it(`moves only what must move: ${n} partitions, 3 -> 2 -> 3 workers`, () => {
      const three = numbersOf(
        stickyCopartitionedAssignment(
          ['a', 'b', 'c'].map((memberId) => ({ memberId, topics: TOPICS })),
          partitionsOf(n),
        ).active,
      )
      // c leaves: only c's numbers move.
      const two = numbersOf(stickyCopartitionedAssignment(members(three, [], ['c']), partitionsOf(n)).active)
      balanced(two, n)
      expect(moved(three, two)).toBe(three.get('c')!.length)
      // d joins: only what d takes moves.
      const again = numbersOf(stickyCopartitionedAssignment(members(two, ['d']), partitionsOf(n)).active)
      balanced(again, n)
      expect(moved(two, again)).toBe(again.get('d')!.length)
      expect(again.get('d')!.length).toBe(Math.floor(n / 3))
    })
  }

  it('a number claimed by two members stays with one of them', () => {
    const plan = numbersOf(
      stickyCopartitionedAssignment(
        [
          { memberId: 'a', topics: TOPICS, owned: [0, 1] },
          { memberId: 'b', topics: TOPICS, owned: [1, 2, 3] },
        ],
        partitionsOf(4),
      ).active,
    )
    balanced(plan, 4)
    expect([...plan.values()].flat().sort()).toEqual([0, 1, 2, 3])
    expect(plan.get('b')).toEqual([1, 2])
  })

  it('places standbyReplicas copies of each number on other members, sticky', () => {
    const group = ['a', 'b', 'c', 'd'].map((memberId) => ({ memberId, topics: TOPICS }))
    const first = stickyCopartitionedAssignment(group, partitionsOf(8), 1)
    const owners = numbersOf(first.active)
    for (const [id, ps] of first.standby) {
      for (const p of ps) expect(owners.get(id)).not.toContain(p)
    }
    const copies = [...first.standby.values()].flat().sort((x, y) => x - y)
    expect(copies).toEqual([0, 1, 2, 3, 4, 5, 6, 7])
    for (const ps of first.standby.values()) expect(ps).toHaveLength(2)
    // d leaves: its numbers go to the members that held their standby copies (promoted at once).
    const next = stickyCopartitionedAssignment(
      group
        .filter((m) => m.memberId !== 'd')
        .map((m) => ({ ...m, owned: owners.get(m.memberId)!, standby: first.standby.get(m.memberId)! })),
      partitionsOf(8),
      1,
    )
    const after = numbersOf(next.active)
    // Each of d's numbers goes to the member holding its copy (each has room for one more).
    for (const p of owners.get('d')!) {
      const holder = [...after].find(([, ps]) => ps.includes(p))![0]
      expect(first.standby.get(holder), `number ${p}`).toContain(p)
    }
    expect(moved(owners, after)).toBe(owners.get('d')!.length)
    expect([...next.standby.values()].flat()).toHaveLength(8)
  })
})
