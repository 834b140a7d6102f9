/**
 * Producing: what agents, pages and timers send (encoded, counted by the sensors), the values an
 * agent yields to its sinks, and the flush a commit waits for. Under exactly-once, what an event
 * sends is buffered for its transaction instead (transactions.ts). Channels never reach a broker:
 * their messages go to the conductor.
 */

import type { Agent } from '../agents/agent.js'
import type { Clock } from '../base/clock.js'
import { ConfigurationError, DecodeError, EncodeError, MephistoError, NotReadyError } from '../base/errors.js'
import { HEADERS } from '../base/headers.js'
import type { Logger } from '../base/logger.js'
import type { SensorSet } from '../sensors/sensorSet.js'
import type { ActorContext } from '../streams/context.js'
import { actorContext, refuseIfAbandoned } from '../streams/context.js'
import type { StreamEvent } from '../streams/event.js'
import type { Delivery } from '../streams/offsetTracker.js'
import type { Table } from '../tables/table.js'
import type { TableState } from '../tables/tableState.js'
import type { Channel, Message } from '../topics/topic.js'
import { Topic, toHeaders } from '../topics/topic.js'
import type { OutgoingRecord, RecordMetadata, TransportProducer } from '../transport/transport.js'
import type { WorkerStatus } from './state.js'
import type { Transactions } from './transactions.js'

type ProducerRecord = Parameters<TransportProducer['send']>[0]

export interface OutboxDeps {
  readonly clock: Clock
  readonly logger: Logger
  readonly sensors: SensorSet
  readonly status: WorkerStatus
  readonly tables: ReadonlyMap<Table<any, any>, TableState<any, any>>
  /** Exactly-once only: where the outputs of events go until their transaction commits. */
  readonly transactions: Transactions | undefined
  /** Hands a channel message to the agents reading the channel (the conductor). */
  deliverToChannel(channel: Channel<any, any>, message: Message<any, any>): Promise<RecordMetadata>
  /** Answers an `ask` waiting on the event that yielded `value`. */
  answer(correlationId: string, value: unknown): void
  /** The producer lost records: roll the worker back to its last commit (the app replaces it). */
  restart(err: unknown): void
}

export class Outbox {
  /** The worker's producer, from when it connected (`open`). */
  producer!: TransportProducer

  constructor(private readonly deps: OutboxDeps) {}

  /** The worker connected: sends go through `producer` from now on. */
  open(producer: TransportProducer): void {
    this.producer = producer
  }

  /** Records buffered and not yet flushed. */
  pending(): number {
    return this.producer.pending()
  }

  /** `forwarded`: groupBy/through/echo pass a record on with its event's headers; sensors add none. */
  async sendTo(
    target: Topic<any, any> | Channel<any, any>,
    message: Message<any, any>,
    wait: boolean,
    forwarded = false,
  ): Promise<RecordMetadata | undefined> {
    const { status, sensors } = this.deps
    refuseIfAbandoned(`send to ${target.name}`)
    if (status.dead) {
      throw new NotReadyError(`cannot send to ${target.name}: the worker has ${status.state}`)
    }
    if (message === null || typeof message !== 'object' || !('value' in message)) {
      throw new TypeError(`send to ${target.name}: pass { key?, value, headers?, partition? }`)
    }
    if (!(target instanceof Topic)) return this.deps.deliverToChannel(target, message)
    let key: Buffer | null = null
    let value: Buffer | null = null
    try {
      if (message.key !== undefined && message.key !== null) key = target.keyCodec.encode(message.key)
      if (message.value !== null) value = target.valueCodec.encode(message.value)
    } catch (cause) {
      // The topic's schema refused the value: its issues, as a reader's dead letter would have them.
      if (cause instanceof DecodeError && cause.code === 'SCHEMA_VALIDATION') {
        throw new DecodeError(
          'SCHEMA_VALIDATION',
          cause.field,
          `cannot send to ${target.name}: ${cause.message}`,
          {
            cause,
            ...(cause.issues && { issues: cause.issues }),
          },
        )
      }
      throw new EncodeError(`cannot encode the message for ${target.name}: ${(cause as Error).message}`, {
        cause,
      })
    }
    const record = {
      topic: target.name,
      key,
      value,
      headers: toHeaders(message.headers),
      timestamp: message.timestamp ?? this.deps.clock.now(),
    } as ProducerRecord
    if (message.partition !== undefined) record.partition = message.partition
    // The record's own headers (toHeaders copied them): sensors may add a trace context to them.
    const state = sensors.onSendInitiated(
      target.name,
      value?.length ?? 0,
      forwarded ? undefined : record.headers,
    )
    const tx = this.deps.transactions
    if (tx) {
      const event = actorContext.getStore()?.event
      const p = tx.transactionOf(event)
      if (p !== undefined) {
        if (wait) {
          const err = new ConfigurationError(
            `sendAndWait to ${target.name} inside an agent is not available under exactly_once: the ` +
              "record is written when the event's transaction commits, after the agent is done with it. Use send().",
          )
          sensors.onSendError(state, target.name, err)
          throw err
        }
        tx.buffer(p, record, event!.root.delivery as Delivery | undefined)
        sensors.onSendCompleted(state, target.name)
        return undefined
      }
    }
    try {
      if (wait) {
        const meta = await this.producer.sendAndWait(record)
        sensors.onSendCompleted(state, target.name)
        return meta
      }
      await this.producer.send(record)
      sensors.onSendCompleted(state, target.name)
      return undefined
    } catch (err) {
      sensors.onSendError(state, target.name, err)
      throw err
    }
  }

  /** What groupBy/through/echo send. Keeps the event's headers. */
  async forward(
    target: Topic<any, any> | Channel<any, any>,
    key: unknown,
    value: unknown,
    event: StreamEvent<any, any>,
  ): Promise<void> {
    await this.sendTo(target, { key, value, headers: event.headers }, false, true)
  }

  /** An agent generator yielded `value` while processing `ctx.event`: to its sinks, and to an `ask` waiting on it. */
  async yielded(agent: Agent<any, any, any>, ctx: ActorContext, value: unknown): Promise<void> {
    const event = ctx.event
    for (const sink of agent.sinks) {
      if (typeof sink === 'function') await sink(value)
      else await sink.send({ value })
    }
    const id = event?.headers[HEADERS.correlationId]
    if (id) this.deps.answer(id.toString(), value)
  }

  /**
   * Sends `records` and flushes the producer. On failure outputs or changelog records may be lost:
   * committing anything past them would lose them for good, so the worker is aborted without
   * committing, and the app starts a new one (as after a failed transaction), which processes
   * them again from the last commit. Most often the broker was out of reach for longer than the
   * client's retries; a fault that persists ends in a crash once the app's restarts run out.
   */
  async flush(records: OutgoingRecord[]): Promise<RecordMetadata[]> {
    try {
      for (const r of records) await this.producer.send(r)
      return await this.producer.flush()
    } catch (err) {
      for (const ts of this.deps.tables.values()) ts.abortCommit()
      // A worker that crashed or stopped meanwhile failed its own flush: nothing to restart.
      if (!this.deps.status.dead) {
        this.deps.logger.error(
          'the producer failed to flush: rolling back to the last commit and restarting the worker',
          { err },
        )
        this.deps.restart(err)
      }
      throw new FlushError(err)
    }
  }
}

/** The producer could not flush: outputs may be lost, and the worker is being replaced. */
export class FlushError extends MephistoError {
  constructor(cause: unknown) {
    super('PRODUCER', `flush failed: ${(cause as Error)?.message ?? cause}`, { cause })
  }
}
