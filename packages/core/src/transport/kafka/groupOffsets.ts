/**
 * A group member's committed offsets: the checks a commit must pass (a member, valid offsets, its
 * own partitions), the commit itself, and reading commits back. It does not track progress.
 */
import type { Consumer } from 'kafkajs'
import { BrokerError, MephistoError } from '../../base/errors.js'
import { tpKey } from '../../base/topicPartition.js'
import type { CommitOffset, TopicPartition, TransportAdmin } from '../transport.js'
import { isRebalancing, mayRetry, messageOf } from './kafkaErrors.js'

/** What a commit is checked against, taken from the consumer when it commits. */
export interface CommitState {
  readonly groupId: string
  readonly url: string
  /** The kafkajs consumer, once started. */
  readonly consumer: Consumer | undefined
  /** A member of the group now: joined, and neither stopped, aborted nor failed. */
  readonly member: boolean
  /** Why the consumer failed, if it did. */
  readonly failure: unknown
  /** The consumer holds (or is revoking) the partition with this `tpKey`. */
  mayCommit(key: string): boolean
}

/** Commits `offsets` for the group, or throws without committing any of them. */
export async function commitOffsets(state: CommitState, offsets: CommitOffset[]): Promise<void> {
  const { groupId, consumer } = state
  if (consumer === undefined) {
    throw new BrokerError(
      `Cannot commit for group "${groupId}": the consumer has not started (start() joins the group).`,
    )
  }
  if (!state.member) {
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
    // The broker does not check ownership; the memory broker does, and a zombie commit would
    // overwrite the progress of the partition's new owner.
    if (!state.mayCommit(tpKey(topic, partition))) {
      throw new MephistoError(
        'COMMIT_FAILED',
        `Commit refused: ${topic}[${partition}] is not assigned to this consumer of group "${groupId}" ` +
          '(it was revoked or never assigned). Commit only partitions you own.',
      )
    }
  }
  if (offsets.length === 0) return
  try {
    await consumer.commitOffsets(offsets.map((o) => ({ ...o, offset: String(o.offset) })))
  } catch (error) {
    const rebalanced = isRebalancing(error)
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

/**
 * The group's committed offsets of `partitions` (-1 where none). With `stable`, reads until two
 * reads 100 ms apart agree (at most ten): Kafka applies a committed transaction's offsets to the
 * group a moment after its markers are written and until then answers with the previous ones, so
 * a worker that has just fenced the previous owner would start from there and redo what that
 * owner's last transaction committed. (An OffsetFetch with `require_stable` would say so instead;
 * kafkajs does not send it.)
 */
export async function committedOffsets(
  admin: TransportAdmin,
  groupId: string,
  partitions: TopicPartition[],
  stable: boolean,
): Promise<CommitOffset[]> {
  let last = await readCommitted(admin, groupId, partitions)
  if (!stable) return last
  for (let i = 0; i < 10; i++) {
    await new Promise((r) => setTimeout(r, 100))
    const next = await readCommitted(admin, groupId, partitions)
    if (next.every((c, j) => c.offset === last[j]!.offset)) return next
    last = next
  }
  return last
}

async function readCommitted(
  admin: TransportAdmin,
  groupId: string,
  partitions: TopicPartition[],
): Promise<CommitOffset[]> {
  const byTopic = new Map<string, Map<number, number>>()
  for (const topic of new Set(partitions.map((p) => p.topic))) {
    byTopic.set(topic, await admin.groupOffsets(groupId, topic))
  }
  return partitions.map(({ topic, partition }) => ({
    topic,
    partition,
    offset: byTopic.get(topic)?.get(partition) ?? -1,
  }))
}
