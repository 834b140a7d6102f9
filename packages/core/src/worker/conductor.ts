/**
 * The conductor routes records to the agents that read them: it decodes each fetched record,
 * registers its delivery with the partition's offset tracker, and pushes one event into the
 * queue of every subscribed agent (waiting when a queue is full). Acks come back here and move
 * the committable offset. A record that cannot be decoded goes to the dead letters; a tombstone
 * (null value) is acked and skipped unless its topic takes them. Channels are delivered the same
 * way, with no offsets to commit. It does not commit (committer.ts).
 */

import type { Agent } from '../agents/agent.js'
import type { Clock } from '../base/clock.js'
import { HEADERS } from '../base/headers.js'
import type { Logger } from '../base/logger.js'
import { tpKey } from '../base/topicPartition.js'
import type { StreamEventInfo } from '../sensors/sensor.js'
import type { SensorSet, SensorStates } from '../sensors/sensorSet.js'
import { StreamEvent } from '../streams/event.js'
import type { EventQueue } from '../streams/eventQueue.js'
import type { Delivery, OffsetTracker } from '../streams/offsetTracker.js'
import type { Channel, Message } from '../topics/topic.js'
import { Topic, toHeaders } from '../topics/topic.js'
import type { RecordBatch, RecordMetadata } from '../transport/transport.js'
import type { Committer } from './committer.js'
import type { DeadLetters } from './deadLetters.js'
import type { AssignedPartitions, PartitionTracker } from './partitions.js'
import type { RequestReply } from './requestReply.js'
import type { WorkerStatus } from './state.js'
import type { Transactions } from './transactions.js'

interface Subscriber {
  agent: Agent<any, any, any>
  queue: EventQueue<StreamEvent<any, any>>
}

interface Subscription {
  topic: Topic<any, any> | Channel<any, any>
  subscribers: Subscriber[]
}

export interface ConductorDeps {
  readonly clock: Clock
  readonly logger: Logger
  readonly sensors: SensorSet
  readonly status: WorkerStatus
  readonly partitions: AssignedPartitions
  readonly deadLetters: DeadLetters
  readonly committer: Committer
  readonly requests: RequestReply
  /** Exactly-once only: counts the events in actors' hands. */
  readonly transactions: Transactions | undefined
  /** Rolls the worker back to its last commit (the app replaces it). */
  restart(err: unknown): Promise<void>
}

export class Conductor {
  private readonly subscriptions = new Map<string, Subscription>()
  private readonly channelOffsets = new Map<string, number>()

  constructor(private readonly deps: ConductorDeps) {}

  /** `queue` of `agent` receives the events of `topic`. */
  subscribe(
    topic: Topic<any, any> | Channel<any, any>,
    agent: Agent<any, any, any>,
    queue: EventQueue<StreamEvent<any, any>>,
  ): void {
    let sub = this.subscriptions.get(topic.name)
    if (!sub) this.subscriptions.set(topic.name, (sub = { topic, subscribers: [] }))
    sub.subscribers.push({ agent, queue })
  }

  /** Names of the broker topics some agent reads (what the consumer subscribes to). */
  topicNames(): string[] {
    return [...this.subscriptions.values()].filter((s) => s.topic instanceof Topic).map((s) => s.topic.name)
  }

  /** Decodes a fetched batch and hands each record to its subscribers, in offset order. */
  async onBatch(batch: RecordBatch): Promise<void> {
    const tracker = this.deps.partitions.get(batch.topic, batch.partition)
    const sub = this.subscriptions.get(batch.topic)
    if (!tracker || tracker.revoked || !sub || !(sub.topic instanceof Topic)) return
    const { status, sensors, deadLetters, committer } = this.deps
    const topic = sub.topic
    const subs = sub.subscribers
    const tp = tracker.tp
    const keyCodec = topic.keyCodec
    const valueCodec = topic.valueCodec
    const takesTombstones = topic.options.tombstones === true
    const onAck = this.onAck
    let tombstones = 0
    for (const r of batch.records) {
      if (tracker.revoked || status.state === 'crashed') return
      sensors.onMessageIn(tp, r.offset, (r.value?.length ?? 0) + (r.key?.length ?? 0))
      if (r.value === null && !takesTombstones) {
        // A tombstone on a topic that does not take them: acked, counted, never shown to an agent
        // (its value type has no null, and no codec or schema ever saw it).
        tracker.ack(tracker.track(r.offset, 1))
        sensors.onMessageOut(tp, r.offset)
        committer.acked()
        topic.tombstonesSkipped++
        tombstones++
        continue
      }
      let k: unknown
      let v: unknown
      try {
        k = r.key === null ? null : keyCodec.decode(r.key)
        v = r.value === null ? null : valueCodec.decode(r.value)
      } catch (err) {
        const d = tracker.track(r.offset, 1)
        const dlqs = new Set(subs.map((s) => s.agent))
        for (const agent of dlqs) {
          // Under exactly-once this buffers synchronously, so no commit falls between it and the ack.
          const sent = deadLetters.deadLetterRaw(r, err, agent, d)
          if (!sent) continue
          try {
            await sent
          } catch (dlqErr) {
            // Not acked: the worker that replaces this one reads the record again.
            this.deps.logger.error(
              `the dead letter of ${r.topic}[${r.partition}]@${r.offset} could not be written; ` +
                'rolling back to the last commit and restarting the worker',
              { err: dlqErr },
            )
            void this.deps.restart(dlqErr)
            return
          }
        }
        tracker.ack(d)
        sensors.onMessageOut(tp, r.offset)
        committer.acked()
        continue
      }
      const d = tracker.track(r.offset, subs.length)
      tracker.inFlight += subs.length
      for (let i = 0; i < subs.length; i++) {
        const s = subs[i]!
        // The timestamp stays in the record until someone reads it.
        const e = new StreamEvent(k, v, r.headers, r.topic, r.partition, r.offset, undefined, d, onAck, r)
        e.origin = s.queue
        const wait = s.queue.push(e)
        if (wait) await wait
      }
    }
    const last = batch.records[batch.records.length - 1]
    if (last) sensors.onOffsets(tp, { read: last.offset, end: batch.highWatermark })
    if (tombstones > 0) {
      this.deps.logger.debug(`skipped ${tombstones} tombstone(s) on ${batch.topic}[${batch.partition}]`, {
        topic: batch.topic,
        partition: batch.partition,
        skipped: tombstones,
        skippedOnTopic: topic.tombstonesSkipped,
      })
    }
  }

