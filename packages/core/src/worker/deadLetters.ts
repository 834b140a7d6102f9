/**
 * Dead letters: an event that cannot be decoded, or that its agent's `onError` gives up on, goes
 * to the agent's dead-letter topic as the bytes it came in as, with headers naming the error and
 * where it came from. A send that fails is tried again with the agent's backoff; one that still
 * fails rejects with DEAD_LETTER_FAILED, and the caller rolls the worker back (nothing is acked).
 * Logs the first few of each topic, then one in a thousand. Deciding *whether* an event is
 * dead-lettered is the agent runtime's (onError) and the conductor's (decode) job.
 */
import { inspect } from 'node:util'

import type { Agent } from '../agents/agent.js'
import type { Clock } from '../base/clock.js'
import { MephistoError } from '../base/errors.js'
import { HEADERS } from '../base/headers.js'
import type { Logger } from '../base/logger.js'
import type { SensorSet } from '../sensors/sensorSet.js'
import type { StreamEvent } from '../streams/event.js'
import type { Delivery } from '../streams/offsetTracker.js'
import { json } from '../topics/codec.js'
import type { OutgoingRecord, RawRecord } from '../transport/transport.js'
import type { Outbox } from './outbox.js'
import type { Transactions } from './transactions.js'

export class DeadLetters {
  /** Dead letters sent so far, by dead-letter topic (for the log's sampling). */
  private readonly counts = new Map<string, number>()

  constructor(
    private readonly outbox: Outbox,
    /** Exactly-once only: a dead letter of an event is part of that event's transaction. */
    private readonly transactions: Transactions | undefined,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly sensors: SensorSet,
  ) {}

  /**
   * Sends the event's original bytes to the agent's dead-letter topic. A channel event has no
   * bytes: its value goes as JSON, or, when JSON cannot hold it (a BigInt, a cycle), as a readable
   * rendering with the encode error in its headers.
   */
  async deadLetter(event: StreamEvent<any, any>, err: unknown, agent: Agent<any, any, any>): Promise<void> {
    await this.deadLetterRaw(
      event.raw ?? channelRecord(event),
      err,
      agent,
      event.root.delivery as Delivery | undefined,
    )
  }

  /**
   * Sends a record as it came from the broker. Under exactly-once this buffers synchronously and
   * returns undefined, so no commit falls between it and the ack that follows; the dead letter is
   * committed with the offset that covers `source`, the record's delivery.
   */
  deadLetterRaw(
    r: RawRecord,
    err: unknown,
    agent: Agent<any, any, any>,
    source: Delivery | undefined,
  ): Promise<void> | undefined {
    const message = (err as Error)?.message ?? String(err)
    const code = err instanceof MephistoError ? err.code : 'AGENT_FAILED'
    const headers = {
      ...r.headers,
      [HEADERS.error]: Buffer.from(message.slice(0, 4096)),
      [HEADERS.errorCode]: Buffer.from(code),
      [HEADERS.errorClass]: Buffer.from((err as Error)?.name ?? 'Error'),
      [HEADERS.sourceTopic]: Buffer.from(r.topic),
      [HEADERS.sourcePartition]: Buffer.from(String(r.partition)),
      [HEADERS.sourceOffset]: Buffer.from(String(r.offset)),
      [HEADERS.sourceTimestamp]: Buffer.from(String(r.timestamp)),
      [HEADERS.agent]: Buffer.from(agent.name),
      [HEADERS.failedAt]: Buffer.from(String(this.clock.now())),
    }
    const dlq = agent.dlqTopic
    const record = { topic: dlq, key: r.key, value: r.value, headers, timestamp: r.timestamp }
    const p = this.transactions?.transactionOfRecord(r.topic, r.partition)
    if (p !== undefined) {
      this.transactions!.buffer(p, record, source)
      this.sent(r, dlq, message, code)
      return undefined
    }
    return this.send(record, agent).then(() => this.sent(r, dlq, message, code))
  }

  /** Sends with the agent's retries and backoff; rejects with DEAD_LETTER_FAILED when all failed. */
  private async send(record: OutgoingRecord, agent: Agent<any, any, any>): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.outbox.producer.send(record)
        return
      } catch (cause) {
        if (attempt >= agent.retries) {
          throw new MephistoError(
            'DEAD_LETTER_FAILED',
            `cannot write the dead letter to ${record.topic} (${attempt + 1} attempts): ${(cause as Error)?.message ?? cause}`,
            { cause, retriable: true },
          )
        }
        this.logger.warn(`writing a dead letter to ${record.topic} failed; trying again`, { err: cause })
        await new Promise((r) => setTimeout(r, agent.retryBackoffMs * 2 ** attempt))
      }
    }
  }

  private sent(r: RawRecord, dlq: string, message: string, code: string): void {
    // The first few at warn, then one in a thousand: a flood of bad input must not flood the log.
    const n = (this.counts.get(dlq) ?? 0) + 1
    this.counts.set(dlq, n)
    const log = n <= 10 || n % 1000 === 0 ? this.logger.warn : this.logger.debug
    log.call(
      this.logger,
      `dead-lettered ${r.topic}[${r.partition}]@${r.offset} to ${dlq} (${n} so far): ${message}`,
      { code },
    )
    this.sensors.onDlq({ topic: r.topic, partition: r.partition, offset: r.offset }, dlq, code)
  }
}

/** A channel event as a record: its value as JSON, or as a readable rendering JSON cannot hold. */
function channelRecord(event: StreamEvent<any, any>): RawRecord {
  const headers = { ...event.headers }
  let value: Buffer
  try {
    value = json().encode(event.value)
  } catch (err) {
    value = Buffer.from(inspect(event.value, { depth: 6, breakLength: Number.POSITIVE_INFINITY }))
    headers[HEADERS.valueRendering] = Buffer.from('inspect')
    headers[HEADERS.encodeError] = Buffer.from(String((err as Error)?.message ?? err).slice(0, 1024))
  }
  return {
    topic: event.topic,
    partition: event.partition,
    offset: event.offset,
    timestamp: event.timestamp,
    key: event.key === null || event.key === undefined ? null : Buffer.from(String(event.key)),
    value,
    headers,
  }
}
