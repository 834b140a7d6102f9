/**
 * `TransportAdmin` over a kafkajs admin client: topics, their offsets, and group offsets.
 * It does not consume, produce or read records.
 */
import type { Admin, ITopicConfig } from 'kafkajs'
import { BrokerError } from '../../base/errors.js'
import type { CommitOffset, TopicSpec, TransportAdmin } from '../transport.js'
import { isLeaderNotAvailable, isLeaderNotReady, isUnknownTopic, mayRetry, messageOf } from './kafkaErrors.js'

/** Kafka's own topics, which the memory broker does not have; listTopics leaves them out. */
const INTERNAL_TOPICS = new Set(['__consumer_offsets', '__transaction_state', '__cluster_metadata'])

/** How long ensureTopics waits for new partitions to get a leader when another client created them. */
const LEADER_WAIT_MS = 30_000

/** `TransportAdmin` over a kafkajs admin client. One per {@link KafkaTransport}. */
export class KafkaAdmin implements TransportAdmin {
  constructor(
    private readonly admin: Admin,
    /** `kafka://…`, for error messages. */
    private readonly url: string,
  ) {}

  async ensureTopics(topics: TopicSpec[]): Promise<void> {
    if (topics.length === 0) return
    const existing = new Set(await this.admin.listTopics())
    const missing = new Map<string, TopicSpec>()
    for (const spec of topics) if (!existing.has(spec.name)) missing.set(spec.name, spec)
    if (missing.size === 0) return
    const requests: ITopicConfig[] = [...missing.values()].map((spec) => ({
      topic: spec.name,
      numPartitions: spec.partitions,
      replicationFactor: spec.replicas ?? 1,
      configEntries: Object.entries(topicConfig(spec)).map(([name, value]) => ({ name, value })),
    }))
    let created: boolean
    try {
      // kafkajs resolves false when every error was TOPIC_ALREADY_EXISTS: another worker won the
      // race. It then skipped waiting for leaders, which we do below.
      created = await this.admin.createTopics({ topics: requests, waitForLeaders: true })
    } catch (error) {
      throw new BrokerError(
        `Cannot create topic(s) ${[...missing.keys()].join(', ')} on ${this.url}: ${messageOf(error)}. ` +
          'Check the partition count and replication factor (no more replicas than brokers) and that ' +
          'this client may create topics.',
        { cause: error, retriable: mayRetry(error) },
      )
    }
    if (!created) await this.waitForLeaders([...missing.keys()])
  }

  async partitionCount(topic: string): Promise<number | undefined> {
    try {
      const { topics } = await this.admin.fetchTopicMetadata({ topics: [topic] })
      const count = topics.find((t) => t.name === topic)?.partitions.length
      return count === 0 ? undefined : count
    } catch (error) {
      if (isUnknownTopic(error)) return undefined
      throw this.wrap(`read the metadata of topic "${topic}"`, error)
    }
  }

  async endOffsets(topic: string): Promise<Map<number, number>> {
    const offsets = await this.topicOffsets(topic)
    return new Map(offsets.map((o) => [o.partition, Number(o.high)]))
  }

  async startOffsets(topic: string): Promise<Map<number, number>> {
    const offsets = await this.topicOffsets(topic)
    return new Map(offsets.map((o) => [o.partition, Number(o.low)]))
  }

  async groupOffsets(groupId: string, topic: string): Promise<Map<number, number>> {
    try {
      const result = await this.admin.fetchOffsets({ groupId, topics: [topic] })
      const partitions = result.find((t) => t.topic === topic)?.partitions ?? []
      return new Map(partitions.map((p) => [p.partition, Number(p.offset)]))
    } catch (error) {
      throw this.wrap(`read the committed offsets of group "${groupId}" for "${topic}"`, error)
    }
  }

  async setGroupOffsets(groupId: string, offsets: CommitOffset[]): Promise<void> {
    const byTopic = new Map<string, CommitOffset[]>()
    for (const o of offsets) {
      if (!Number.isInteger(o.offset) || o.offset < 0) {
        throw new BrokerError(`Offset ${o.offset} for ${o.topic}[${o.partition}] is not a valid offset.`)
      }
      let list = byTopic.get(o.topic)
      if (list === undefined) byTopic.set(o.topic, (list = []))
      list.push(o)
    }
    for (const [topic, list] of byTopic) {
      try {
        await this.admin.setOffsets({
          groupId,
          topic,
          partitions: list.map((o) => ({ partition: o.partition, offset: String(o.offset) })),
        })
      } catch (error) {
        if (messageOf(error).includes('no running instances')) {
          throw new BrokerError(
            `Cannot set offsets of group "${groupId}": it has running members. Stop every consumer of ` +
              'the group first.',
            { cause: error },
          )
        }
        throw this.wrap(`set the offsets of group "${groupId}" for "${topic}"`, error)
      }
    }
  }

  async deleteTopics(topics: string[]): Promise<void> {
    if (topics.length === 0) return
    // Deleting a topic that is not there is not an error, as on the memory broker.
    const existing = new Set(await this.admin.listTopics())
    const present = topics.filter((t) => existing.has(t))
    if (present.length === 0) return
    try {
      await this.admin.deleteTopics({ topics: present, timeout: 30_000 })
    } catch (error) {
      if (isUnknownTopic(error)) return
      throw this.wrap(`delete topic(s) ${present.join(', ')}`, error)
    }
  }

  async listTopics(): Promise<string[]> {
    const topics = await this.admin.listTopics()
    return topics.filter((t) => !INTERNAL_TOPICS.has(t)).sort()
  }

  /** Low and high watermark of every partition. */
  private async topicOffsets(topic: string): Promise<{ partition: number; low: string; high: string }[]> {
    const deadline = Date.now() + LEADER_WAIT_MS
    for (;;) {
      try {
        return await this.admin.fetchTopicOffsets(topic)
      } catch (error) {
        if (isUnknownTopic(error)) {
          throw new BrokerError(
            `Topic "${topic}" does not exist on ${this.url}. Create it first (admin.ensureTopics).`,
            { cause: error },
          )
        }
        // A partition created a moment ago may not serve yet (another worker created it and we did
        // not wait for its leader, or the broker is still taking leadership); kafkajs gives up at once.
        if (!isLeaderNotReady(error) || Date.now() > deadline)
          throw this.wrap(`read the offsets of topic "${topic}"`, error)
        await new Promise((r) => setTimeout(r, 100))
      }
    }
  }

  private async waitForLeaders(topics: string[]): Promise<void> {
    const deadline = Date.now() + LEADER_WAIT_MS
    for (;;) {
      try {
        const { topics: metadata } = await this.admin.fetchTopicMetadata({ topics })
        const ready =
          metadata.length === topics.length &&
          metadata.every((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0))
        if (ready) return
      } catch (error) {
        if (!isUnknownTopic(error) && !isLeaderNotAvailable(error))
          throw this.wrap('wait for topic leaders', error)
      }
      if (Date.now() > deadline) {
        throw new BrokerError(
          `Topic(s) ${topics.join(', ')} on ${this.url} have no leader after ${LEADER_WAIT_MS} ms. ` +
            'Check that the brokers are healthy.',
          { retriable: true },
        )
      }
      await new Promise((r) => setTimeout(r, 100))
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