  /** Every event's ack: sensors, the exactly-once hand-out count, its delivery, a waiting ask, the commit count. */
  private readonly onAck = (e: StreamEvent<any, any>): void => {
    const { sensors, transactions, requests } = this.deps
    // The event is its own StreamEventInfo (stream, topic, partition, offset): no allocation per event.
    if (e.stream !== undefined) sensors.onStreamEventOut(e as StreamEventInfo, e.sensorState as SensorStates)
    if (e.handedOut) transactions?.handBack(e)
    const d = e.delivery as Delivery | undefined
    if (d) {
      const t = d.tracker
      t.inFlight--
      if (t.ack(d)) sensors.onMessageOut((t as PartitionTracker).tp, d.offset)
    }
    if (requests.waiting) {
      const id = e.headers[HEADERS.correlationId]
      if (id) requests.answer(id.toString(), undefined)
    }
    this.deps.committer.acked()
  }

  /** A stream handed an event to user code. */
  eventIn(agent: string, e: StreamEvent<any, any>): void {
    const root = e.root
    const sensors = this.deps.sensors
    // Handed in again: a retry. Its failed attempt is over, so the sensors' pair closes first
    // (every onStreamEventIn gets its onStreamEventOut: active counts and spans stay balanced).
    if (root.stream !== undefined && !root.acked)
      sensors.onStreamEventOut(root as StreamEventInfo, root.sensorState as SensorStates)
    root.stream = agent
    root.sensorState = sensors.onStreamEventIn(root as StreamEventInfo)
  }

  /** A channel message, to every agent reading the channel; offsets count per channel. */
  async deliverToChannel(channel: Channel<any, any>, message: Message<any, any>): Promise<RecordMetadata> {
    const sub = this.subscriptions.get(channel.name)
    const offset = this.channelOffsets.get(channel.name) ?? 0
    this.channelOffsets.set(channel.name, offset + 1)
    const headers = toHeaders(message.headers)
    const ts = message.timestamp ?? this.deps.clock.now()
    for (const s of sub?.subscribers ?? []) {
      const e = new StreamEvent(
        message.key ?? null,
        message.value,
        headers,
        channel.name,
        0,
        offset,
        ts,
        undefined,
        this.onAck,
      )
      e.origin = s.queue
      const wait = s.queue.push(e)
      if (wait) await wait
    }
    return { topic: channel.name, partition: 0, offset }
  }

  /**
   * Drops the queued events of partitions being revoked: the next owner gets them again from the
   * committed offset. Events already in an actor's hands are let finish. `revoked` holds `tpKey`s.
   */
  dropQueued(revoked: ReadonlySet<string>): void {
    const dropped = new Set<Delivery>()
    for (const sub of this.subscriptions.values()) {
      for (const s of sub.subscribers) {
        const removed = s.queue.remove((e) => revoked.has(tpKey(e.topic, e.partition)))
        for (const { delivery } of removed) {
          if (!delivery) continue
          const tracker = delivery.tracker as OffsetTracker
          tracker.inFlight--
          dropped.add(delivery)
        }
      }
    }
    // Dropped, they are no longer active here (the Monitor's messages.active).
    for (const d of dropped) this.deps.sensors.onMessageOut((d.tracker as PartitionTracker).tp, d.offset)
  }
}
