/**
 * `TransportAdmin` over a platformatic admin client: topics, their offsets (the end offset a
 * read-committed reader sees), and group offsets. It does not consume, produce or read records.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { CommitOffset, TopicPartition, TopicSpec, TransportAdmin } from '@mephisto/core'
import { BrokerError } from '@mephisto/core'
import type { KafkaClient } from './client.js'
import { hasKafkaError, isUnknownTopic, kafkaErrorId, LEADER_MOVED, mayRetry, messageOf } from './errors.js'

/** Kafka's own topics, which the memory broker does not have; listTopics leaves them out. */
const INTERNAL_TOPICS = new Set(['__consumer_offsets', '__transaction_state', '__cluster_metadata'])
/** How long a just-created topic's partitions may take to get a leader. */
const LEADER_WAIT_MS = 30_000

/** How long the controller may take to create topics before answering REQUEST_TIMED_OUT. */
const CREATE_TIMEOUT_MS = 30_000
/** CreateTopics errors worth a restart: the cluster is busy or moving, not refusing. */
const RETRIABLE_CREATE = new Set([
  'REQUEST_TIMED_OUT',
  'NOT_CONTROLLER',
  'COORDINATOR_NOT_AVAILABLE',
  'BROKER_NOT_AVAILABLE',
])

interface CreateTopicRequest {
  name: string
  numPartitions: number
  replicationFactor: number
  assignments: never[]
  configs: { name: string; value: string }[]
}

interface CreateTopicsResponse {
  topics: { name: string; errorCode: number; errorMessage: string | null }[]
}

interface CreateTopicFailure {
  name: string
  /** The Kafka error id. */
  error: string
  message: string
}

const EARLIEST = -2n
const LATEST = -1n
const READ_COMMITTED = 1

/** `TransportAdmin` over the transport's platformatic admin client. */
export class PlatformaticAdmin implements TransportAdmin {
  constructor(
    private readonly client: KafkaClient,
    /** `platformatic://…`, for error messages. */
    private readonly url: string,
  ) {}

  /**
   * Creates the missing topics in one CreateTopics request at the controller, each with its own
   * configs (platformatic's `createTopics` gives every topic of a request the same configs, and
   * one request per topic made an app with ten internal topics wait 300 ms on one broker).
   */
  async ensureTopics(topics: TopicSpec[]): Promise<void> {
    if (topics.length === 0) return
    const existing = new Set(await this.rawTopics())
    const missing = [...new Map(topics.filter((t) => !existing.has(t.name)).map((t) => [t.name, t])).values()]
    if (missing.length === 0) return
    const requests = missing.map((spec) => ({
      name: spec.name,
      numPartitions: spec.partitions,
      replicationFactor: spec.replicas ?? 1,
      assignments: [],
      configs: Object.entries(topicConfig(spec)).map(([name, value]) => ({ name, value })),
    }))
    for (let attempt = 1; ; attempt++) {
      const failed = await this.createTopics(requests)
      const notController = failed.filter((f) => f.error === 'NOT_CONTROLLER')
      if (notController.length > 0 && notController.length === failed.length && attempt < 3) {
        // The controller moved: ask the cluster again where it is.
        this.client.clearMetadata()
        continue
      }
      if (failed.length > 0) {
        const what = failed.map((f) => `${f.name}: ${f.message}`).join('; ')
        throw new BrokerError(
          `Cannot create topic(s) on ${this.url}: ${what}. Check the partition count and replication factor ` +
            '(no more replicas than brokers) and that this client may create topics.',
          { retriable: failed.every((f) => RETRIABLE_CREATE.has(f.error)) },
        )
      }
      break
    }
    await this.waitForLeaders(missing.map((t) => t.name))
  }

