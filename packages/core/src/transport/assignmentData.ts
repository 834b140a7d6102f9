/**
 * The user data of Mephisto's co-partitioned group protocol, as every Kafka client transport
 * writes it (kafkajs' here, platformatic's in its package), so members on different clients can
 * share a group: what a member announces when it joins, and what the leader sends each member
 * beside its partitions. JSON, read leniently: a member of another version holds nothing we know.
 */

/** The protocol name every member of a Mephisto group announces. */
export const COPARTITIONED_ASSIGNER = 'MephistoCopartitioned'

/** What a member tells the group leader when it joins, in its subscription's user data. */
export interface MemberData {
  /** Partition numbers it holds now (so the plan can leave them where they are). */
  owned: number[]
  /** Partition numbers it keeps standby copies of now (a promoted copy has the table's state). */
  standby: number[]
  /** Standby copies per partition number the member's app asks for. */
  standbyReplicas: number
}

const numbers = (v: unknown): number[] => (Array.isArray(v) ? v.filter(Number.isInteger) : [])

export function encodeMemberData(data: MemberData): Buffer {
  return Buffer.from(JSON.stringify(data))
}

export function decodeMemberData(userData: Buffer | null | undefined): MemberData {
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

/** What the leader tells a member beside its partitions: the standby copies placed on it. */
export function encodeAssignmentData(standby: readonly number[]): Buffer {
  return Buffer.from(JSON.stringify({ standby }))
}

/**
 * The standby partition numbers in a member assignment's user data, or undefined when the leader
 * sent none (a leader of an older version: then the member follows every partition it lacks).
 */
export function decodeAssignmentData(userData: Buffer | null | undefined): number[] | undefined {
  if (!userData || userData.length === 0) return undefined
  try {
    const data = JSON.parse(userData.toString()) as { standby?: unknown }
    return Array.isArray(data.standby) ? numbers(data.standby) : undefined
  } catch {
    return undefined
  }
}
