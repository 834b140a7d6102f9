/**
 * Co-partitioned assignment (Faust's), the one rule both brokers deal partitions by. Pure: it
 * reads no metadata and talks to no broker; the memory broker's group and the kafkajs assigner
 * (kafka/copartitionedAssigner.ts) feed it members and partition numbers and apply its plan.
 */
import type { TopicPartition } from '../base/topicPartition.js'

export interface MemberSubscription {
  memberId: string
  topics: readonly string[]
}

export interface CopartitionedOptions {
  /**
   * The order members are dealt partitions in. `'memberId'` sorts them by id, which every Kafka
   * group leader agrees on whatever order the members joined in; `'given'` keeps the order of
   * `members` (the memory broker's join order). Default: `'memberId'`.
   */
  memberOrder?: 'memberId' | 'given'
}

/**
 * Partition p of every subscribed topic goes to the same member, `subscribers[p % subscribers.length]`
 * where `subscribers` are the topic's subscribers in dealing order. A table and the topic that
 * feeds it must live on one worker, so a key's events and its table shard meet there; a topic
 * with fewer partitions simply has fewer to deal.
 *
 * Returns member id -> its partitions in dealing order: topic by topic (in the order topics were
 * first subscribed to), each topic's partitions ascending. Every member appears, possibly with none.
 */
export function copartitionedAssignment(
  members: readonly MemberSubscription[],
  partitionsOf: (topic: string) => readonly number[],
  options: CopartitionedOptions = {},
): Map<string, TopicPartition[]> {
  const dealt =
    options.memberOrder === 'given'
      ? members
      : [...members].sort((a, b) => (a.memberId < b.memberId ? -1 : a.memberId > b.memberId ? 1 : 0))
  const result = new Map<string, TopicPartition[]>()
  const subscribers = new Map<string, string[]>()
  for (const { memberId, topics } of dealt) {
    result.set(memberId, [])
    for (const topic of new Set(topics)) {
      let list = subscribers.get(topic)
      if (list === undefined) subscribers.set(topic, (list = []))
      list.push(memberId)
    }
  }
  for (const [topic, list] of subscribers) {
    const partitions = [...partitionsOf(topic)].sort((a, b) => a - b)
    for (const partition of partitions) result.get(list[partition % list.length]!)!.push({ topic, partition })
  }
  return result
}

/** A member as a sticky assignment sees it: its subscription and what it holds now. */
export interface StickyMember extends MemberSubscription {
  /** Partition numbers the member holds now (from its last assignment); empty for a new member. */
  owned?: readonly number[]
  /** Partition numbers the member keeps standby copies of now. */
  standby?: readonly number[]
}

export interface StickyPlan {
  /** member id -> its partitions, as {@link copartitionedAssignment} returns them. */
  active: Map<string, TopicPartition[]>
  /** member id -> the partition numbers it keeps standby copies of (never ones it owns). */
  standby: Map<string, number[]>
}

/**
 * Co-partitioned and sticky: partition number p of every topic still goes to one member, and a
 * rebalance leaves each number where it was when the plan stays balanced (each member holds
 * ⌊n/m⌋ or ⌈n/m⌉ of the n numbers). So 3 members to 2 moves only the leaving member's numbers,
 * and 2 to 3 moves only what the new member takes. A group where nobody holds anything yet, or
 * whose members subscribe to different topics (a rolling upgrade), is dealt as
 * {@link copartitionedAssignment} deals it.
 *
 * `standbyReplicas` places that many standby copies of each number on other members (fewer when
 * the group is smaller), preferring the members that held it or a copy of it before, then the
 * least loaded: a promoted standby has the table's state already.
 */