  /** One CreateTopics request; the topics that failed, other than those that already exist. */
  private async createTopics(requests: CreateTopicRequest[]): Promise<CreateTopicFailure[]> {
    const metadata = await this.client.metadata([])
    const controller = metadata.brokers.get(metadata.controllerId)
    let response: CreateTopicsResponse
    try {
      const connection = controller
        ? await this.client.connection(controller)
        : await this.client.anyConnection()
      response = await this.client.call<CreateTopicsResponse>(
        'CreateTopics',
        connection,
        requests,
        CREATE_TIMEOUT_MS,
        false,
      )
    } catch (error) {
      // Per-topic errors come as a ResponseError carrying the whole answer.
      const partial = (error as { response?: CreateTopicsResponse }).response
      if (partial === undefined || !Array.isArray(partial.topics)) {
        throw new BrokerError(
          `Cannot create topic(s) ${requests.map((r) => r.name).join(', ')} on ${this.url}: ${messageOf(error)}.`,
          { cause: error, retriable: mayRetry(error) },
        )
      }
      response = partial
    }
    const failed: CreateTopicFailure[] = []
    for (const t of response.topics) {
      if (t.errorCode === 0) continue
      const error = kafkaErrorId(t.errorCode)
      // Another worker won the race: its topic is as good as ours.
      if (error === 'TOPIC_ALREADY_EXISTS') continue
      failed.push({ name: t.name, error, message: t.errorMessage ? `${error} (${t.errorMessage})` : error })
    }
    return failed
  }

  async partitionCount(topic: string): Promise<number | undefined> {
    try {
      const metadata = await this.client.metadata([topic], true)
      const count = metadata.topics.get(topic)?.partitionsCount
      return count === undefined || count === 0 ? undefined : count
    } catch (error) {
      if (isUnknownTopic(error)) return undefined
      throw this.wrap(`read the metadata of topic "${topic}"`, error)
    }
  }

  async endOffsets(topic: string): Promise<Map<number, number>> {
    return this.topicOffsets(topic, LATEST)
  }

  async startOffsets(topic: string): Promise<Map<number, number>> {
    return this.topicOffsets(topic, EARLIEST)
  }

  /** The first (`earliest`) or next (`latest`, read committed) offset of each of `partitions`. */
  async offsetsAt(partitions: readonly TopicPartition[], at: 'earliest' | 'latest'): Promise<CommitOffset[]> {
    const byTopic = new Map<string, number[]>()
    for (const { topic, partition } of partitions) {
      let list = byTopic.get(topic)
      if (list === undefined) byTopic.set(topic, (list = []))
      list.push(partition)
    }
    const found = new Map<string, number>()
    for (const [topic, list] of byTopic) {
      const offsets = await this.listOffsets(topic, list, at === 'earliest' ? EARLIEST : LATEST)
      for (const [partition, offset] of offsets) found.set(`${topic}\u0000${partition}`, offset)
    }
    return partitions.map(({ topic, partition }) => ({
      topic,
      partition,
      offset: found.get(`${topic}\u0000${partition}`) ?? 0,
    }))
  }

  async groupOffsets(groupId: string, topic: string): Promise<Map<number, number>> {
    const count = (await this.partitionCount(topic)) ?? 0
    const result = new Map<number, number>()
    for (let p = 0; p < count; p++) result.set(p, -1)
    if (count === 0) return result
    try {
      const groups = await this.client.admin.listConsumerGroupOffsets({
        groups: [{ groupId, topics: [{ name: topic, partitionIndexes: [...result.keys()] }] }],
      })
      for (const t of groups.find((g) => g.groupId === groupId)?.topics ?? []) {
        if (t.name !== topic) continue
        for (const p of t.partitions) result.set(p.partitionIndex, Number(p.committedOffset))
      }
      return result
    } catch (error) {
      throw this.wrap(`read the committed offsets of group "${groupId}" for "${topic}"`, error)
    }
  }

  async setGroupOffsets(groupId: string, offsets: CommitOffset[]): Promise<void> {
    const byTopic = new Map<string, { partition: number; offset: bigint }[]>()
    for (const o of offsets) {
      if (!Number.isInteger(o.offset) || o.offset < 0) {
        throw new BrokerError(`Offset ${o.offset} for ${o.topic}[${o.partition}] is not a valid offset.`)
      }
      let list = byTopic.get(o.topic)
      if (list === undefined) byTopic.set(o.topic, (list = []))
      list.push({ partition: o.partition, offset: BigInt(o.offset) })
    }
    if (byTopic.size === 0) return
    try {
      await this.client.admin.alterConsumerGroupOffsets({
        groupId,
        topics: [...byTopic].map(([name, partitionOffsets]) => ({ name, partitionOffsets })),
      })
    } catch (error) {
      if (hasKafkaError(error, 'UNKNOWN_MEMBER_ID', 'ILLEGAL_GENERATION', 'REBALANCE_IN_PROGRESS')) {
        throw new BrokerError(
          `Cannot set offsets of group "${groupId}": it has running members. Stop every consumer of the group first.`,
          { cause: error },
        )
      }
      throw this.wrap(`set the offsets of group "${groupId}"`, error)
    }
  }

