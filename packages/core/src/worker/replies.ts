/**
 * Answers to `ask()`s that another worker processed (Faust's reply topic): the worker that
 * processes an asked event, when it is not the asker, writes the answer to `<app>-__replies`,
 * keyed by the asker's worker id; an asking worker tails that topic from the moment of its first
 * ask and hands the answers addressed to it to its waiting asks. Answers travel as JSON. It does
 * not keep the asks; requestReply.ts does.
 */

import { HEADERS } from '../base/headers.js'
import type { Logger } from '../base/logger.js'
import type { RawRecord, Transport, TransportProducer } from '../transport/transport.js'
import type { WorkerStatus } from './state.js'
import { TopicTail } from './topicTail.js'

/** An answer as it travels: the agent's value, or why it could not be sent. */
export type Reply = { value?: unknown } | { error: string; code: 'ENCODE' | 'DECODE' }

/** How often the replies are read while an ask waits, and while none does. */
export const REPLY_POLL_MS = 20
export const IDLE_REPLY_POLL_MS = 2_000
/** Correlation ids answered lately, so an event answers once (a yield, then its ack). */
const REMEMBERED = 10_000

export interface RepliesDeps {
  readonly workerId: string
  readonly topic: string
  readonly transport: Transport
  readonly logger: Logger
  readonly status: WorkerStatus
  /** The producer answers are written with. */
  producer(): TransportProducer
  /** An answer to one of this worker's asks arrived. */
  onReply(correlationId: string, reply: Reply): void
  /** Whether an ask of this worker is waiting (the replies are then read often). */
  waiting(): boolean
}

export class Replies {
  private tail: TopicTail | undefined
  private starting: Promise<void> | undefined
  private answered = new Set<string>()
  private stopped = false

  constructor(private readonly deps: RepliesDeps) {}

  /**
   * Starts reading the replies addressed to this worker, from the current end of the topic, and
   * resolves once it knows where that end is: an answer to an ask sent afterwards is read.
   */
  listen(): Promise<void> | undefined {
    if (this.tail?.started) {
      this.tail.hurry()
      return undefined
    }
    this.starting ??= this.open().catch((err: unknown) => {
      this.starting = undefined
      throw err
    })
    return this.starting
  }

  /** Sends `value`, the answer to the ask `correlationId` of worker `replyTo`, once. */
  send(replyTo: string, correlationId: string, value: unknown): void {
    if (this.answered.has(correlationId) || this.deps.status.dead) return
    if (this.answered.size >= REMEMBERED) this.answered = new Set()
    this.answered.add(correlationId)
    let body: string
    try {
      body = JSON.stringify(value === undefined ? {} : { value })
    } catch (err) {
      body = JSON.stringify({
        error: `the answer cannot be sent to the asking worker as JSON: ${(err as Error)?.message ?? err}`,
        code: 'ENCODE',
      })
    }
    this.deps
      .producer()
      .send({
        topic: this.deps.topic,
        partition: 0,
        key: Buffer.from(replyTo, 'utf8'),
        value: Buffer.from(body, 'utf8'),
        headers: { [HEADERS.correlationId]: Buffer.from(correlationId, 'utf8') },
      })
      .catch((err: unknown) => {
        // The asker's ask times out; nothing else depends on the answer.
        if (!this.deps.status.dead)
          this.deps.logger.warn(`could not send the answer to worker ${replyTo}'s ask`, { err })
      })
  }

  stop(): void {
    this.stopped = true
    this.tail?.stop()
  }

  private async open(): Promise<void> {
    const tail = new TopicTail({
      transport: this.deps.transport,
      topic: this.deps.topic,
      logger: this.deps.logger,
      intervalMs: () => (this.deps.waiting() ? REPLY_POLL_MS : IDLE_REPLY_POLL_MS),
      onRecords: (records) => this.receive(records),
    })
    await tail.start('end')
    this.tail = tail
    if (this.stopped) tail.stop()
  }

  private receive(records: readonly RawRecord[]): void {
    for (const r of records) {
      if (r.value === null || r.key?.toString('utf8') !== this.deps.workerId) continue
      const id = r.headers[HEADERS.correlationId]?.toString('utf8')
      if (id === undefined) continue
      let reply: Reply
      try {
        reply = JSON.parse(r.value.toString('utf8')) as Reply
      } catch (err) {
        reply = { error: `the answer could not be read: ${(err as Error)?.message ?? err}`, code: 'DECODE' }
      }
      this.deps.onReply(id, reply)
    }
  }
}
