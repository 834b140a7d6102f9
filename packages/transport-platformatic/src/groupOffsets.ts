/**
 * A group's committed offsets through its coordinator: the checks a member's commit must pass, the
 * commit (with the member's generation, id and instance id), and reading commits back, stable
 * (OffsetFetch `require_stable`, KIP-447) when asked. It does not track progress.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { CommitOffset, TopicPartition } from '@mephisto/core'
import { BrokerError, MephistoError } from '@mephisto/core'
import type { KafkaClient } from './client.js'
import type { GroupCoordinator } from './coordinator.js'
import { hasKafkaError, isRebalancing, mayRetry, messageOf } from './errors.js'
import type { Membership } from './membership.js'

/** How long a stable read waits for a transaction that is still applying its offsets. */
const STABLE_WAIT_MS = 60_000
const REQUEST_TIMEOUT_MS = 30_000

/** What a member's commit is checked against, read when it commits. */
export interface CommitState {
  readonly url: string
  readonly started: boolean
  /** The membership to commit with: undefined once the member stopped, crashed, failed or was lost. */
  readonly membership: Membership | undefined
  /** Why the consumer failed, if it did. */
  readonly failure: unknown
  /** The member holds (or is revoking) the partition. */
  mayCommit(topic: string, partition: number): boolean
}

/** Checks a commit of `offsets` by a member in `state`, throwing without committing any when it fails. */
export function checkCommit(
  groupId: string,
  state: CommitState,
  offsets: readonly CommitOffset[],
): Membership {
  if (!state.started) {
    throw new BrokerError(
      `Cannot commit for group "${groupId}": the consumer has not started (start() joins the group).`,
    )
  }
  const membership = state.membership
  if (membership === undefined) {
    throw new MephistoError(
      'COMMIT_FAILED',
      `Commit refused: this consumer is no longer a member of group "${groupId}". Offsets can only ` +
        'be committed while the consumer runs; what was processed since the last commit is delivered again.',
      state.failure === undefined ? undefined : { cause: state.failure },
    )
  }
  for (const { topic, partition, offset } of offsets) {
    if (!Number.isInteger(offset) || offset < 0) {
      throw new BrokerError(
        `Commit refused: offset ${offset} for ${topic}[${partition}] is not a valid offset.`,
      )
    }
    // The broker checks the generation, not who owns what; a zombie's commit would overwrite the
    // progress of the partition's new owner.
    if (!state.mayCommit(topic, partition)) {
      throw new MephistoError(
        'COMMIT_FAILED',
        `Commit refused: ${topic}[${partition}] is not assigned to this consumer of group "${groupId}" ` +
          '(it was revoked or never assigned). Commit only partitions you own.',
      )
    }
  }
  return membership
}

/** Offsets as the OffsetCommit and TxnOffsetCommit requests carry them, topic by topic. */
export function offsetTopics(offsets: readonly CommitOffset[]): {
  name: string
  partitions: { partitionIndex: number; committedOffset: bigint; committedLeaderEpoch: number }[]
}[] {
  const byTopic = new Map<
    string,
    { partitionIndex: number; committedOffset: bigint; committedLeaderEpoch: number }[]
  >()
  for (const { topic, partition, offset } of offsets) {
    let list = byTopic.get(topic)
    if (list === undefined) byTopic.set(topic, (list = []))
    list.push({ partitionIndex: partition, committedOffset: BigInt(offset), committedLeaderEpoch: -1 })
  }
  return [...byTopic].map(([name, partitions]) => ({ name, partitions }))
}

/** Commits `offsets` for the group with `membership`, or throws without committing any. */
export async function commitOffsets(
  client: KafkaClient,
  coordinator: GroupCoordinator,
  state: CommitState,
  offsets: readonly CommitOffset[],
): Promise<void> {
  const groupId = coordinator.groupId
  const membership = checkCommit(groupId, state, offsets)
  if (offsets.length === 0) return
  try {
    await coordinator.run(
      (c) =>
        client.call(
          'OffsetCommit',
          c,
          groupId,
          membership.generationId,
          membership.memberId,
          membership.groupInstanceId,
          offsetTopics(offsets),
        ),
      REQUEST_TIMEOUT_MS,
    )
  } catch (error) {
    const rebalanced = isRebalancing(error) || hasKafkaError(error, 'FENCED_INSTANCE_ID')
    throw new MephistoError(
      'COMMIT_FAILED',
      `Commit for group "${groupId}" failed on ${state.url}: ${messageOf(error)}` +
        (rebalanced ? ' (the group rebalanced without this member; its partitions moved on)' : ''),
      // A broker out of reach may come back while this member holds its partitions; a group that
      // moved on does not give them back.
      { cause: error, retriable: !rebalanced && mayRetry(error) },
    )
  }
}

interface OffsetFetchPartition {
  partitionIndex: number
  committedOffset: bigint
  errorCode: number
}
interface OffsetFetchTopic {
  name: string
  partitions: OffsetFetchPartition[]
}
/** v8 and later answer per group; older versions answer for their one group. */
type OffsetFetchResponse = { groups: { topics: OffsetFetchTopic[] }[] } | { topics: OffsetFetchTopic[] }

/**
 * The group's committed offsets of `partitions` (-1 where none). With `stable`, the broker is asked
 * to answer only once no transaction that commits offsets of these partitions is still open
 * (`require_stable`); while one is, it answers UNSTABLE_OFFSET_COMMIT and this asks again every
 * 100 ms, for up to a minute (Kafka's default transaction timeout).
 */
export async function committedOffsets(
  client: KafkaClient,
  coordinator: GroupCoordinator,
  partitions: readonly TopicPartition[],
  stable: boolean,
): Promise<CommitOffset[]> {
  const groupId = coordinator.groupId
  if (partitions.length === 0) return []
  const byTopic = new Map<string, number[]>()
  for (const { topic, partition } of partitions) {
    let list = byTopic.get(topic)
    if (list === undefined) byTopic.set(topic, (list = []))
    list.push(partition)
  }
  const topics = [...byTopic].map(([name, partitionIndexes]) => ({ name, partitionIndexes }))
  const deadline = Date.now() + STABLE_WAIT_MS
  for (;;) {
    let response: OffsetFetchResponse
    try {
      response = await coordinator.run(
        (c) =>
          client.call<OffsetFetchResponse>(
            'OffsetFetch',
            c,
            [{ groupId, memberId: null, memberEpoch: -1, topics }],
            stable,
          ),
        REQUEST_TIMEOUT_MS,
      )
    } catch (error) {
      if (stable && hasKafkaError(error, 'UNSTABLE_OFFSET_COMMIT') && Date.now() < deadline) {
        await sleep(100)
        continue
      }
      throw new BrokerError(`Cannot read the committed offsets of group "${groupId}": ${messageOf(error)}`, {
        cause: error,
        retriable: mayRetry(error) || hasKafkaError(error, 'UNSTABLE_OFFSET_COMMIT'),
      })
    }
    const answered = 'groups' in response ? (response.groups[0]?.topics ?? []) : response.topics
    const found = new Map<string, number>()
    for (const t of answered) {
      for (const p of t.partitions) found.set(`${t.name}\u0000${p.partitionIndex}`, Number(p.committedOffset))
    }
    return partitions.map(({ topic, partition }) => ({
      topic,
      partition,
      offset: found.get(`${topic}\u0000${partition}`) ?? -1,
    }))
  }
}
