/**
 * The topics a worker needs before it joins the group: the app's declared topics, the
 * repartition topics its `groupBy`s create, table changelogs (compacted), dead-letter topics, the
 * leader topic, the route book and the replies of asks answered on another worker, with their
 * partitions, replicas and configs; and the check that each table agrees with its existing
 * changelog on partitions. Creating them is the transport admin's job.
 */

import type { Agent } from '../agents/agent.js'
import { MephistoError } from '../base/errors.js'
import type { RepartitionSpec } from '../streams/stream.js'
import { CHANGELOG_RECORD_HEADROOM } from '../tables/table.js'
import type { Codec } from '../topics/codec.js'
import { json, string } from '../topics/codec.js'
import { Topic } from '../topics/topic.js'
import type { TopicSpec, TransportAdmin } from '../transport/transport.js'
import type { WorkerHost } from './host.js'

/** Key codec of repartition topics: strings as they are, numbers and booleans as their text. */
const groupKeyCodec: Codec<unknown> = {
  encode: (k) => string().encode(typeof k === 'string' ? k : String(k)),
  decode: (b) => b.toString('utf8'),
}

/** `max.message.bytes` of the dead-letter topics Mephisto creates: 16 MiB. */
const DLQ_MAX_MESSAGE_BYTES = 16 * 1024 * 1024

/** The app's leader topic: one partition, whose owner is the leader. */
export function leaderTopicOf(appId: string): string {
  return `${appId}-__leader`
}

/** The app's route book: each worker's partition numbers and web address, keyed by worker id (routes.ts). */
export function routesTopicOf(appId: string): string {
  return `${appId}-__routes`
}

/** Answers to `ask()`s processed on another worker than the asker's (replies.ts). */
export function repliesTopicOf(appId: string): string {
  return `${appId}-__replies`
}

/** Old segments of the route book and the replies roll after 10 minutes, so compaction and retention reach them. */
const ROUTING_SEGMENT_MS = String(10 * 60_000)
/** Answers are read within an ask's timeout: an hour is plenty. */
const REPLIES_RETENTION_MS = 60 * 60_000

export class TopicPlan {
  private readonly internal = new Map<string, Topic<any, any>>()
  readonly leaderTopic: string
  readonly routesTopic: string
  readonly repliesTopic: string

  constructor(private readonly host: WorkerHost) {
    this.leaderTopic = leaderTopicOf(host.id)
    this.routesTopic = routesTopicOf(host.id)
    this.repliesTopic = repliesTopicOf(host.id)
  }

  /**
   * The repartition topic of a groupBy, created on first use. Its partitions default to the
   * source topic's (as Kafka Streams and Faust size theirs), so a table sharded like the source
   * fits the re-keyed stream too; a channel source has no partitions of its own: the app default.
   */
  repartitionTopic(agent: Agent<any, any, any>, spec: RepartitionSpec): Topic<any, any> {
    const name = `${this.host.id}-${agent.name}-${spec.repartition}-repartition`
    let t = this.internal.get(name)
    if (!t) {
      const source = agent.source
      t = new Topic(
        name,
        {
          key: spec.key ?? groupKeyCodec,
          value: source instanceof Topic ? source.valueCodec : json(),
          partitions:
            spec.partitions ??
            (source instanceof Topic ? source.options.partitions : undefined) ??
            this.host.topicPartitions,
          internal: true,
        },
        this.host,
      )
      this.internal.set(name, t)
    }
    return t
  }

  /** Every topic the worker needs, once each. */
  specs(): TopicSpec[] {
    const host = this.host
    const replicas = host.settings.topicReplicas
    const specs = new Map<string, TopicSpec>()
    const add = (s: TopicSpec): void => {
      if (replicas !== undefined && s.replicas === undefined) s.replicas = replicas
      specs.set(s.name, s)
    }
    for (const t of [...host.topics.values(), ...this.internal.values()]) {
      const o = t.options
      const s: TopicSpec = { name: t.name, partitions: o.partitions ?? host.topicPartitions }
      if (o.replicas !== undefined) s.replicas = o.replicas
      if (o.compacted) s.compacted = true
      if (o.retentionMs !== undefined) s.retentionMs = o.retentionMs
      if (o.config) s.config = o.config
      add(s)
    }
    for (const tb of host.tables) {
      const s: TopicSpec = {
        name: tb.changelogTopic,
        partitions: tb.partitions,
        compacted: true,
        // Room for the largest record a write may make (set() refuses larger ones), so a big value
        // does not fail every flush on the broker's default limit.
        config: { 'max.message.bytes': String(tb.maxValueBytes + CHANGELOG_RECORD_HEADROOM) },
      }
      if (tb.options.replicas !== undefined) s.replicas = tb.options.replicas
      add(s)
    }
    for (const a of host.agents) {
      // A dead letter is as large as the record it keeps, plus headers: let the DLQ take records
      // larger than the broker's default 1 MB, or an oversized input record would stop the worker.
      if (!specs.has(a.dlqTopic))
        add({
          name: a.dlqTopic,
          partitions: 1,
          config: { 'max.message.bytes': String(DLQ_MAX_MESSAGE_BYTES) },
        })
    }
    add({ name: this.leaderTopic, partitions: 1 })
    add({
      name: this.routesTopic,
      partitions: 1,
      compacted: true,
      config: { 'segment.ms': ROUTING_SEGMENT_MS },
    })
    add({
      name: this.repliesTopic,
      partitions: 1,
      retentionMs: REPLIES_RETENTION_MS,
      config: { 'segment.ms': ROUTING_SEGMENT_MS },
    })
    return [...specs.values()]
  }

  /** A table and the topic feeding it must agree on partition counts (tables shard like their source). */
  async checkCopartitioning(admin: TransportAdmin): Promise<void> {
    for (const tb of this.host.tables) {
      const actual = await admin.partitionCount(tb.changelogTopic)
      if (actual !== undefined && actual !== tb.partitions) {
        throw new MephistoError(
          'CO_PARTITIONING',
          `table ${tb.name} is declared with ${tb.partitions} partition(s) but its changelog ${tb.changelogTopic} ` +
            `has ${actual}. Declare the table with partitions: ${actual}, or delete the changelog (mephisto reset).`,
        )
      }
    }
  }
}