export function stickyCopartitionedAssignment(
  members: readonly StickyMember[],
  partitionsOf: (topic: string) => readonly number[],
  standbyReplicas = 0,
  memberOrder: CopartitionedOptions['memberOrder'] = 'memberId',
): StickyPlan {
  const sorted =
    memberOrder === 'given'
      ? [...members]
      : [...members].sort((a, b) => (a.memberId < b.memberId ? -1 : a.memberId > b.memberId ? 1 : 0))
  const sameTopics = sorted.every((m) => sameSet(m.topics, sorted[0]?.topics ?? []))
  const anyOwned = sorted.some((m) => (m.owned?.length ?? 0) > 0)
  const topics = [...new Set(sorted.flatMap((m) => m.topics))]
  const numbers = [...new Set(topics.flatMap((t) => [...partitionsOf(t)]))].sort((a, b) => a - b)
  let owner: Map<number, string>
  if (!sameTopics || !anyOwned || sorted.length === 0) {
    const dealt = copartitionedAssignment(members, partitionsOf, { memberOrder })
    owner = new Map()
    for (const [id, tps] of dealt)
      for (const tp of tps) if (!owner.has(tp.partition)) owner.set(tp.partition, id)
    if (!sameTopics) return { active: dealt, standby: placeStandbys(sorted, numbers, owner, standbyReplicas) }
  } else {
    owner = stickyOwners(sorted, numbers)
  }
  const active = new Map<string, TopicPartition[]>(sorted.map((m) => [m.memberId, []]))
  for (const topic of topics) {
    for (const partition of [...partitionsOf(topic)].sort((a, b) => a - b)) {
      const id = owner.get(partition)
      if (id !== undefined) active.get(id)!.push({ topic, partition })
    }
  }
  return { active, standby: placeStandbys(sorted, numbers, owner, standbyReplicas) }
}

/** Who holds each number: kept where it was up to each member's share, the rest dealt out. */
function stickyOwners(members: readonly StickyMember[], numbers: readonly number[]): Map<number, string> {
  const n = numbers.length
  const m = members.length
  const min = Math.floor(n / m)
  let atMax = n % m
  const valid = new Set(numbers)
  const owner = new Map<number, string>()
  const held = new Map<string, number[]>()
  // Members holding more keep more: the fewest numbers move. A number claimed twice (a member
  // that missed a rebalance) stays with the first claimant in this order.
  const order = [...members].sort(
    (a, b) => (b.owned?.length ?? 0) - (a.owned?.length ?? 0) || (a.memberId < b.memberId ? -1 : 1),
  )
  for (const member of order) {
    const share = atMax > 0 ? min + 1 : min
    const keep: number[] = []
    for (const p of [...(member.owned ?? [])].sort((a, b) => a - b)) {
      if (keep.length >= share) break
      if (!valid.has(p) || owner.has(p)) continue
      owner.set(p, member.memberId)
      keep.push(p)
    }
    if (keep.length === min + 1 && atMax > 0) atMax--
    held.set(member.memberId, keep)
  }
  // The numbers nobody kept go to the members below their share: one with a standby copy of the
  // number first (it has the table's state), then the fewest held.
  const free = numbers.filter((p) => !owner.has(p))
  for (const p of free) {
    let best: StickyMember | undefined
    let bestCopy = false
    for (const member of members) {
      const count = held.get(member.memberId)!.length
      const share = count < min ? min : atMax > 0 ? min + 1 : min
      if (count >= share) continue
      const copy = member.standby?.includes(p) === true
      if (
        best === undefined ||
        (copy && !bestCopy) ||
        (copy === bestCopy && count < held.get(best.memberId)!.length)
      ) {
        best = member
        bestCopy = copy
      }
    }
    if (best === undefined) best = members[0]!
    const list = held.get(best.memberId)!
    if (list.length === min) atMax--
    list.push(p)
    owner.set(p, best.memberId)
  }
  return owner
}

/** `replicas` standby holders per number, none its owner: previous holders first, then the least loaded. */
function placeStandbys(
  members: readonly StickyMember[],
  numbers: readonly number[],
  owner: ReadonlyMap<number, string>,
  replicas: number,
): Map<string, number[]> {
  const standby = new Map<string, number[]>(members.map((m) => [m.memberId, []]))
  if (replicas <= 0) return standby
  const had = (m: StickyMember, p: number): boolean => !!(m.standby?.includes(p) || m.owned?.includes(p))
  // Copies of one owner's numbers spread over the others, so that when it leaves, each of them
  // takes over a share (a balanced plan gives each at most one more number).
  const sameOwner = (m: StickyMember, p: number): number =>
    standby.get(m.memberId)!.filter((q) => owner.get(q) === owner.get(p)).length
  for (const p of numbers) {
    const candidates = members.filter((m) => m.memberId !== owner.get(p))
    candidates.sort(
      (a, b) =>
        Number(had(b, p)) - Number(had(a, p)) ||
        sameOwner(a, p) - sameOwner(b, p) ||
        standby.get(a.memberId)!.length - standby.get(b.memberId)!.length ||
        (a.memberId < b.memberId ? -1 : 1),
    )
    for (const m of candidates.slice(0, replicas)) standby.get(m.memberId)!.push(p)
  }
  return standby
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const sa = new Set(a)
  const sb = new Set(b)
  return sa.size === sb.size && [...sa].every((x) => sb.has(x))
}