  async deleteTopics(topics: string[]): Promise<void> {
    if (topics.length === 0) return
    // Deleting a topic that is not there is not an error, as on the memory broker.
    const existing = new Set(await this.rawTopics())
    const present = topics.filter((t) => existing.has(t))
    if (present.length === 0) return
    try {
      await this.client.admin.deleteTopics({ topics: present })
    } catch (error) {
      if (isUnknownTopic(error)) return
      throw this.wrap(`delete topic(s) ${present.join(', ')}`, error)
    }
    this.client.clearMetadata()
  }

  async listTopics(): Promise<string[]> {
    return (await this.rawTopics()).filter((t) => !INTERNAL_TOPICS.has(t)).sort()
  }

  private async rawTopics(): Promise<string[]> {
    try {
      return await this.client.admin.listTopics()
    } catch (error) {
      throw this.wrap('list topics', error)
    }
  }

  private async topicOffsets(topic: string, timestamp: bigint): Promise<Map<number, number>> {
    const count = await this.partitionCount(topic)
    if (count === undefined) {
      throw new BrokerError(
        `Topic "${topic}" does not exist on ${this.url}. Create it first (admin.ensureTopics).`,
      )
    }
    return this.listOffsets(
      topic,
      Array.from({ length: count }, (_, i) => i),
      timestamp,
    )
  }

  /** ListOffsets, read committed (so `latest` is the last stable offset), retried while a leader moves. */
  private async listOffsets(
    topic: string,
    partitions: number[],
    timestamp: bigint,
  ): Promise<Map<number, number>> {
    const deadline = Date.now() + LEADER_WAIT_MS
    for (;;) {
      try {
        const answer = await this.client.admin.listOffsets({
          topics: [
            { name: topic, partitions: partitions.map((partitionIndex) => ({ partitionIndex, timestamp })) },
          ],
          isolationLevel: READ_COMMITTED,
        })
        const result = new Map<number, number>()
        for (const t of answer) {
          if (t.name !== topic) continue
          for (const p of t.partitions) result.set(p.partitionIndex, Number(p.offset))
        }
        return result
      } catch (error) {
        // A partition created a moment ago may not serve yet; platformatic gives up after its retries.
        const moving = hasKafkaError(error, ...LEADER_MOVED) || mayRetry(error)
        if (!moving || Date.now() > deadline) throw this.wrap(`read the offsets of topic "${topic}"`, error)
        this.client.clearMetadata()
        await sleep(100)
      }
    }
  }

  private async waitForLeaders(topics: string[]): Promise<void> {
    const deadline = Date.now() + LEADER_WAIT_MS
    // New topics usually have leaders within tens of milliseconds: poll often at first.
    let pause = 10
    for (;;) {
      try {
        const metadata = await this.client.metadata(topics, true)
        const ready = topics.every((t) => {
          const m = metadata.topics.get(t)
          return (
            m !== undefined &&
            m.partitionsCount > 0 &&
            m.partitions.every((p) => p !== undefined && p.leader >= 0)
          )
        })
        if (ready) return
      } catch (error) {
        if (!isUnknownTopic(error) && !hasKafkaError(error, ...LEADER_MOVED))
          throw this.wrap('wait for topic leaders', error)
      }
      if (Date.now() > deadline) {
        throw new BrokerError(
          `Topic(s) ${topics.join(', ')} on ${this.url} have no leader after ${LEADER_WAIT_MS} ms. Check that the brokers are healthy.`,
          { retriable: true },
        )
      }
      await sleep(pause)
      pause = Math.min(pause * 2, 100)
    }
  }

  private wrap(what: string, error: unknown): BrokerError {
    return new BrokerError(`Cannot ${what} on ${this.url}: ${messageOf(error)}`, {
      cause: error,
      retriable: mayRetry(error),
    })
  }
}

/** Broker configs of a topic spec: compaction and retention first, explicit configs win. */
export function topicConfig(spec: TopicSpec): Record<string, string> {
  const config: Record<string, string> = {}
  if (spec.compacted) config['cleanup.policy'] = 'compact'
  if (spec.retentionMs !== undefined) config['retention.ms'] = String(spec.retentionMs)
  return { ...config, ...spec.config }
}
